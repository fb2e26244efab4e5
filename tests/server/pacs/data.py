"""Test DICOM data for the PACS tests: pydicom's bundled files and series made from them."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from server.db import Database
from server.models import Dataset
from server.settings import Settings
from tests.support.orthanc import OrthancServer


def dicom_file(name: str) -> bytes:
    path = get_testdata_file(name)
    assert path is not None, name
    with open(path, "rb") as fh:
        return fh.read()


@dataclass(frozen=True)
class Uploaded:
    study_uid: str
    series_uid: str
    sop_uid: str
    patient_name: str


def upload(orthanc: OrthancServer, data: bytes) -> Uploaded:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    orthanc.upload(data)
    return Uploaded(
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        str(ds.get("PatientName", "")),
    )


def ct_series(n: int, *, study_date: str = "20040119", description: str = "CT chest") -> list[bytes]:
    """``n`` CT instances of one new study/series built from pydicom's CT_small.dcm."""
    study, series = generate_uid(), generate_uid()
    out = []
    for i in range(n):
        ds = pydicom.dcmread(io.BytesIO(dicom_file("CT_small.dcm")))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        ds.StudyDate = study_date
        ds.StudyDescription = description
        ds.PatientName = "Doe^Jane"
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def pacs_settings(settings: Settings, orthanc: OrthancServer, **overrides: object) -> Settings:
    values = {
        "pacs_url": orthanc.dicomweb_url,
        "pacs_username": orthanc.username,
        "pacs_password": orthanc.password,
        **overrides,
    }
    # Through the constructor, so the secrets become SecretStr and the validators run.
    plain = settings.model_dump()
    for secret in ("pacs_password", "pacs_token"):
        if plain.get(secret) is not None:
            plain[secret] = plain[secret].get_secret_value()
    return Settings(**{**plain, **values})


def make_dataset(db: Database, name: str = "pacs") -> int:
    with db.session() as session:
        dataset = Dataset(name=name, label_set=["normal", "abnormal"])
        session.add(dataset)
        session.flush()
        return dataset.id
