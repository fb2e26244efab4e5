"""De-identification driven by the whole of PS3.15 Table E.1-1: every listed attribute, set at the
top level and inside a sequence, comes out handled per its action."""

from __future__ import annotations

import copy
import importlib
import io
from typing import Any

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from server.imaging.deid import deidentify, profile_action, remap_uid, to_bytes
from server.imaging.deid_rules import EXTRA_ACTIONS
from server.imaging.deid_table import ACTIONS, EDITION, MASKED, TABLE_E1_1
from tests.server.imaging.helpers import SALT, bundled_dataset

# An attribute the table does not list, to carry a copy of every listed one inside a sequence.
CARRIER = "AnatomicRegionSequence"
# File meta (group 0002) is rebuilt from scratch; command group 0000 never occurs in stored files.
SKIPPED_GROUPS = (0x0000, 0x0002)
_CATEGORIES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}


def test_table_is_the_pinned_edition_entry_by_entry() -> None:
    source = importlib.import_module(f"dicomanonymizer.dicom_anonymization_databases.dicomfields_{EDITION}")
    plain: dict[int, str] = {}
    masked: set[tuple[int, int, str]] = set()
    for name, action in _CATEGORIES.items():
        for entry in getattr(source, name):
            if len(entry) == 2:
                plain[(entry[0] << 16) | entry[1]] = action
            else:
                group, element, group_mask, element_mask = entry
                masked.add(((group << 16) | element, (group_mask << 16) | element_mask, action))
    assert plain == TABLE_E1_1
    assert masked == set(MASKED)
    assert set(TABLE_E1_1.values()) == ACTIONS
    assert len(TABLE_E1_1) > 600  # the whole table, not a selection


def _vr(tag: int) -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "LO"  # newer than this pydicom's dictionary: written with an explicit VR


def _planted(tag: int, vr: str, n: int) -> Any:
    """A value of ``vr`` unique to attribute number ``n``."""
    text = f"PHI{n:04d}X"
    values: dict[str, Any] = {
        "AE": text,
        "AS": "042Y",
        "CS": text,
        "DA": "19710203",
        "DS": "12.5",
        "DT": "19710203040506",
        "IS": "4242",
        "LO": text,
        "LT": text,
        "PN": f"Phi^{text}",
        "SH": text,
        "ST": text,
        "TM": "040506",
        "UC": text,
        "UI": f"1.2.826.0.1.3680043.10.999.{n}",
        "UR": f"https://phi.example/{text}",
        "UT": text,
    }
    if vr in values:
        return values[vr]
    if vr == "SQ":
        item = Dataset()
        item.PatientAddress = f"{text} street"  # X: removed wherever the item survives
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.10.998.{n}"
        return Sequence([item])
    if vr in ("OB", "OW", "UN", "OD", "OF", "OL", "OV"):
        return text.encode() + b"\x00"
    return 4242


def _plant_all(ds: Dataset, base: int) -> dict[int, Any]:
    planted = {}
    for n, tag in enumerate(sorted({**TABLE_E1_1, **EXTRA_ACTIONS})):
        if tag >> 16 in SKIPPED_GROUPS:
            continue
        vr = _vr(tag)
        value = _planted(tag, vr, base + n)
        ds.add(DataElement(tag, vr, value))
        planted[tag] = copy.deepcopy(value)  # deidentify changes the data set in place
    return planted


def _empty(value: Any) -> bool:
    return value is None or (hasattr(value, "__len__") and len(value) == 0)


def _check(ds: Dataset, tag: int, planted: Any) -> str | None:
    """Why ``tag`` in ``ds`` breaks its action, or None if it is handled per the table."""
    action = profile_action(tag)
    assert action is not None
    present = tag in ds
    if not present:
        return None if action.startswith("X") else f"{action} but removed"
    elem = ds[tag]
    value = elem.value
    if action == "X":
        return "X but present"
    if _empty(value):
        return None if "Z" in action else f"{action} but empty"
    if action in ("U", "X/Z/U*") and elem.VR == "UI":
        return None if value == remap_uid(planted, SALT) else "UID not replaced consistently"
    if elem.VR == "SQ":
        if "D" not in action and "U*" not in action:
            return f"{action} but the sequence kept items"
        inner = [item for item in value if "PatientAddress" in item]
        uids = [item.get("ReferencedSOPInstanceUID") for item in value]
        expected = [remap_uid(str(item.ReferencedSOPInstanceUID), SALT) for item in planted]
        if inner or uids != expected:
            return "sequence items not de-identified"
        return None
    if "D" not in action:
        return f"{action} but holds a value"
    return "original value kept" if value == planted else None


def test_every_listed_attribute_is_handled_per_its_action_top_level_and_nested() -> None:
    source = bundled_dataset("CT_small.dcm")
    for elem in list(source):
        if profile_action(int(elem.tag)) is not None:
            del source[elem.tag]  # only the planted values below
    carrier = pydicom.datadict.tag_for_keyword(CARRIER)
    assert carrier is not None and profile_action(carrier) is None
    top = _plant_all(source, 0)
    item = Dataset()
    nested = _plant_all(item, 5000)
    source.add(DataElement(carrier, "SQ", Sequence([item])))
    original = to_bytes(copy.deepcopy(source))
    out = pydicom.dcmread(io.BytesIO(to_bytes(deidentify(source, SALT, fallback_instance=b"x"))))
    problems = {}
    for where, ds, planted in (("top", out, top), ("nested", out[carrier].value[0], nested)):
        for tag, value in planted.items():
            why = _check(ds, tag, value)
            if why is not None:
                problems[f"{where} {keyword_for_tag(tag) or hex(tag)} ({profile_action(tag)})"] = why
    assert problems == {}
    assert len(top) > 600 and len(nested) == len(top)
    assert not any(int(e.tag) in EXTRA_ACTIONS and profile_action(int(e.tag)) == "X" for e in out)
    # Nothing planted as text survives anywhere in the file.
    written = to_bytes(out)
    leaked = [v for v in (*top.values(), *nested.values()) if isinstance(v, str) and v.encode() in written]
    assert leaked == []
    assert b"PHI0" in original  # the planted values were in the source


@pytest.mark.parametrize(
    ("keyword", "action"),
    [
        ("ContrastBolusAgent", "Z/D"),
        ("LabelText", "X/Z"),
        ("SourceSerialNumber", "X/Z"),
        ("AcquisitionDeviceProcessingDescription", "X/D"),
        ("ContentLabel", "D"),  # this and the next two: EXTRA_ACTIONS, not in the table
        ("PatientTransportArrangements", "X"),
        ("PlacerOrderNumberImagingServiceRequest", "Z"),
        ("FillerOrderNumberImagingServiceRequest", "Z"),
        ("IssuerOfAdmissionID", "X"),
        ("ScheduledPatientInstitutionResidence", "X"),
        ("StorageMediaFileSetID", "X"),
        ("GeneratorID", "X"),
        ("CameraOwnerName", "X"),
        ("ModifiedImageDescription", "X"),
        ("ContentDescription", "X/Z"),
    ],
)
def test_attributes_that_used_to_survive_have_their_action(keyword: str, action: str) -> None:
    tag = pydicom.datadict.tag_for_keyword(keyword)
    assert tag is not None and profile_action(tag) == action
