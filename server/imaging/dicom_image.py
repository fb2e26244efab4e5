"""Read DICOM uploads with pydicom: parse, decode the first frame, collect non-PHI metadata.

Error messages never quote tag values (they may be PHI); pydicom's own messages are only passed on
from the pixel-decoding stage, which reads the image pixel module (group 0028) alone.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from server.imaging import pydicom_policy  # noqa: F401  (applies the logging policy)
from server.imaging.decoded import DecodedImage, rgb_to_gray
from server.imaging.defined_terms import COPIED_CODES
from server.imaging.detect import DICOM_PREAMBLE_LENGTH, DICOM_PREFIX
from server.imaging.errors import InvalidImage
from server.imaging.raster import check_pixel_count

logger = logging.getLogger(__name__)

# Code String (CS) values: upper-case letters, digits, space and underscore, at most 16 characters.
# Only values of this shape are copied into metadata, so free text can never slip through.
_CODE_STRING = re.compile(r"^[A-Z0-9 _]{1,16}$")


def read_dataset(data: bytes, *, prune: Callable[[pydicom.Dataset], object] | None = None) -> pydicom.Dataset:
    """Parse DICOM bytes with or without preamble/file meta into a fully read data set.

    Args:
        data: The file's bytes.
        prune: Called on the parsed data set before its values are decoded and checked, to delete
            elements that are of no use (the ingest passes :func:`server.imaging.deid.prune_unread`,
            so the elements de-identification removes anyway are never decoded).

    Raises:
        InvalidImage: When the bytes cannot be parsed (truncated or corrupt).
    """
    if data.startswith(DICOM_PREFIX):
        data = bytes(DICOM_PREAMBLE_LENGTH) + data
    has_preamble = data[DICOM_PREAMBLE_LENGTH : DICOM_PREAMBLE_LENGTH + 4] == DICOM_PREFIX
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=not has_preamble)
        if prune is not None:
            prune(ds)
        # Values are converted lazily; touch every element now so a corrupt one fails here.
        for _elem in ds.iterall():
            pass
    except Exception as exc:
        raise InvalidImage(
            f"DICOM file cannot be parsed; it is truncated or corrupt ({type(exc).__name__})"
        ) from exc
    _ensure_transfer_syntax(ds)
    return ds


def _ensure_transfer_syntax(ds: pydicom.Dataset) -> None:
    """Give a data set read without file meta the transfer syntax it was actually encoded in."""
    if not hasattr(ds, "file_meta") or ds.file_meta is None:
        ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" in ds.file_meta:
        return
    implicit, little = ds.original_encoding
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    elif little is False:
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    else:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian


def _int_tag(ds: pydicom.Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None:
        raise InvalidImage(f"DICOM image lacks the required {keyword} attribute")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidImage(f"DICOM {keyword} is not an integer") from exc


def _first_float(value: Any) -> float | None:
    """First value of a possibly multi-valued numeric attribute, or None if absent/unusable."""
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue | list | tuple):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _tag_window(ds: pydicom.Dataset) -> tuple[float, float] | None:
    center = _first_float(ds.get("WindowCenter"))
    width = _first_float(ds.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    return center, width


def decode_first_frame(ds: pydicom.Dataset, *, max_pixels: int) -> DecodedImage:
    """Decode the first frame of a DICOM image to grayscale stored values.

    MONOCHROME1/2 keep their stored values (MONOCHROME1 sets ``invert``); RGB/YBR (converted to
    RGB by pydicom) and PALETTE COLOR become luma. Rescale slope/intercept are kept as the linear
    modality map; a Modality LUT Sequence (non-linear) is applied to the values instead.

    Args:
        ds: Data set from :func:`read_dataset`.
        max_pixels: Largest Rows * Columns accepted.

    Raises:
        ImageTooLarge: Rows * Columns over ``max_pixels``.
        InvalidImage: No pixel data, missing image attributes, or pixel data that cannot be decoded
            (truncated, or a compressed transfer syntax without an installed decoder).
    """
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise InvalidImage("DICOM object has no pixel data (it is not an image)")
    rows, columns = _int_tag(ds, "Rows"), _int_tag(ds, "Columns")
    frames = _int_tag(ds, "NumberOfFrames", 1)
    check_pixel_count(columns, rows, max_pixels, "DICOM header")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    transfer_syntax = UID(ds.file_meta.TransferSyntaxUID)
    try:
        frame = pixel_array(ds, index=0) if frames > 1 else pixel_array(ds)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise InvalidImage(f"DICOM pixel data ({transfer_syntax.name}) cannot be decoded: {reason}") from exc

    slope = _first_float(ds.get("RescaleSlope")) or 1.0
    intercept = _first_float(ds.get("RescaleIntercept")) or 0.0
    values: npt.NDArray[np.generic]
    if photometric == "PALETTE COLOR":
        values = rgb_to_gray(apply_color_lut(frame, ds))
        slope, intercept = 1.0, 0.0
    elif frame.ndim == 3:
        values = rgb_to_gray(frame)
        slope, intercept = 1.0, 0.0
    elif "ModalityLUTSequence" in ds:
        values = apply_modality_lut(frame, ds)
        slope, intercept = 1.0, 0.0
    else:
        values = frame
    if values.shape != (rows, columns):
        raise InvalidImage(f"DICOM pixel data decodes to shape {values.shape}, not ({rows}, {columns})")

    bits_stored = _int_tag(ds, "BitsStored", int(ds.get("BitsAllocated", 16) or 16))
    modality = _code_string(ds.get("Modality"))
    meta = dicom_metadata(ds, frames=frames, transfer_syntax=transfer_syntax)
    meta.update(rescale_slope=slope, rescale_intercept=intercept)
    monochrome = photometric in ("MONOCHROME1", "MONOCHROME2")
    return DecodedImage(
        values=values,
        slope=slope,
        intercept=intercept,
        bits_stored=bits_stored,
        photometric=photometric,
        invert=photometric == "MONOCHROME1",
        tag_window=_tag_window(ds) if monochrome else None,
        full_range=None if monochrome else _full_range(values),
        modality=modality,
        metadata=meta,
    )


def _full_range(values: npt.NDArray[np.generic]) -> tuple[int, int] | None:
    """Colour sources are shown over their whole sample range, as their own viewers would."""
    if values.dtype == np.uint8:
        return 0, 255
    return None


def _code_string(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value[0] if isinstance(value, pydicom.multival.MultiValue) and len(value) else value)
    text = text.strip()
    return text if _CODE_STRING.match(text) else None


def _spacing(ds: pydicom.Dataset) -> tuple[list[float], str] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is None or isinstance(value, str):
            continue
        try:
            pair = [float(v) for v in value]
        except (TypeError, ValueError):
            continue
        if len(pair) == 2 and all(math.isfinite(v) and v > 0 for v in pair):
            return pair, keyword
    return None


def dicom_metadata(ds: pydicom.Dataset, *, frames: int, transfer_syntax: UID) -> dict[str, Any]:
    """Non-PHI description of the image: coded values, geometry and encoding only.

    Only Code String attributes holding one of their defined terms (``defined_terms.py``), numbers,
    and well-known UIDs' names are copied; no free text, names, dates or instance UIDs.
    """
    meta: dict[str, Any] = {
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "number_of_frames": frames,
        "frame_used": 0,
        "transfer_syntax": transfer_syntax.name if transfer_syntax.is_valid else None,
    }
    sop_class = UID(str(ds.get("SOPClassUID", "")))
    meta["sop_class"] = sop_class.name if sop_class.keyword else None
    for keyword, key, terms in COPIED_CODES:
        code = _code_string(ds.get(keyword))
        # A code string may still be text a site typed: only defined terms reach the database.
        if code is not None and code.upper() in terms:
            meta[key] = code.upper()
    for keyword, key in (
        ("BitsAllocated", "bits_allocated"),
        ("BitsStored", "bits_stored"),
        ("PixelRepresentation", "pixel_representation"),
    ):
        if keyword in ds and ds.get(keyword) is not None:
            meta[key] = int(ds.get(keyword))
    spacing = _spacing(ds)
    if spacing is not None:
        meta["pixel_spacing_mm"], meta["pixel_spacing_source"] = spacing
    windows = tag_windows(ds)
    if windows:
        meta["dicom_windows"] = windows
    return meta


def tag_windows(ds: pydicom.Dataset) -> list[dict[str, float]]:
    """Every window the file proposes (WindowCenter/WindowWidth may hold several pairs), as
    ``{"center", "width"}`` in modality units; the viewer offers them as presets. The free-text
    explanation is not copied (it is not guaranteed to be free of identifying text)."""

    def numbers(value: object) -> list[float]:
        items = list(value) if isinstance(value, pydicom.multival.MultiValue) else [value]
        out = []
        for item in items:
            try:
                number = float(item)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return []
            out.append(number)
        return out

    centers = numbers(ds.get("WindowCenter"))
    widths = numbers(ds.get("WindowWidth"))
    return [
        {"center": c, "width": w}
        for c, w in zip(centers, widths, strict=False)
        if math.isfinite(c) and math.isfinite(w) and w > 0
    ]
