"""Ingest an uploaded image: detect, decode, de-identify and encode everything the server stores."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from server.imaging.decoded import DecodedImage
from server.imaging.deid import deidentify, prune_unread, to_bytes
from server.imaging.detect import ImageFormat, detect_format
from server.imaging.dicom_image import decode_first_frame, read_dataset
from server.imaging.errors import InvalidImage
from server.imaging.pngio import encode_png, thumbnail_png
from server.imaging.raster import decode_raster
from server.imaging.values import percentile_window, range_window, to_stored_values
from server.imaging.window import render_window

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestedImage:
    """Everything the server keeps of one uploaded image. Holds no PHI.

    Attributes:
        format: Detected container type.
        width: Columns.
        height: Rows.
        pixels: (height, width) uint16 stored values.
        value_offset: Modality value of stored value 0.
        value_scale: Modality units per stored step: modality = pixels * value_scale + value_offset.
        lossless: Whether ``pixels`` reproduces the source's values exactly (true for all integer
            sources of at most 16 bits).
        window_center: Default window center, modality units.
        window_width: Default window width, modality units (> 0).
        window_source: "tags" (from WindowCenter/WindowWidth), "full_range" (8-bit sources shown
            as they are) or "percentiles" (0.5th to 99.5th percentile).
        invert: Show high values dark (MONOCHROME1); pass to :func:`render_window`.
        bits_stored: Bits per sample of the source.
        photometric: Source photometric interpretation ("MONOCHROME2", "RGB", ...).
        modality: DICOM Modality code, None for PNG/JPEG.
        display_png: 8-bit grayscale PNG rendered at the default window (MONOCHROME1 inverted).
        thumbnail_png: 8-bit PNG of the display image, longest side at most 256 px.
        pixels_png16: 16-bit grayscale PNG of ``pixels`` (lossless storage).
        deidentified_dicom: De-identified DICOM file for DICOM sources, else None.
        metadata: Non-PHI description (JSON-serialisable).
        deidentified_uids: Study, series and SOP instance UIDs of ``deidentified_dicom`` (DICOM
            sources only), so callers linking them need not parse the file again.
    """

    format: ImageFormat
    width: int
    height: int
    pixels: npt.NDArray[np.uint16]
    value_offset: float
    value_scale: float
    lossless: bool
    window_center: float
    window_width: float
    window_source: str
    invert: bool
    bits_stored: int
    photometric: str
    modality: str | None
    display_png: bytes
    thumbnail_png: bytes
    pixels_png16: bytes
    deidentified_dicom: bytes | None
    metadata: dict[str, Any]
    deidentified_uids: tuple[str, str, str] | None = None


def _decode(data: bytes, fmt: ImageFormat, *, max_pixels: int, uid_salt: bytes) -> DecodedImage:
    if fmt is not ImageFormat.DICOM:
        return decode_raster(data, fmt, max_pixels=max_pixels)
    ds = read_dataset(data, prune=prune_unread)
    decoded = decode_first_frame(ds, max_pixels=max_pixels)
    fallback = hashlib.sha256(np.ascontiguousarray(decoded.values).tobytes()).digest()
    try:
        clean = deidentify(ds, uid_salt, fallback_instance=fallback)
        decoded.deidentified_dicom = to_bytes(clean)
    except Exception as exc:
        # The message of a write failure may quote a value; name only the exception type.
        raise InvalidImage(
            f"DICOM file cannot be written back after de-identification ({type(exc).__name__})"
        ) from exc
    decoded.deidentified_uids = (
        str(clean.get("StudyInstanceUID", "")),
        str(clean.get("SeriesInstanceUID", "")),
        str(clean.SOPInstanceUID),
    )
    return decoded


def ingest_image(data: bytes, *, max_pixels: int, uid_salt: bytes) -> IngestedImage:
    """Detect, decode and prepare an uploaded PNG, JPEG or DICOM for storage.

    Args:
        data: The uploaded file, complete.
        max_pixels: Largest width * height accepted (checked from the header, before decoding).
        uid_salt: Secret key for DICOM UID remapping (same key -> same new UIDs).

    Returns:
        The stored forms of the image; see :class:`IngestedImage`.

    Raises:
        UnsupportedImageType: Not PNG, JPEG or DICOM (HTTP 415).
        ImageTooLarge: More than ``max_pixels`` pixels (HTTP 413).
        InvalidImage: Truncated, corrupt or undecodable (HTTP 422).
        ValueError: ``uid_salt`` empty or ``max_pixels`` not positive (programming errors).
    """
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    if not uid_salt:
        raise ValueError("uid_salt must be a non-empty secret key")
    fmt = detect_format(data)
    decoded = _decode(data, fmt, max_pixels=max_pixels, uid_salt=uid_salt)
    try:
        stored = to_stored_values(decoded.values)
    except ValueError as exc:
        raise InvalidImage(f"{fmt.value} pixel values are unusable: {exc}") from exc
    scale = stored.step * decoded.slope
    offset = stored.shift * decoded.slope + decoded.intercept
    if decoded.tag_window is not None:
        (center, width), source = decoded.tag_window, "tags"
    elif decoded.full_range is not None and stored.step == 1.0 and stored.shift == 0.0:
        (center, width), source = range_window(*decoded.full_range, offset, scale), "full_range"
    else:
        (center, width), source = percentile_window(stored.pixels, offset, scale), "percentiles"

    display = render_window(stored.pixels, offset, scale, center, width, invert=decoded.invert)
    display_png = encode_png(display)
    height, width_px = stored.pixels.shape
    metadata = dict(decoded.metadata)
    metadata.update(
        format=fmt.value,
        lossless=stored.lossless,
        window_source=source,
        deidentified=fmt is ImageFormat.DICOM,
    )
    logger.info("ingested %s image %dx%d (window from %s)", fmt.value, width_px, height, source)
    return IngestedImage(
        format=fmt,
        width=width_px,
        height=height,
        pixels=stored.pixels,
        value_offset=float(offset),
        value_scale=float(scale),
        lossless=stored.lossless,
        window_center=float(center),
        window_width=float(width),
        window_source=source,
        invert=decoded.invert,
        bits_stored=decoded.bits_stored,
        photometric=decoded.photometric,
        modality=decoded.modality,
        display_png=display_png,
        thumbnail_png=thumbnail_png(display, display_png=display_png),
        pixels_png16=encode_png(stored.pixels),
        deidentified_dicom=decoded.deidentified_dicom,
        metadata=metadata,
        deidentified_uids=decoded.deidentified_uids,
    )
