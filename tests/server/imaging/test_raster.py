"""PNG and JPEG ingest: values kept, colour to gray, corrupt files and decompression bombs refused."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from server.errors import domain_status
from server.imaging import (
    ImageFormat,
    ImageTooLarge,
    IngestedImage,
    InvalidImage,
    decode_png16,
    ingest_image,
    render_window,
)
from tests.server.imaging.helpers import SALT, gradient, jpeg_bytes, png_array, png_bytes


def ingest(data: bytes, max_pixels: int = 10_000_000) -> IngestedImage:
    return ingest_image(data, max_pixels=max_pixels, uid_salt=SALT)


def png_header_only(width: int, height: int, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` but which carries (almost) no image data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_8bit_png_is_kept_exactly_and_displayed_unchanged() -> None:
    source = gradient(40, 70, 255, np.uint8)
    image = ingest(png_bytes(source))
    assert image.format is ImageFormat.PNG and image.deidentified_dicom is None
    assert (image.width, image.height, image.bits_stored) == (70, 40, 8)
    np.testing.assert_array_equal(image.pixels, source)
    assert (image.value_offset, image.value_scale) == (0.0, 1.0)
    assert (image.window_center, image.window_width, image.window_source) == (128.0, 256.0, "full_range")
    np.testing.assert_array_equal(png_array(image.display_png), source)
    np.testing.assert_array_equal(decode_png16(image.pixels_png16), source)
    assert image.photometric == "MONOCHROME2" and image.modality is None and not image.invert


def test_16bit_png_is_lossless_with_percentile_window() -> None:
    rng = np.random.default_rng(1)
    source = rng.integers(200, 3800, size=(50, 60)).astype(np.uint16)
    image = ingest(png_bytes(source))
    assert image.bits_stored == 16 and image.lossless
    np.testing.assert_array_equal(image.pixels, source)
    stored_back = decode_png16(image.pixels_png16)
    assert stored_back.dtype == np.uint16
    np.testing.assert_array_equal(stored_back, source)
    assert image.window_source == "percentiles"
    low = image.window_center - image.window_width / 2
    high = image.window_center + image.window_width / 2
    assert 200 <= low < 260 and 3740 < high <= 3801
    expected = render_window(source, 0.0, 1.0, image.window_center, image.window_width)
    np.testing.assert_array_equal(png_array(image.display_png), expected)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "LA"])
def test_colour_pngs_become_luma(mode: str) -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, size=(30, 40, 3)).astype(np.uint8)
    source = Image.fromarray(rgb).convert(mode)
    buf = io.BytesIO()
    source.save(buf, format="PNG")
    image = ingest(buf.getvalue())
    expected = (
        np.asarray(source.convert("RGB").convert("L")) if mode != "LA" else np.asarray(source.getchannel("L"))
    )
    np.testing.assert_array_equal(image.pixels, expected)
    assert image.pixels.ndim == 2


def test_jpeg_gray_and_colour() -> None:
    source = gradient(64, 48, 255, np.uint8)
    gray = ingest(jpeg_bytes(source))
    assert gray.format is ImageFormat.JPEG and gray.bits_stored == 8
    assert np.abs(gray.pixels.astype(int) - source).max() <= 4  # JPEG loss on a smooth gradient

    rgb = np.stack([source, source // 2, 255 - source], axis=-1)
    colour = ingest(jpeg_bytes(rgb))
    luma = np.rint(rgb.astype(float) @ [0.299, 0.587, 0.114])
    assert colour.photometric == "RGB" and colour.pixels.shape == (64, 48)
    assert np.abs(colour.pixels.astype(float) - luma).mean() < 3


def test_jpeg_exif_orientation_is_applied() -> None:
    source = gradient(20, 60, 255, np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    Image.fromarray(source).save(buf, format="JPEG", exif=exif, quality=95)
    image = ingest(buf.getvalue())
    assert (image.width, image.height) == (20, 60)


def test_thumbnail_is_at_most_256_and_keeps_aspect() -> None:
    image = ingest(png_bytes(gradient(300, 600, 255, np.uint8)))
    with Image.open(io.BytesIO(image.thumbnail_png)) as thumb:
        assert thumb.size == (256, 128) and thumb.mode == "L"
    small = ingest(png_bytes(gradient(30, 20, 255, np.uint8)))
    with Image.open(io.BytesIO(small.thumbnail_png)) as thumb:
        assert thumb.size == (20, 30)
        # A small image's thumbnail is its display image (the same pixels, encoded once).
        with Image.open(io.BytesIO(small.display_png)) as display:
            assert np.array_equal(np.asarray(thumb), np.asarray(display))


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_truncated_files_are_invalid(kind: str, fraction: float) -> None:
    rng = np.random.default_rng(3)
    source = rng.integers(0, 256, size=(80, 80)).astype(np.uint8)
    data = png_bytes(source) if kind == "png" else jpeg_bytes(source)
    with pytest.raises(InvalidImage) as info:
        ingest(data[: int(len(data) * fraction)])
    assert domain_status(info.value) == 422
    message = str(info.value)
    assert kind.upper() in message and ("truncated" in message or "corrupt" in message)


def test_corrupt_png_data_is_invalid() -> None:
    data = bytearray(png_bytes(np.random.default_rng(4).integers(0, 256, (50, 50)).astype(np.uint8)))
    idat = data.index(b"IDAT")
    data[idat + 10 : idat + 40] = bytes(30)
    with pytest.raises(InvalidImage, match="PNG"):
        ingest(bytes(data))


def test_png_header_alone_is_invalid() -> None:
    with pytest.raises(InvalidImage):
        ingest(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("side", [5_000, 100_000])
def test_decompression_bomb_is_refused_before_decoding(side: int) -> None:
    """Headers claiming 25 Mpx (over our limit) and 10 Gpx (over Pillow's own limit too)."""
    with pytest.raises(ImageTooLarge) as info:
        ingest(png_header_only(side, side), max_pixels=20_000_000)
    assert domain_status(info.value) == 413
    assert "pixels" in str(info.value)
    # ImageTooLarge is also an InvalidImage for callers that only know that one.
    assert isinstance(info.value, InvalidImage)


def test_pixel_limit_applies_to_real_images() -> None:
    data = png_bytes(gradient(100, 100, 255, np.uint8))
    with pytest.raises(ImageTooLarge, match="10000 pixels"):
        ingest(data, max_pixels=9_999)
    assert ingest(data, max_pixels=10_000).width == 100


def test_png_text_chunks_are_not_carried_into_outputs() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "Patient SMITH^JANE MRN 99887766")
    buf = io.BytesIO()
    Image.fromarray(gradient(32, 32, 255, np.uint8)).save(buf, format="PNG", pnginfo=info)
    image = ingest(buf.getvalue())
    metadata = json.dumps(image.metadata).encode()
    outputs = (image.display_png, image.thumbnail_png, image.pixels_png16, metadata)
    for blob in outputs:
        assert b"SMITH" not in blob and b"99887766" not in blob
