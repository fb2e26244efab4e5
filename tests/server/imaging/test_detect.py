"""Type detection works on content only: names and extensions play no part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from server.errors import domain_status
from server.imaging import ImageFormat, UnsupportedImageType, detect_format, ingest_image
from tests.server.imaging.helpers import (
    SALT,
    bundled_bytes,
    bundled_dataset,
    gradient,
    jpeg_bytes,
    png_bytes,
)


def raw_dicom_without_preamble(name: str) -> bytes:
    """A data set written with no preamble, no 'DICM' and no file meta (explicit VR little endian)."""
    ds = bundled_dataset(name)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue()


def test_png_and_jpeg_signatures() -> None:
    image = gradient(16, 16, 255, np.uint8)
    assert detect_format(png_bytes(image)) is ImageFormat.PNG
    assert detect_format(jpeg_bytes(image)) is ImageFormat.JPEG


def test_dicom_with_preamble() -> None:
    assert detect_format(bundled_bytes("CT_small.dcm")) is ImageFormat.DICOM


def test_dicom_without_preamble_or_file_meta_is_detected_and_ingested() -> None:
    data = raw_dicom_without_preamble("MR_small.dcm")
    assert data[128:132] != b"DICM" and not data.startswith(b"DICM")
    assert detect_format(data) is ImageFormat.DICOM
    image = ingest_image(data, max_pixels=10_000, uid_salt=SALT)
    assert (image.width, image.height) == (64, 64)
    expected = bundled_dataset("MR_small.dcm").pixel_array
    np.testing.assert_array_equal(image.pixels * image.value_scale + image.value_offset, expected)


def test_dicom_prefix_without_preamble() -> None:
    data = bundled_bytes("MR_small.dcm")[128:]
    assert detect_format(data) is ImageFormat.DICOM
    assert ingest_image(data, max_pixels=10_000, uid_salt=SALT).width == 64


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a" + bytes(64),
        b"BM" + bytes(64),  # BMP
        b"II*\x00" + bytes(64),  # TIFF
        b"%PDF-1.7\n" + bytes(64),
        b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(64),  # JPEG 2000 file outside DICOM
        b"hello, this is text and not an image at all" * 10,
        # Starts like a group-0008 element but does not parse as a data set.
        b"\x08\x00" + b"\xff" * 200,
    ],
    ids=["empty", "gif", "bmp", "tiff", "pdf", "jp2", "text", "fake-dicom-group"],
)
def test_other_content_is_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedImageType) as info:
        detect_format(data)
    assert domain_status(info.value) == 415
    with pytest.raises(UnsupportedImageType):
        ingest_image(data, max_pixels=10_000, uid_salt=SALT)


def test_random_bytes_are_unsupported() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        data = rng.integers(0, 256, size=int(rng.integers(1, 2048)), dtype=np.uint8).tobytes()
        if data[:1] in (b"\x89", b"\xff"):  # could start a PNG/JPEG signature by chance
            continue
        with pytest.raises(UnsupportedImageType):
            detect_format(data)


def test_mislabelled_files_follow_their_content(tmp_path: Path) -> None:
    """A DICOM saved as .png and a PNG saved as .dcm are read as what they are."""
    dicom_as_png = tmp_path / "scan.png"
    dicom_as_png.write_bytes(bundled_bytes("CT_small.dcm"))
    png_as_dicom = tmp_path / "scan.dcm"
    png_as_dicom.write_bytes(png_bytes(gradient(20, 30, 255, np.uint8)))

    first = ingest_image(dicom_as_png.read_bytes(), max_pixels=100_000, uid_salt=SALT)
    second = ingest_image(png_as_dicom.read_bytes(), max_pixels=100_000, uid_salt=SALT)
    assert first.format is ImageFormat.DICOM and first.deidentified_dicom is not None
    assert second.format is ImageFormat.PNG and second.deidentified_dicom is None
    assert (second.width, second.height) == (30, 20)
