"""The test PACS itself: loopback only, basic auth enforced, DICOMweb answering with stored data."""

from __future__ import annotations

import httpx
from pydicom.data import get_testdata_file

from tests.support.orthanc import OrthancServer


def test_orthanc_requires_auth_and_serves_qido(orthanc: OrthancServer) -> None:
    data = open(get_testdata_file("CT_small.dcm"), "rb").read()  # noqa: SIM115
    orthanc.upload(data)
    assert orthanc.instance_count() == 1
    anonymous = httpx.get(f"{orthanc.dicomweb_url}/studies", timeout=10)
    assert anonymous.status_code == 401
    wrong = httpx.get(f"{orthanc.dicomweb_url}/studies", auth=(orthanc.username, "wrong"), timeout=10)
    assert wrong.status_code == 401
    studies = httpx.get(
        f"{orthanc.dicomweb_url}/studies", auth=(orthanc.username, orthanc.password), timeout=10
    )
    assert studies.status_code == 200
    assert len(studies.json()) == 1


def test_orthanc_is_emptied_between_tests(orthanc: OrthancServer) -> None:
    assert orthanc.instance_count() == 0
