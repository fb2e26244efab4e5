"""AI second read: only after the diagnosis, only with the setting on; answers kept beside the
original; dashboard agreement (kappa) and reader-alone vs reader+AI accuracy with CIs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select

from server.db import Database
from server.models import Assignment, Case, Dataset, DiagnosisLabel, ReadingSession, SecondRead, SessionStatus
from server.settings import Settings
from server.storage import BlobStore
from tests.conftest import Users
from tests.server.jobs.models_support import CLASSES, make_diagnosis_version
from tests.server.worker.data import TinyDataset, make_dataset

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def data(db: Database, settings: Settings, users: Users) -> TinyDataset:
    made = make_dataset(db, BlobStore(settings.blob_dir), users.reader2, n_cases=4)
    with db.session() as session:
        for case_id in made.case_ids:
            session.add(Assignment(case_id=case_id, reader_id=users.reader.id))
    make_diagnosis_version(db, BlobStore(settings.blob_dir), made.dataset_id, active=True)
    return made


def _session(db: Database, reader_id: int, case_id: int, label: str | None) -> int:
    """A reading session of ``reader_id``; finished with ``label`` unless that is None."""
    with db.session() as session:
        reading = ReadingSession(
            case_id=case_id,
            reader_id=reader_id,
            source="mouse",
            status=SessionStatus.open if label is None else SessionStatus.finished,
        )
        session.add(reading)
        session.flush()
        if label is not None:
            session.add(
                DiagnosisLabel(session_id=reading.id, case_id=case_id, reader_id=reader_id, label=label)
            )
        return reading.id


def _enable(db: Database, dataset_id: int, on: bool = True) -> None:
    with db.session() as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        dataset.settings = {**(dataset.settings or {}), "second_read": on}


def test_off_by_default_then_only_after_the_diagnosis(
    app_client: TestClient, auth: Auth, data: TinyDataset, db: Database, users: Users
) -> None:
    finished = _session(db, users.reader.id, data.case_ids[0], "a")
    url = f"/api/sessions/{finished}/second-read"
    off = app_client.post(url, headers=auth("alice"))
    assert off.status_code == 409 and "off for this dataset" in off.json()["detail"]
    settings = app_client.get(f"/api/datasets/{data.dataset_id}", headers=auth("admin")).json()["settings"]
    assert settings["second_read"] is False
    _enable(db, data.dataset_id)
    still_open = _session(db, users.reader.id, data.case_ids[1], None)
    early = app_client.post(f"/api/sessions/{still_open}/second-read", headers=auth("alice"))
    assert early.status_code == 409 and "submit your diagnosis first" in early.json()["detail"]
    # Someone else's session is not found.
    assert app_client.post(url, headers=auth("bob")).status_code == 404
    shown = app_client.post(url, headers=auth("alice"))
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["reader_label"] == "a" and set(body["probabilities"]) == set(CLASSES)
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["choice"] is None and "temperature-scaled" in body["calibration"]
    assert app_client.post(url, headers=auth("alice")).json() == body  # asking again: the same answer


def test_agree_disagree_amend_keep_both_values(
    app_client: TestClient, auth: Auth, data: TinyDataset, db: Database, users: Users
) -> None:
    _enable(db, data.dataset_id)
    sid = _session(db, users.reader.id, data.case_ids[0], "a")
    url = f"/api/sessions/{sid}/second-read"
    assert (
        app_client.put(url, json={"choice": "agree"}, headers=auth("alice")).status_code == 404
    )  # not shown yet
    app_client.post(url, headers=auth("alice"))
    bad = app_client.put(url, json={"choice": "amend", "amended_label": "zebra"}, headers=auth("alice"))
    assert bad.status_code == 422 and "labels" in bad.json()["detail"]
    assert app_client.put(url, json={"choice": "maybe"}, headers=auth("alice")).status_code == 422
    amended = app_client.put(url, json={"choice": "amend", "amended_label": "b"}, headers=auth("alice"))
    assert amended.status_code == 200 and amended.json()["amended_label"] == "b"
    with db.session() as session:
        row = session.scalar(select(SecondRead).where(SecondRead.session_id == sid))
        label = session.scalar(select(DiagnosisLabel.label).where(DiagnosisLabel.session_id == sid))
        assert row is not None and (row.reader_label, row.amended_label, row.choice) == ("a", "b", "amend")
        assert label == "a" and row.decided_at is not None  # the original diagnosis is unchanged
    assert app_client.get(url, headers=auth("admin")).json()["amended_label"] == "b"


def test_dashboard_agreement_and_accuracy_with_cis(
    app_client: TestClient, auth: Auth, data: TinyDataset, db: Database, users: Users
) -> None:
    _enable(db, data.dataset_id)
    with db.session() as session:
        for i, case_id in enumerate(data.case_ids):
            case = session.get(Case, case_id)
            assert case is not None
            case.reference_label = "ab"[i % 2]
    readers, models = [], []
    for i, case_id in enumerate(data.case_ids):
        sid = _session(db, users.reader.id, case_id, "a")  # the reader always says "a"
        shown = app_client.post(f"/api/sessions/{sid}/second-read", headers=auth("alice")).json()
        readers.append("a")
        models.append(shown["label"])
        decision = {"choice": "amend", "amended_label": "ab"[i % 2]} if i == 1 else {"choice": "agree"}
        assert (
            app_client.put(
                f"/api/sessions/{sid}/second-read", json=decision, headers=auth("alice")
            ).status_code
            == 200
        )
    stats = app_client.get(f"/api/stats/second-read?dataset_id={data.dataset_id}", headers=auth("admin"))
    assert stats.status_code == 200
    body = stats.json()
    assert body["n_shown"] == 4 and body["choices"] == {"agree": 3, "disagree": 0, "amend": 1}
    want = cohen_kappa_score(readers, models) if len(set(readers) | set(models)) > 1 else None
    assert body["kappa"]["n"] == 4
    assert body["kappa"]["value"] == (pytest.approx(want) if want is not None else None)
    acc = body["accuracy"]
    assert acc["n"] == 4 and acc["reader_alone"]["value"] == 0.5 and acc["reader_with_ai"]["value"] == 0.75
    assert acc["reader_alone"]["ci_low"] <= 0.5 <= acc["reader_alone"]["ci_high"]
    assert acc["difference"]["value"] == pytest.approx(0.25) and acc["verdict"] in ("better", "cannot tell")
    assert (
        app_client.get(
            f"/api/stats/second-read?dataset_id={data.dataset_id}", headers=auth("alice")
        ).status_code
        == 403
    )
