"""Builders of test images and access to pydicom's bundled test files (never downloaded)."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

SALT = b"test-key-0123456789abcdef"


def bundled_bytes(name: str) -> bytes:
    """Bytes of one of pydicom's bundled test files; skip when this pydicom does not bundle it."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not bundled with this pydicom")
    with open(str(path), "rb") as fh:
        return fh.read()


def bundled_dataset(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(bundled_bytes(name)))


def dicom_bytes(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def png_bytes(array: npt.NDArray[np.generic], mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(array: npt.NDArray[np.generic], quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def gradient(h: int, w: int, top: int, dtype: type) -> npt.NDArray[np.generic]:
    return np.linspace(0, top, h * w).reshape(h, w).round().astype(dtype)


def png_array(data: bytes) -> npt.NDArray[np.generic]:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image).copy()
