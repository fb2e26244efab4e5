"""De-identification rules besides PS3.15 Table E.1-1 (which is :mod:`server.imaging.deid_table`).

The table's action wins for every attribute it lists; ``EXTRA_ACTIONS`` gives actions to a few
attributes it does not list. For the rest:

- all private tags, all curve groups (50xx) and overlay groups (60xx) are removed (the table
  removes overlay data and comments; an overlay without its data is not valid, so the group goes);
- public attributes unknown to the data dictionary, and values of VR UN, are removed because their
  content cannot be judged; so are application entity titles and URLs (VR AE, UR);
- the patient group 0010 is removed except the Type 2 patient attributes the table empties;
- unlisted person names (VR PN) are emptied, unlisted dates and times (DA, DT, TM) get a dummy
  value (no longitudinal temporal information is retained, and a required date stays valid);
- every unlisted UID (VR UI) that is not a well-known DICOM UID (SOP classes, transfer syntaxes,
  coding schemes) is replaced like the table's ``U``.

``tests/server/imaging/test_deid.py`` checks that every keyword here is in pydicom's dictionary, so a
misspelt keyword cannot silently disable a rule.
"""

from __future__ import annotations

from typing import Any, Final

from server.imaging.deid_table import EDITION

# Beyond Table E.1-1: attributes the table does not name that hold free text or an identifier
# chosen at the site, with the action the table would give such an attribute (tag -> action).
EXTRA_ACTIONS: Final[dict[int, str]] = {
    0x00700080: "D",  # Content Label: a CS the IOD may require (Type 1 in Segmentation)
    0x00700081: "X/Z",  # Content Description: free text (Type 2 in some IODs)
    0x00880130: "X",  # Storage Media File-set ID: names the medium the file came from
}

# Type 2 attributes of the Patient and General Study modules (every composite image IOD has them):
# added empty when the source lacks them.
TYPE2_ADDED: Final = (
    "AccessionNumber",
    "PatientBirthDate",
    "PatientID",
    "PatientName",
    "PatientSex",
    "ReferringPhysicianName",
    "StudyDate",
    "StudyID",
    "StudyTime",
)

# Patient-group (0010) attributes that survive the group-wide removal (the table empties them).
PATIENT_GROUP_KEEP: Final = frozenset({"PatientName", "PatientID", "PatientBirthDate", "PatientSex"})

# UIDs that name a kind of thing rather than an instance: never replaced, even when a vendor's
# private class UID is not in the dictionary.
CLASS_UID_KEYWORDS: Final = frozenset(
    {
        "SOPClassUID",
        "MediaStorageSOPClassUID",
        "ReferencedSOPClassUID",
        "ReferencedSOPClassUIDInFile",
        "AffectedSOPClassUID",
        "RequestedSOPClassUID",
        "SOPClassesInStudy",
        "RelatedGeneralSOPClassUID",
        "OriginalSpecializedSOPClassUID",
        "TransferSyntaxUID",
        "ReferencedTransferSyntaxUIDInFile",
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "ContextUID",
        "MappingResourceUID",
        "PrivateInformationCreatorUID",
    }
)

# Dummy values (action D) per VR: valid for the VR, and the same for every source value.
_TEXT_DUMMY = "ANONYMIZED"
_DUMMY_BY_VR: Final[dict[str, Any]] = {
    "AE": _TEXT_DUMMY,
    "AS": "000Y",
    "CS": _TEXT_DUMMY,
    "DA": "20000101",
    "DS": "0",
    "DT": "20000101000000",
    "IS": "0",
    "LO": _TEXT_DUMMY,
    "LT": _TEXT_DUMMY,
    "PN": _TEXT_DUMMY,
    "SH": _TEXT_DUMMY,
    "ST": _TEXT_DUMMY,
    "TM": "000000",
    "UC": _TEXT_DUMMY,
    "UR": "urn:x-anonymized",
    "UT": _TEXT_DUMMY,
}
_NUMERIC_VRS: Final = frozenset({"FL", "FD", "SL", "SS", "SV", "UL", "US", "UV", "US or SS"})


def dummy_value(vr: str) -> Any:
    """A non-zero-length, non-identifying value of ``vr`` (binary VRs: two zero bytes)."""
    if vr in _DUMMY_BY_VR:
        return _DUMMY_BY_VR[vr]
    if vr in _NUMERIC_VRS:
        return 0
    return b"\x00\x00"


# Coded value of DeidentificationMethodCodeSequence for this profile (PS3.16 CID 7050).
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
# DeidentificationMethod is LO: at most 64 characters.
METHOD_DESCRIPTION = f"PS3.15 {EDITION} Annex E Basic Application Confidentiality Profile"
assert len(METHOD_DESCRIPTION) <= 64
