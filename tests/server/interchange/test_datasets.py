"""Whole public data sets: cases created from their DICOMs, labels and annotations read over HTTP,
pseudonymous readers that cannot log in, 8-bit images windowed on their own scale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from server.interchange.images import CaseSource
from server.interchange.service import ImportFormat, ImportOptions, import_gaze
from server.models import Case, ReadingSession, StoredImage
from server.reading.samples import COLUMN
from server.reading.service import session_samples
from server.settings import Settings
from server.storage import BlobStore
from tests.server.interchange.conftest import World
from tests.server.interchange.files import (
    BBOX_COLUMNS,
    EGD_COLUMNS,
    REFLACX_COLUMNS,
    REFLACX_LABELS,
    REFLACX_META_COLUMNS,
    egd_row,
    master_sheet,
    reflacx_meta_row,
    reflacx_row,
    transcript,
    write_csv,
)


def test_cases_from_the_data_sets_dicoms_with_boxes_and_transcripts_over_http(
    world: World,
    settings: Settings,
    tmp_path: Path,
    app_client: TestClient,
    auth: Callable[[str], dict[str, str]],
) -> None:
    root = tmp_path / "egd-cxr"
    # The 128 x 128 test DICOM stands in for a MIMIC-CXR image, drawn 1080 x 1080 between 420 px margins.
    master_sheet(root / "master_sheet.csv", {"dcm-new": {"margins": (0, 0, 420, 420), "condition": "Normal"}})
    write_csv(
        root / "fixations.csv", EGD_COLUMNS, [egd_row("1", "dcm-new", 0.9, 0.5, 0.5, start=0.4, duration=0.5)]
    )
    write_csv(root / "bounding_boxes.csv", BBOX_COLUMNS, [["dcm-new", "right lung", 8.0, 56.0, 16.0, 112.0]])
    transcript(root, "dcm-new", [("No acute findings.", 0.3, 1.2)])
    images = tmp_path / "files" / "p10" / "p10000001" / "s50000001"
    images.mkdir(parents=True)
    pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm")).save_as(images / "dcm-new.dcm")
    source = CaseSource(BlobStore(settings.blob_dir), settings.max_image_pixels, settings.uid_salt)
    options = ImportOptions(images=tmp_path / "files", create_cases=True, label_map={"Normal": "normal"})
    with world.db.session() as session:
        report = import_gaze(
            session,
            ImportFormat.egd_cxr,
            root,
            dataset=world.dataset,
            reader=None,
            options=options,
            case_source=source,
        )
    assert len(report.created) == 1 and report.annotations == 1 and report.missing_cases == {}
    with world.db.session() as session:
        case = session.scalars(select(Case).where(Case.external_id == "dcm-new")).one()
        reading = session.scalars(select(ReadingSession).where(ReadingSession.case_id == case.id)).one()
        assert case.image is not None and case.image.has_dicom and case.reference_label == "normal"
        s = session_samples(session, reading.id)
    # Screen centre -> image centre of the 128 x 128 DICOM.
    assert (s[0, COLUMN["image_x"]], s[0, COLUMN["image_y"]]) == pytest.approx((64, 64))

    response = app_client.get(f"/api/cases/{case.id}/annotations", headers=auth("admin"))
    assert response.status_code == 200
    (box,) = response.json()
    assert (box["shape"], box["label"], box["x0"], box["y1"], box["source"]) == (
        "box",
        "right lung",
        8,
        112,
        "egd-cxr",
    )
    # Reference annotations would steer a reader's gaze: admins only.
    assert app_client.get(f"/api/cases/{case.id}/annotations", headers=auth("alice")).status_code == 403
    events = app_client.get(f"/api/sessions/{reading.id}/events", headers=auth("admin")).json()
    assert [(e["kind"], e["t_ms"], e["text"]) for e in events] == [
        ("transcript", 300.0, "No acute findings.")
    ]
    # The radiologist's pseudonymous account exists but cannot log in.
    login = app_client.post(
        "/api/auth/token", data={"username": "egd-cxr-radiologist-1", "password": "!imported"}
    )
    assert login.status_code == 401


def test_missing_images_folder_for_creating_cases_is_refused(world: World, tmp_path: Path) -> None:
    with world.db.session() as session, pytest.raises(ValueError, match="--images"):
        import_gaze(
            session, ImportFormat.egd_cxr, tmp_path, dataset=world.dataset, reader=None,
            options=ImportOptions(create_cases=True),
        )  # fmt: skip


def test_eight_bit_images_get_an_eight_bit_window(world: World, tmp_path: Path) -> None:
    with world.db.session() as session:
        session.execute(update(StoredImage).values(bits_stored=8))
    main = tmp_path / "main_data"
    write_csv(main / "metadata_phase_3.csv", [*REFLACX_META_COLUMNS, *REFLACX_LABELS],
              [reflacx_meta_row("P300R9", "dcm-c", (64, 64))])  # fmt: skip
    row = reflacx_row(0.0, 0.1, 10, 10, (0, 0, 64, 64), (0, 0, 2160, 2160), level=0.25, width=0.5)
    write_csv(main / "P300R9" / "fixations.csv", REFLACX_COLUMNS, [row])
    with world.db.session() as session:
        import_gaze(session, ImportFormat.reflacx, tmp_path, dataset=world.dataset, reader=None)
        reading = session.scalars(select(ReadingSession)).one()
        s = session_samples(session, reading.id)
    assert (s[0, COLUMN["wl_center"]], s[0, COLUMN["wl_width"]]) == pytest.approx((64, 128))
