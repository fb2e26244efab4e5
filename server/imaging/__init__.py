"""Image handling for uploaded cases: type detection, decoding, de-identification, rendering.

Pure library (numpy, Pillow, pydicom); no web, database or torch. See ``docs/imaging.md``.
"""

from server.imaging.deid import remap_uid
from server.imaging.detect import ImageFormat, detect_format
from server.imaging.errors import ImageTooLarge, ImagingError, InvalidImage, UnsupportedImageType
from server.imaging.ingest import IngestedImage, ingest_image
from server.imaging.pngio import decode_png16, encode_png
from server.imaging.window import render_window

__all__ = [
    "ImageFormat",
    "ImageTooLarge",
    "ImagingError",
    "IngestedImage",
    "InvalidImage",
    "UnsupportedImageType",
    "decode_png16",
    "detect_format",
    "encode_png",
    "ingest_image",
    "remap_uid",
    "render_window",
]
