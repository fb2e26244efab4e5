"""De-identification of DICOM data sets on ingest (PS3.15 Annex E Basic Profile).

Every attribute of PS3.15 Table E.1-1 gets its action (:mod:`server.imaging.deid_table`, edition
named there); attributes the table does not list follow the rules of
:mod:`server.imaging.deid_rules`. UIDs are replaced by a keyed hash, so the same source UID always
maps to the same new UID under one key (studies and series stay grouped, references stay valid)
while nobody without the key can link them back.

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
from pydicom.tag import BaseTag
from pydicom.uid import UID

from server.imaging import pydicom_policy  # noqa: F401  (applies the logging policy)
from server.imaging.deid_rules import (
    BASIC_PROFILE_CODE,
    CLASS_UID_KEYWORDS,
    EXTRA_ACTIONS,
    METHOD_DESCRIPTION,
    PATIENT_GROUP_KEEP,
    TYPE2_ADDED,
    dummy_value,
)
from server.imaging.deid_table import MASKED, TABLE_E1_1

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


def profile_action(tag: int) -> str | None:
    """The Table E.1-1 action for ``tag`` (``X``, ``Z``, ``D``, ``U``, ``X/Z``, ...; or one of
    ``EXTRA_ACTIONS``), or None if unlisted."""
    action = TABLE_E1_1.get(tag, EXTRA_ACTIONS.get(tag))
    if action is not None:
        return action
    for base, mask, masked_action in MASKED:
        if tag & mask == base:
            return masked_action
    return None


@dataclass
class _Counts:
    removed: int = 0
    emptied: int = 0
    replaced: int = 0
    uids: int = 0


def _is_well_known(uid: str) -> bool:
    return bool(UID(uid.strip("\x00 ")).keyword)


def _remap_element_uids(elem: DataElement, key: bytes) -> int:
    values = list(elem.value) if isinstance(elem.value, MultiValue) else [elem.value]
    new = [v if not v or _is_well_known(str(v)) else remap_uid(str(v), key) for v in values]
    changed = sum(1 for a, b in zip(values, new, strict=True) if a != b)
    elem.value = new if isinstance(elem.value, MultiValue) else new[0]
    return changed


def _has_value(elem: DataElement) -> bool:
    value = elem.value
    if value is None:
        return False
    if isinstance(value, str | bytes | Sequence | MultiValue | list):
        return len(value) > 0
    return True


def _blank(elem: DataElement, counts: _Counts) -> None:
    elem.value = Sequence() if elem.VR == "SQ" else None
    counts.emptied += 1


def _dummy(elem: DataElement, key: bytes, counts: _Counts) -> None:
    """Action D: a non-identifying value of the element's VR (items of a sequence are cleaned)."""
    if elem.VR == "SQ":
        for item in elem.value:
            _clean(item, key, counts)
    elif elem.VR == "UI":
        counts.uids += _remap_element_uids(elem, key)
    else:
        elem.value = dummy_value(elem.VR)
        counts.replaced += 1


def _apply(action: str, elem: DataElement, key: bytes, counts: _Counts) -> bool:
    """Apply a Table E.1-1 action; False when the element is to be removed.

    A combined action (``X/Z``, ``X/D``, ``X/Z/D``, ``Z/D``, ``X/Z/U*``) names what the IOD may
    require instead of removal. Which IOD requires what is not known here, so an attribute the
    source has is never removed under a combined action: it is kept empty (``Z`` allowed and the
    value empty) or given a dummy value (``D`` allowed) - conformant whatever its Type, and it
    carries nothing of the original. Plain ``X`` removes.
    """
    if action == "X":
        return False
    if "Z" in action and elem.keyword in TYPE2_ADDED:
        # Type 2 in the Patient and General Study modules of every IOD: empty is conformant.
        _blank(elem, counts)
        return True
    if action == "U" or (action == "X/Z/U*" and elem.VR == "UI"):
        if elem.VR == "UI":
            counts.uids += _remap_element_uids(elem, key)
        else:
            _blank(elem, counts)
    elif action == "X/Z/U*" and elem.VR == "SQ":
        for item in elem.value:  # U*: the sequence stays, its UIDs are replaced
            _clean(item, key, counts)
    elif action in ("Z", "X/Z", "X/Z/U*"):
        _blank(elem, counts)
    elif action == "D" or (action in ("X/D", "Z/D", "X/Z/D") and (_has_value(elem) or "Z" not in action)):
        _dummy(elem, key, counts)
    else:
        _blank(elem, counts)
    return True


def _unlisted_removed(elem: DataElement) -> bool:
    tag = elem.tag
    if tag.is_private or elem.VR == "UN" or not elem.keyword:
        return True
    if 0x5000 <= tag.group <= 0x50FF or 0x6000 <= tag.group <= 0x60FF:
        # Curves and overlays go as whole groups: an overlay without its data is not valid.
        return True
    if tag.group == 0x0010 and elem.keyword not in PATIENT_GROUP_KEEP:
        return True
    return elem.VR in _NETWORK_VRS


def _removed_by_tag(tag: BaseTag) -> bool:
    """Elements removed whatever their value: private ones, and the curve and overlay groups
    (an overlay without its data is not valid, so the groups go whole)."""
    return tag.is_private or 0x5000 <= tag.group <= 0x50FF or 0x6000 <= tag.group <= 0x60FF


def prune_unread(ds: Dataset) -> int:
    """Delete the elements :func:`deidentify` removes by tag alone, without decoding their values.

    pydicom decodes a value on first access; most of a scanner's file is often private elements,
    whose decoding would be wasted work since they are removed anyway. Sequences that stay are
    pruned item by item (their items are parsed, the private elements in them are not decoded).
    :func:`deidentify` gives the same result with or without this step.

    Returns:
        The number of elements deleted.
    """
    removed = 0
    for tag in list(ds.keys()):
        if _removed_by_tag(tag):
            del ds[tag]
            removed += 1
        elif (elem := ds[tag]).VR == "SQ":  # kept elements are decoded (and so checked) anyway
            for item in elem.value:
                removed += prune_unread(item)
    return removed


def _clean(ds: Dataset, key: bytes, counts: _Counts) -> None:
    for tag in list(ds.keys()):
        if _removed_by_tag(tag):
            # Deleted before its value is read: decoding it would be wasted work.
            del ds[tag]
            counts.removed += 1
            continue
        elem = ds[tag]
        if elem.keyword in _PIXEL_KEYWORDS:
            continue
        action = profile_action(tag)
        if action is not None:
            keep = _apply(action, elem, key, counts)
        elif _unlisted_removed(elem):
            keep = False
        else:
            keep = True
            _clean_unlisted(elem, key, counts)
        if not keep:
            del ds[tag]
            counts.removed += 1


def _clean_unlisted(elem: DataElement, key: bytes, counts: _Counts) -> None:
    """Attributes the table does not list: kept, but names, dates and instance UIDs never pass."""
    if elem.VR == "SQ":
        for item in elem.value:
            _clean(item, key, counts)
    elif elem.VR == "PN" and _has_value(elem):
        _blank(elem, counts)
    elif elem.VR in _DATE_TIME_VRS and _has_value(elem):
        # No longitudinal temporal information is retained; a dummy keeps required dates valid.
        elem.value = dummy_value(elem.VR)
        counts.replaced += 1
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

    for keyword in TYPE2_ADDED:
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
        "DICOM de-identified: %d attributes removed, %d emptied, %d given dummy values, %d UIDs replaced",
        counts.removed,
        counts.emptied,
        counts.replaced,
        counts.uids,
    )
    return ds


def to_bytes(ds: Dataset) -> bytes:
    """Write a data set as a DICOM file (preamble, 'DICM', file meta, data set)."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
