"""Recognise an upload's image type from its bytes (never from its name)."""

from __future__ import annotations

import io
import logging
from enum import StrEnum

import pydicom
from pydicom.errors import InvalidDicomError

from server.imaging.errors import UnsupportedImageType

logger = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
DICOM_PREFIX_OFFSET = 128
DICOM_PREFIX = b"DICM"

# First bytes of a DICOM data set written without preamble: tag group 0x0002 (file meta) or 0x0008
# (identification), little or big endian.
_RAW_DICOM_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")
# A data set parsed from arbitrary bytes must hold at least one of these to count as DICOM.
_DICOM_EVIDENCE = ("SOPClassUID", "SOPInstanceUID", "Modality", "StudyInstanceUID", "Rows", "ImageType")

# Common types we recognise only to name them in the refusal.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
)

SUPPORTED = "PNG, JPEG (including 16-bit grayscale PNG) or DICOM"


class ImageFormat(StrEnum):
    """Supported upload types; the value is what the database stores."""

    png = "png"
    jpeg = "jpeg"
    dicom = "dicom"


def has_dicom_prefix(data: bytes) -> bool:
    """True when ``data`` has the Part 10 ``DICM`` marker after the 128-byte preamble."""
    return data[DICOM_PREFIX_OFFSET : DICOM_PREFIX_OFFSET + 4] == DICOM_PREFIX


def _looks_like_raw_dicom(data: bytes) -> bool:
    """True when ``data`` parses as a DICOM data set written without preamble and file meta."""
    if data[:2] not in _RAW_DICOM_STARTS:
        return False
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    except (InvalidDicomError, ValueError, TypeError, EOFError, OSError, OverflowError, KeyError):
        return False
    except Exception:  # noqa: BLE001 - pydicom raises many types on garbage; any of them means "not DICOM"
        logger.debug("raw DICOM sniff failed", exc_info=True)
        return False
    return any(keyword in ds for keyword in _DICOM_EVIDENCE)


def detect_format(data: bytes) -> ImageFormat:
    """The type of an upload, from its content.

    Args:
        data: the whole uploaded file.

    Returns:
        The detected :class:`ImageFormat`.

    Raises:
        UnsupportedImageType: for anything other than PNG, JPEG or DICOM (with or without preamble).
    """
    if data.startswith(PNG_SIGNATURE):
        return ImageFormat.png
    if data.startswith(JPEG_SIGNATURE):
        return ImageFormat.jpeg
    if has_dicom_prefix(data) or _looks_like_raw_dicom(data):
        return ImageFormat.dicom
    if not data:
        raise UnsupportedImageType("unsupported file: it is empty")
    for signature, name in _OTHER_SIGNATURES:
        if data.startswith(signature):
            raise UnsupportedImageType(f"unsupported image type {name}; upload {SUPPORTED}")
    raise UnsupportedImageType(f"unsupported file type: content is not {SUPPORTED}")
