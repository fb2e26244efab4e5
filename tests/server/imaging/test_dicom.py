"""DICOM ingest: modality values, photometric handling, windows, frames, transfer syntaxes, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from server.errors import domain_status
from server.imaging import (
    ImageFormat,
    ImageTooLarge,
    IngestedImage,
    InvalidImage,
    ingest_image,
    render_window,
)
from tests.server.imaging.helpers import SALT, bundled_bytes, bundled_dataset, dicom_bytes, png_array


def ingest(data: bytes, max_pixels: int = 10_000_000) -> IngestedImage:
    return ingest_image(data, max_pixels=max_pixels, uid_salt=SALT)


def modality(image: IngestedImage) -> np.ndarray:
    return image.pixels * image.value_scale + image.value_offset


def test_ct_rescale_gives_hounsfield_units_exactly() -> None:
    ds = bundled_dataset("CT_small.dcm")
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    image = ingest(bundled_bytes("CT_small.dcm"))
    assert image.format is ImageFormat.DICOM and image.modality == "CT"
    assert image.lossless and image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(modality(image), expected)
    assert image.window_source == "percentiles"
    assert expected.min() <= image.window_center <= expected.max()
    assert image.bits_stored == 16 and image.photometric == "MONOCHROME2"


def test_non_trivial_slope_and_intercept() -> None:
    ds = bundled_dataset("MR_small.dcm")
    ds.RescaleSlope, ds.RescaleIntercept = "2.5", "-100"
    image = ingest(dicom_bytes(ds))
    np.testing.assert_allclose(modality(image), ds.pixel_array * 2.5 - 100, rtol=0, atol=1e-9)
    assert image.metadata["rescale_slope"] == 2.5 and image.metadata["rescale_intercept"] == -100


def test_window_from_tags_is_used_for_display() -> None:
    ds = bundled_dataset("MR_small.dcm")
    image = ingest(bundled_bytes("MR_small.dcm"))
    assert (image.window_center, image.window_width, image.window_source) == (600.0, 1600.0, "tags")
    expected = render_window(ds.pixel_array.astype(np.int32), 0.0, 1.0, 600.0, 1600.0)
    np.testing.assert_array_equal(png_array(image.display_png), expected)


def test_multi_valued_window_takes_the_first() -> None:
    ds = bundled_dataset("CT_small.dcm")
    ds.WindowCenter, ds.WindowWidth = ["40", "400"], ["80", "2000"]
    image = ingest(dicom_bytes(ds))
    assert (image.window_center, image.window_width) == (40.0, 80.0)


def test_unusable_window_tags_fall_back_to_percentiles() -> None:
    ds = bundled_dataset("MR_small.dcm")
    ds.WindowWidth = "0"
    assert ingest(dicom_bytes(ds)).window_source == "percentiles"


def test_monochrome1_is_inverted_for_display_only() -> None:
    ds = bundled_dataset("MR_small.dcm")
    normal = ingest(dicom_bytes(ds))
    ds.PhotometricInterpretation = "MONOCHROME1"
    inverted = ingest(dicom_bytes(ds))
    assert inverted.invert and not normal.invert and inverted.photometric == "MONOCHROME1"
    np.testing.assert_array_equal(inverted.pixels, normal.pixels)
    np.testing.assert_array_equal(png_array(inverted.display_png), 255 - png_array(normal.display_png))


def test_multi_frame_uses_the_first_frame() -> None:
    ds = bundled_dataset("MR_small.dcm")
    first = ds.pixel_array.copy()
    second = (first[::-1] // 2).astype(first.dtype)
    ds.NumberOfFrames = 2
    ds.PixelData = first.tobytes() + second.tobytes()
    image = ingest(dicom_bytes(ds))
    np.testing.assert_array_equal(modality(image), first)
    assert image.metadata["number_of_frames"] == 2 and image.metadata["frame_used"] == 0


def test_multi_frame_colour_rle() -> None:
    ds = bundled_dataset("SC_rgb_rle_2frame.dcm")
    image = ingest(bundled_bytes("SC_rgb_rle_2frame.dcm"))
    luma = np.rint(ds.pixel_array[0].astype(float) @ [0.299, 0.587, 0.114])
    np.testing.assert_array_equal(image.pixels, luma)


@pytest.mark.parametrize(
    "name", ["SC_rgb_small_odd.dcm", "examples_rgb_color.dcm", "SC_ybr_full_422_uncompressed.dcm"]
)
def test_colour_dicom_becomes_luma(name: str) -> None:
    ds = bundled_dataset(name)
    image = ingest(bundled_bytes(name))
    rgb = ds.pixel_array  # pydicom converts YBR to RGB
    luma = np.rint(rgb.astype(float) @ [0.299, 0.587, 0.114])
    np.testing.assert_array_equal(image.pixels, luma)
    assert image.pixels.shape == (ds.Rows, ds.Columns)
    assert (image.window_center, image.window_width) == (128.0, 256.0)


def test_palette_colour_becomes_gray() -> None:
    image = ingest(bundled_bytes("examples_palette.dcm"))
    assert image.photometric == "PALETTE COLOR" and image.pixels.shape == (image.height, image.width)
    assert image.pixels.std() > 0


# Encoded files with the uncompressed file they must decode to (None: decode only).
ENCODED = [
    ("MR_small_RLE.dcm", "MR_small.dcm"),
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
    ("MR_small_bigendian.dcm", "MR_small.dcm"),
    ("MR_small_implicit.dcm", "MR_small.dcm"),
    ("JPEG2000.dcm", None),
    ("693_J2KI.dcm", None),
    ("JPGExtended.dcm", None),
    ("SC_rgb_jpeg_dcmtk.dcm", None),  # JPEG baseline
    ("SC_rgb_jpeg_gdcm.dcm", None),  # JPEG lossless, process 14
    ("JPEGLSNearLossless_16.dcm", None),
    ("image_dfl.dcm", None),  # deflated
]


@pytest.mark.parametrize(("name", "reference"), ENCODED)
def test_transfer_syntaxes(name: str, reference: str | None) -> None:
    ds = bundled_dataset(name)
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if syntax.is_compressed and not get_decoder(syntax).is_available:
        pytest.skip(f"no decoder installed for {syntax.name}")
    image = ingest(bundled_bytes(name))
    assert (image.height, image.width) == (ds.Rows, ds.Columns)
    assert image.metadata["transfer_syntax"] == syntax.name
    if reference is not None:
        np.testing.assert_array_equal(modality(image), bundled_dataset(reference).pixel_array)
    # The de-identified copy keeps the encoding and decodes to the same pixels.
    assert image.deidentified_dicom is not None
    again = ingest(image.deidentified_dicom)
    np.testing.assert_array_equal(again.pixels, image.pixels)


def test_undecodable_pixel_data_is_invalid() -> None:
    """JPEG-lossy.dcm has a corrupt JPEG stream that every decoder rejects."""
    with pytest.raises(InvalidImage, match="cannot be decoded"):
        ingest(bundled_bytes("JPEG-lossy.dcm"))


def test_truncated_pixel_data_is_invalid() -> None:
    with pytest.raises(InvalidImage, match="less than expected"):
        ingest(bundled_bytes("MR_truncated.dcm"))


@pytest.mark.parametrize("keep", [140, 400, 3000])
def test_truncated_file_is_invalid(keep: int) -> None:
    data = bundled_bytes("CT_small.dcm")
    with pytest.raises(InvalidImage) as info:
        ingest(data[:keep])
    assert domain_status(info.value) == 422


def test_dicom_without_pixels_is_invalid() -> None:
    with pytest.raises(InvalidImage, match="no pixel data"):
        ingest(bundled_bytes("rtplan.dcm"))


def test_pixel_limit_is_checked_from_the_header() -> None:
    with pytest.raises(ImageTooLarge, match="16384 pixels"):
        ingest(bundled_bytes("CT_small.dcm"), max_pixels=16_383)
    ds = bundled_dataset("CT_small.dcm")
    ds.Rows, ds.Columns = 60_000, 60_000  # header claims 3.6 Gpx, data is tiny
    with pytest.raises(ImageTooLarge):
        ingest(dicom_bytes(ds))


def test_metadata_is_json_and_descriptive() -> None:
    ds = bundled_dataset("CT_small.dcm")
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    image = ingest(dicom_bytes(ds))
    meta = json.loads(json.dumps(image.metadata))
    assert meta["modality"] == "CT" and meta["body_part_examined"] == "CHEST"
    assert meta["view_position"] == "PA"
    assert meta["rows"] == 128 and meta["columns"] == 128
    assert meta["pixel_spacing_mm"] == [float(v) for v in ds.PixelSpacing]
    assert meta["sop_class"] == "CT Image Storage" and meta["deidentified"] is True


def test_free_text_in_coded_attributes_is_not_copied() -> None:
    ds = bundled_dataset("CT_small.dcm")
    ds.BodyPartExamined = "smith's left knee"  # not a valid code string
    assert "body_part_examined" not in ingest(dicom_bytes(ds)).metadata


def test_decoded_image_dtype_is_independent_of_source_dtype() -> None:
    for name in ("CT_small.dcm", "JPEGLSNearLossless_08.dcm", "rtdose_1frame.dcm"):
        ds = bundled_dataset(name)
        syntax = UID(ds.file_meta.TransferSyntaxUID)
        if syntax.is_compressed and not get_decoder(syntax).is_available:
            continue
        image = ingest(bundled_bytes(name))
        assert image.pixels.dtype == np.uint16 and image.pixels.shape == (ds.Rows, ds.Columns)
        assert np.isfinite(image.value_scale) and image.window_width > 0


def test_wide_dose_grid_is_quantised_with_bounded_error() -> None:
    ds = bundled_dataset("rtdose_1frame.dcm")
    image = ingest(bundled_bytes("rtdose_1frame.dcm"))
    true = ds.pixel_array.astype(float) * float(ds.get("RescaleSlope", 1) or 1)
    error = np.abs(modality(image) - true)
    assert error.max() <= image.value_scale / 2 + 1e-6
    assert image.lossless == (error.max() == 0)


def test_code_strings_that_are_not_defined_terms_are_not_copied() -> None:
    ds = bundled_dataset("CT_small.dcm")
    ds.BodyPartExamined = "SMITHKNEE"  # a valid code string, but a site's free text
    ds.ViewPosition = "DRJONES"
    meta = ingest(dicom_bytes(ds)).metadata
    assert "body_part_examined" not in meta and "view_position" not in meta
    ds.BodyPartExamined, ds.ViewPosition = "BREAST", "MLO"
    meta = ingest(dicom_bytes(ds)).metadata
    assert (meta["body_part_examined"], meta["view_position"]) == ("BREAST", "MLO")
