"""Decode PNG and JPEG uploads with Pillow into a grayscale :class:`DecodedImage`."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from server.imaging.decoded import DecodedImage
from server.imaging.detect import ImageFormat
from server.imaging.errors import ImageTooLarge, InvalidImage

_PILLOW_FORMAT = {ImageFormat.PNG: "PNG", ImageFormat.JPEG: "JPEG"}
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def check_pixel_count(width: int, height: int, max_pixels: int, what: str) -> None:
    """Refuse images whose header claims more than ``max_pixels`` pixels, before decoding them.

    Raises:
        ImageTooLarge: When ``width * height > max_pixels``.
        InvalidImage: When a dimension is not positive.
    """
    if width <= 0 or height <= 0:
        raise InvalidImage(f"{what} declares an empty image ({width}x{height} pixels)")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{what} declares {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} pixels (decompression-bomb guard)"
        )


def decode_raster(data: bytes, fmt: ImageFormat, *, max_pixels: int) -> DecodedImage:
    """Decode a PNG or JPEG to stored values.

    8-bit and 16-bit grayscale keep their values; colour (RGB, RGBA, palette, CMYK) becomes BT.601
    luma; alpha is ignored. JPEG EXIF orientation is applied so the stored image is upright as any
    viewer shows it. Nothing but pixels is kept (text chunks and EXIF are dropped).

    Args:
        data: File bytes, already detected as ``fmt``.
        fmt: ImageFormat.PNG or ImageFormat.JPEG.
        max_pixels: Largest width * height accepted.

    Raises:
        ImageTooLarge: Header claims more than ``max_pixels`` pixels.
        InvalidImage: Truncated, corrupt or undecodable file.
    """
    name = _PILLOW_FORMAT[fmt]
    try:
        image = Image.open(io.BytesIO(data), formats=[name])
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{name} image is too large to decode safely: {exc}") from exc
    except Exception as exc:  # Pillow raises assorted types for broken headers
        raise InvalidImage(f"corrupt {name} file: the header cannot be read ({exc})") from exc
    with image:
        check_pixel_count(image.width, image.height, max_pixels, f"{name} header")
        try:
            image.load()
            upright: Image.Image = image
            if fmt is ImageFormat.JPEG:
                upright = ImageOps.exif_transpose(image)
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"{name} image is too large to decode safely: {exc}") from exc
        except Exception as exc:  # truncated streams: OSError; bad chunks: SyntaxError; zlib errors
            raise InvalidImage(f"corrupt or truncated {name} file: {exc}") from exc
        return _to_decoded(upright, name)


def _to_decoded(image: Image.Image, name: str) -> DecodedImage:
    mode = image.mode
    meta = {"source_mode": mode, "rows": image.height, "columns": image.width}
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.uint16)
        return DecodedImage(values, bits_stored=16, metadata=meta)
    if mode == "I":
        values32 = np.asarray(image)
        bits = 16 if values32.min() >= 0 and values32.max() <= 0xFFFF else 32
        return DecodedImage(values32, bits_stored=bits, metadata=meta)
    if mode in ("L", "1"):
        gray = np.asarray(image.convert("L"))
        return DecodedImage(gray, bits_stored=8, full_range=(0, 255), metadata=meta)
    if mode == "LA":
        gray = np.asarray(image.getchannel("L"))
        return DecodedImage(gray, bits_stored=8, full_range=(0, 255), metadata=meta)
    if mode in ("RGB", "RGBA", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        photometric = "PALETTE COLOR" if mode in ("P", "PA") else "RGB"
        gray = np.asarray(image.convert("RGB").convert("L"))
        return DecodedImage(gray, bits_stored=8, photometric=photometric, full_range=(0, 255), metadata=meta)
    raise InvalidImage(f"{name} pixel mode {mode!r} is not supported")
