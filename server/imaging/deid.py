"""De-identification of DICOM data sets on ingest (PS3.15 Annex E Basic Profile).

The actions per attribute are in :mod:`server.imaging.deid_rules`. UIDs are replaced by a keyed
hash, so the same source UID always maps to the same new UID under one key (studies and series
stay grouped, references stay valid) while nobody without the key can link them back.

Nothing here logs a tag value: only counts.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
from dataclasses import dataclass

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from server.imaging import pydicom_policy  # noqa: F401  (applies the logging policy)
from server.imaging.deid_rules import (
    BASIC_PROFILE_CODE,
    CLASS_UID_KEYWORDS,
    EMPTY,
    METHOD_DESCRIPTION,
    PATIENT_GROUP_KEEP,
    REMOVE,
)

logger = logging.getLogger(__name__)

_DATE_TIME_VRS = frozenset({"DA", "DT", "TM"})
# Application entity titles and URLs name stations, hosts and sites: never needed for reading.
_NETWORK_VRS = frozenset({"AE", "UR"})
_PIXEL_KEYWORDS = frozenset({"PixelData", "FloatPixelData", "DoubleFloatPixelData"})
SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")


def remap_uid(uid: str, key: bytes) -> str:
    """Replace a UID by ``2.25.<integer>`` derived from HMAC-SHA256(key, uid).

    The integer is the first 128 bits of the MAC, the same size as the UUID-derived UIDs PS3.5
    B.2 defines under root 2.25, so the result is a valid UID of at most 44 characters.

    Args:
        uid: Source UID (trailing NUL/space padding is ignored).
        key: Secret key; the same key gives the same mapping.
    """
    digest = hmac.new(key, uid.strip("\x00 ").encode("ascii", "replace"), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


@dataclass
class _Counts:
    removed: int = 0
    emptied: int = 0
    uids: int = 0


def _is_well_known(uid: str) -> bool:
    return bool(UID(uid.strip("\x00 ")).keyword)


def _remap_element_uids(elem: DataElement, key: bytes) -> int:
    values = list(elem.value) if isinstance(elem.value, MultiValue) else [elem.value]
    new = [v if not v or _is_well_known(str(v)) else remap_uid(str(v), key) for v in values]
    changed = sum(1 for a, b in zip(values, new, strict=True) if a != b)
    elem.value = new if isinstance(elem.value, MultiValue) else new[0]
    return changed


def _blank(elem: DataElement) -> None:
    elem.value = Sequence() if elem.VR == "SQ" else None


def _must_remove(elem: DataElement) -> bool:
    tag = elem.tag
    keyword = elem.keyword
    if tag.is_private or elem.VR == "UN" or not keyword:
        return True
    if 0x5000 <= tag.group <= 0x50FF or 0x6000 <= tag.group <= 0x60FF:  # curves, overlays
        return True
    if tag.group == 0x0010 and keyword not in PATIENT_GROUP_KEEP:
        return True
    if keyword in REMOVE:
        return True
    return keyword not in EMPTY and elem.VR in ({"PN"} | _DATE_TIME_VRS | _NETWORK_VRS)


def _clean(ds: Dataset, key: bytes, counts: _Counts) -> None:
    for elem in list(ds):
        if elem.keyword in _PIXEL_KEYWORDS:
            continue
        if _must_remove(elem):
            del ds[elem.tag]
            counts.removed += 1
        elif elem.keyword in EMPTY:
            _blank(elem)
            counts.emptied += 1
        elif elem.VR == "SQ":
            for item in elem.value:
                _clean(item, key, counts)
        elif elem.VR == "UI" and elem.keyword not in CLASS_UID_KEYWORDS and elem.value:
            counts.uids += _remap_element_uids(elem, key)


def deidentify(ds: Dataset, key: bytes, *, fallback_instance: bytes) -> Dataset:
    """De-identify a data set in place and give it fresh file meta.

    Args:
        ds: Data set read by pydicom; modified in place.
        key: Secret key for UID remapping (non-empty).
        fallback_instance: Bytes identifying this upload (e.g. a digest of its pixel data) used to
            derive a SOPInstanceUID when the source has none.

    Returns:
        ``ds``, with PatientIdentityRemoved = YES and the method recorded.

    Raises:
        ValueError: If ``key`` is empty.
    """
    if not key:
        raise ValueError("uid_salt must be a non-empty secret key")
    counts = _Counts()
    _clean(ds, key, counts)

    for keyword in sorted(EMPTY - {"ContentCreatorName", "ContentDate", "ContentTime"}):
        if keyword not in ds:
            setattr(ds, keyword, None)
    if "SOPClassUID" not in ds:
        ds.SOPClassUID = SECONDARY_CAPTURE
    if "SOPInstanceUID" not in ds or not ds.SOPInstanceUID:
        ds.SOPInstanceUID = remap_uid(hashlib.sha256(fallback_instance).hexdigest(), key)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD_DESCRIPTION
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = BASIC_PROFILE_CODE
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    ds.LongitudinalTemporalInformationModified = "REMOVED"

    # Fresh file meta: the source's may name the sending application, station or AE title.
    transfer_syntax = ds.file_meta.TransferSyntaxUID
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta = meta
    # The 128-byte preamble is free for applications (e.g. TIFF headers); do not carry it over.
    ds.preamble = bytes(128)
    logger.info(
        "DICOM de-identified: %d attributes removed, %d emptied, %d UIDs replaced",
        counts.removed,
        counts.emptied,
        counts.uids,
    )
    return ds


def to_bytes(ds: Dataset) -> bytes:
    """Write a data set as a DICOM file (preamble, 'DICM', file meta, data set)."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
