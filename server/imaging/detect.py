"""Detect an upload's image type from its content, never from its file name."""

from __future__ import annotations

import enum
import io
import logging
import struct

import pydicom

from server.imaging import pydicom_policy  # noqa: F401  (applies the logging policy)
from server.imaging.errors import UnsupportedImageType

logger = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
DICOM_PREAMBLE_LENGTH = 128
DICOM_PREFIX = b"DICM"

# Groups a DICOM data set written without preamble and file meta usually starts with: the file meta
# group itself, or the identifying group 0008 (Specific Character Set, SOP Class UID, ...).
_RAW_DICOM_FIRST_GROUPS = (0x0002, 0x0008)


class ImageFormat(enum.StrEnum):
    """Image container types the server accepts. The value is what gets stored in the database."""

    PNG = "png"
    JPEG = "jpeg"
    DICOM = "dicom"


def _looks_like_raw_dicom(data: bytes) -> bool:
    """Whether ``data`` is a DICOM data set without the 128-byte preamble and 'DICM' prefix.

    A cheap check of the first tag's group (little or big endian) comes first, so random bytes are
    turned away without invoking the parser; then the parser must read at least one element of the
    identifying group 0008.
    """
    if len(data) < 8:
        return False
    group_le = struct.unpack_from("<H", data, 0)[0]
    group_be = struct.unpack_from(">H", data, 0)[0]
    if group_le not in _RAW_DICOM_FIRST_GROUPS and group_be not in _RAW_DICOM_FIRST_GROUPS:
        return False
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
        # Element access forces the lazily parsed values to be read.
        return any(elem.tag.group == 0x0008 for elem in ds)
    except Exception:  # the parser raises many types on garbage; any of them means "not DICOM"
        return False


def detect_format(data: bytes) -> ImageFormat:
    """The image type of ``data`` judged from its content.

    Args:
        data: The complete uploaded file.

    Returns:
        PNG (by its 8-byte signature), JPEG (SOI marker followed by another marker) or DICOM ('DICM'
        after the 128-byte preamble, 'DICM' at the very start, or a parsable data set without
        preamble and file meta).

    Raises:
        UnsupportedImageType: For empty data or any other content.
    """
    if not data:
        raise UnsupportedImageType("empty upload: no image type can be detected")
    if data.startswith(PNG_SIGNATURE):
        return ImageFormat.PNG
    if data.startswith(JPEG_SIGNATURE):
        return ImageFormat.JPEG
    if data[DICOM_PREAMBLE_LENGTH : DICOM_PREAMBLE_LENGTH + 4] == DICOM_PREFIX:
        return ImageFormat.DICOM
    if data.startswith(DICOM_PREFIX) or _looks_like_raw_dicom(data):
        return ImageFormat.DICOM
    raise UnsupportedImageType(
        "unsupported image type: the content is not PNG, JPEG or DICOM (the file name is not used)"
    )
