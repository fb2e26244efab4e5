"""GET /api/stats/gaze and /api/stats/pairs on arranged sessions and pairs (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from server.db import Database
from server.models import Case, SessionStatus
from tests.conftest import Users
from tests.server.dashboard.arrange import add_pair, add_session, make_dataset

Auth = Callable[[str], dict[str, str]]


def test_gaze_stats_per_reader_case_source_and_calibration(
    app_client: TestClient, auth: Auth, db: Database, users: Users
) -> None:
    ds, (c1, c2, _c3) = make_dataset(db, "gaze", 3)
    other, (c4,) = make_dataset(db, "other", 1)
    alice, bob = users.reader.id, users.reader2.id
    add_session(db, c1, alice, info={"validation_error_px": 40}, samples=100)
    add_session(db, c1, alice, status=SessionStatus.aborted, samples=5)
    # The webcam source records its calibration's validation result in a nested object.
    webcam_info = {"calibration": {"validation": {"mean_px": 120.0, "mean_deg": 2.4}}, "drift_check": None}
    add_session(db, c2, alice, source="webcam", info=webcam_info, samples=50)
    add_session(db, c1, bob, source="webcam", info={"validation_error_px": 200}, samples=70)
    # Not a number, and a boolean: neither counts as a recorded error.
    add_session(db, c2, bob, source="tracker", status=SessionStatus.open, info={"validation_error_px": "bad"})
    add_session(db, c2, bob, source="tracker", status=SessionStatus.open, info={"validation_error_px": True})
    add_session(db, c4, bob, source="webcam", info={"validation_error_px": 10}, samples=7)

    response = app_client.get("/api/stats/gaze", params={"dataset_id": ds}, headers=auth("admin"))
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["totals"] == {
        "sessions": 6,
        "open": 2,
        "finished": 3,
        "aborted": 1,
        "readers": 2,
        "cases": 3,
        "cases_read": 2,
        "samples": 225,
    }
    readers = {r["username"]: r for r in stats["by_reader"]}
    assert (readers["alice"]["sessions"], readers["alice"]["finished"], readers["alice"]["cases"]) == (
        3,
        2,
        2,
    )
    assert (readers["bob"]["sessions"], readers["bob"]["finished"], readers["bob"]["cases"]) == (3, 1, 2)
    assert readers["alice"]["samples"] == 155
    # c1: 3 sessions, c2: 3 sessions, c3: none.
    assert [(b["value"], b["items"]) for b in stats["cases_by_sessions"]] == [(0, 1), (1, 0), (2, 0), (3, 2)]
    assert [(c["case_id"], c["sessions"], c["readers"]) for c in stats["by_case"]] == [
        (c1, 3, 2),
        (c2, 3, 2),
        (_c3, 0, 0),
    ]
    sources = {s["source"]: s for s in stats["sources"]}
    assert sources["mouse"] == {"source": "mouse", "sessions": 2, "calibrated": 1, "median_error_px": 40.0}
    assert sources["webcam"]["calibrated"] == 2 and sources["webcam"]["median_error_px"] == 160.0
    assert sources["tracker"]["calibrated"] == 0 and sources["tracker"]["median_error_px"] is None
    cal = stats["calibration"]
    assert (cal["sessions_with"], cal["sessions_without"]) == (3, 3)
    assert cal["mean"] == 120.0 and cal["median"] == 120.0
    hist = cal["histogram"]
    assert (
        hist["edges"][0] == 0 and hist["edges"][-1] == 200 and len(hist["counts"]) == len(hist["edges"]) - 1
    )
    assert sum(hist["counts"]) == 3
    width = hist["edges"][1]
    for value in (40, 120):
        assert hist["counts"][int(value // width)] >= 1
    assert hist["counts"][-1] == 1  # 200 falls in the closed last bin

    everywhere = app_client.get("/api/stats/gaze", headers=auth("admin")).json()
    assert everywhere["dataset_id"] is None
    assert everywhere["totals"]["sessions"] == 7 and everywhere["totals"]["cases"] == 4
    only_other = app_client.get("/api/stats/gaze", params={"dataset_id": other}, headers=auth("admin")).json()
    assert only_other["totals"]["sessions"] == 1 and only_other["calibration"]["median"] == 10.0


def test_gaze_stats_of_an_empty_dataset(
    app_client: TestClient, auth: Auth, db: Database, users: Users
) -> None:
    ds, _ = make_dataset(db, "empty", 2)
    stats = app_client.get("/api/stats/gaze", params={"dataset_id": ds}, headers=auth("admin")).json()
    assert stats["totals"]["sessions"] == 0 and stats["by_reader"] == [] and stats["sources"] == []
    assert stats["calibration"]["median"] is None and sum(stats["calibration"]["histogram"]["counts"]) == 0
    assert stats["cases_by_sessions"] == [{"value": 0, "items": 2}]


def test_pair_stats_histogram_positives_per_case_and_coverage(
    app_client: TestClient, auth: Auth, db: Database, users: Users
) -> None:
    ds, (c1, c2, c3, c4) = make_dataset(db, "pairs", 4)
    add_pair(db, ds, c1, c2, 0.96, positive=True, readers=2)
    add_pair(db, ds, c1, c3, 0.93, positive=True)
    add_pair(db, ds, c2, c3, 0.52, positive=False)
    add_pair(db, ds, c1, c4, 0.99, positive=True, metric="dhash")
    add_session(db, c1, users.reader.id)
    add_session(db, c2, users.reader.id, status=SessionStatus.open)
    unlabelled = app_client.get("/api/stats/pairs", params={"dataset_id": ds}, headers=auth("admin"))
    assert unlabelled.json()["label_precision"] is None
    with db.session() as session:
        for cid, label in ((c1, "a"), (c2, "a"), (c3, "b")):
            session.get(Case, cid).reference_label = label  # type: ignore[union-attr]

    response = app_client.get("/api/stats/pairs", params={"dataset_id": ds}, headers=auth("admin"))
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["metric"] == "moments" and stats["threshold"] == 0.9  # the dataset defaults
    assert stats["metrics"] == ["dhash", "moments"]
    assert (stats["pairs"], stats["positives"]) == (3, 2)
    sim, pos = stats["similarity"], stats["positive_similarity"]
    assert sim["edges"][0] == 0 and sim["edges"][-1] == 1 and len(sim["counts"]) == 20
    assert pos["edges"] == sim["edges"]
    assert [i for i, n in enumerate(sim["counts"]) if n] == [10, 18, 19]
    assert [i for i, n in enumerate(pos["counts"]) if n] == [18, 19]
    # Positives: c1 has 2, c2 and c3 one each, c4 none (its only pair is under another metric).
    assert [(b["value"], b["items"]) for b in stats["positives_per_case"]] == [(0, 1), (1, 2), (2, 1)]
    assert stats["top_cases"][0] == {"case_id": c1, "title": "pairs case 0", "positives": 2}
    assert [(b["value"], b["items"]) for b in stats["readers_per_pair"]] == [(1, 2), (2, 1)]
    assert stats["coverage"] == {
        "cases": 4,
        "cases_with_pair": 3,
        "cases_with_positive": 3,
        "cases_with_finished_session": 1,
        "fraction_with_positive": 0.75,
    }
    # Positive moments pairs (c1, c2) same label, (c1, c3) not; chance for labels a, a, b is 1/3.
    precision = stats["label_precision"]
    assert precision["n_pairs"] == 2 and precision["same_label"] == 0.5
    assert abs(precision["base_rate"] - 1 / 3) < 1e-12 and precision["positives_per_case"] == 1.0

    dhash = app_client.get(
        "/api/stats/pairs", params={"dataset_id": ds, "metric": "dhash"}, headers=auth("admin")
    ).json()
    assert (dhash["pairs"], dhash["positives"]) == (1, 1)
    assert dhash["coverage"]["cases_with_positive"] == 2 and dhash["top_cases"][0]["positives"] == 1


def test_pair_stats_follow_the_dataset_settings(app_client: TestClient, auth: Auth, db: Database) -> None:
    ds, (c1, c2) = make_dataset(db, "settings", 2, settings={"metric": "dhash", "threshold": 0.95})
    add_pair(db, ds, c1, c2, 0.97, positive=True, metric="dhash")
    stats = app_client.get("/api/stats/pairs", params={"dataset_id": ds}, headers=auth("admin")).json()
    assert (stats["metric"], stats["threshold"], stats["positives"]) == ("dhash", 0.95, 1)
    assert stats["coverage"]["fraction_with_positive"] == 1.0


def test_stats_are_for_admins_and_known_datasets(app_client: TestClient, auth: Auth, db: Database) -> None:
    ds, _ = make_dataset(db, "private", 1)
    for path in ("/api/stats/gaze", "/api/stats/pairs"):
        assert app_client.get(path, params={"dataset_id": ds}, headers=auth("alice")).status_code == 403
        assert app_client.get(path, params={"dataset_id": ds}).status_code == 401
        missing = app_client.get(path, params={"dataset_id": 987654}, headers=auth("admin"))
        assert missing.status_code == 404 and "987654" in missing.json()["detail"]
    assert app_client.get("/api/stats/pairs", headers=auth("admin")).status_code == 422


def test_label_precision_follows_the_target_finding(
    app_client: TestClient, auth: Auth, db: Database, users: Users
) -> None:
    """With labels.target_finding, imported finding columns and REFLACX certainties give the labels."""
    from server.models import DiagnosisLabel

    ds, (c1, c2, c3) = make_dataset(db, "finding", 3, settings={"labels": {"target_finding": "Edema"}})
    add_pair(db, ds, c1, c2, 0.95, positive=True)
    add_pair(db, ds, c1, c3, 0.93, positive=True)
    with db.session() as session:
        for cid, flag in ((c1, 1), (c2, 0)):
            case = session.get(Case, cid)
            assert case is not None
            case.reference_label = "CHF"  # about the dataset's own classes: ignored for a target
            case.attributes = {"egd-cxr": {"chexpert": {"Edema": flag}}}
        session.add(
            DiagnosisLabel(
                case_id=c3,
                reader_id=users.reader.id,
                label="abnormal",
                attributes={"reflacx": {"certainty": {"Edema": 4.0}}},
            )
        )
    stats = app_client.get("/api/stats/pairs", params={"dataset_id": ds}, headers=auth("admin")).json()
    # Labels Edema, no Edema, Edema: (c1, c2) differ, (c1, c3) agree; chance 1/3.
    precision = stats["label_precision"]
    assert precision["n_pairs"] == 2 and precision["same_label"] == 0.5
    assert abs(precision["base_rate"] - 1 / 3) < 1e-12
