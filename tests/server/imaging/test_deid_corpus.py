"""De-identification over pydicom's bundled test files: accepted, pixels untouched, still valid.

Validity is judged by dicom3tools' ``dciodvfy`` (Debian ``dicom3tools``, installed by
``make test-tools``): the de-identified file must not have an error its original did not have.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from functools import cache
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_files

from server.imaging import ingest_image
from server.imaging.deid import deidentify, prune_unread, to_bytes
from server.imaging.dicom_image import read_dataset
from tests.server.imaging.helpers import SALT, bundled_bytes

DCIODVFY = shutil.which("dciodvfy")


@cache
def image_files() -> tuple[str, ...]:
    """Bundled files with pixel data that pydicom itself decodes (broken or undecodable ones left out)."""
    names = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(get_testdata_files("*")):
            try:
                ds = pydicom.dcmread(path)
                if "PixelData" not in ds:
                    continue
                ds.pixel_array  # noqa: B018  (decodable by pydicom?)
            except Exception:
                continue
            names.append(os.path.basename(path))
    return tuple(names)


def deidentified(name: str) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = ingest_image(bundled_bytes(name), max_pixels=100_000_000, uid_salt=SALT)
    assert image.deidentified_dicom is not None
    return image.deidentified_dicom


def dciodvfy_errors(data: bytes) -> set[str]:
    """dciodvfy's error lines for a file, with quoted values blanked (UIDs and dummies differ)."""
    assert DCIODVFY is not None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "object.dcm"
        path.write_bytes(data)
        run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    lines = (run.stdout + run.stderr).splitlines()
    return {re.sub(r"<[^<>]*>", "<>", line) for line in lines if line.startswith("Error")}


def test_the_corpus_has_many_decodable_images() -> None:
    assert len(image_files()) >= 50


@pytest.mark.parametrize("name", image_files())
def test_bundled_image_is_accepted_with_identical_pixels(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = pydicom.dcmread(io.BytesIO(bundled_bytes(name)))
        out = pydicom.dcmread(io.BytesIO(deidentified(name)))
        assert out.pixel_array.tobytes() == source.pixel_array.tobytes()
    assert out.PatientIdentityRemoved == "YES"


@pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy (Debian dicom3tools) is not installed; make test-tools"
)
@pytest.mark.parametrize("name", image_files())
def test_deidentified_file_has_no_new_dciodvfy_error(name: str) -> None:
    new = dciodvfy_errors(deidentified(name)) - dciodvfy_errors(bundled_bytes(name))
    assert new == set()


def test_segmentation_keeps_what_its_iod_requires_with_values() -> None:
    source = pydicom.dcmread(io.BytesIO(bundled_bytes("liver_1frame.dcm")))
    out = pydicom.dcmread(io.BytesIO(deidentified("liver_1frame.dcm")))
    for keyword in ("ContentDate", "ContentTime", "DeviceSerialNumber", "ContentLabel"):
        assert out.get(keyword), keyword  # Type 1 in the Segmentation IOD: a (dummy) value
        assert out[keyword].value != source[keyword].value, keyword


def test_dates_the_iod_requires_stay_present_without_their_values() -> None:
    source = pydicom.dcmread(io.BytesIO(bundled_bytes("JPEG2000.dcm")))  # nuclear medicine
    out = pydicom.dcmread(io.BytesIO(deidentified("JPEG2000.dcm")))
    for keyword in ("SeriesDate", "AcquisitionDate", "StudyDate"):
        assert keyword in out, keyword
        assert out[keyword].value != source[keyword].value, keyword


@pytest.mark.parametrize("name", image_files())
def test_pruning_before_decoding_changes_nothing(name: str) -> None:
    """The ingest deletes private, curve and overlay elements before their values are decoded;
    the de-identified file is byte for byte what de-identifying the whole data set gives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = deidentify(read_dataset(bundled_bytes(name)), SALT, fallback_instance=b"x")
        pruned = read_dataset(bundled_bytes(name), prune=prune_unread)
        assert not any(elem.tag.is_private for elem in pruned.iterall())
        assert to_bytes(deidentify(pruned, SALT, fallback_instance=b"x")) == to_bytes(whole)
