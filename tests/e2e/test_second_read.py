"""AI second read in the viewer: nothing before the diagnosis; after it the model's probabilities,
the reader agrees, and the choice is stored beside the untouched original diagnosis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.db import Database
from server.storage import BlobStore
from tests.e2e.conftest import E2EServer, png_bytes, sample_image
from tests.e2e.reading_support import finish_case, make_scanpath, open_reading, serve_json, wait_replay_end
from tests.server.jobs.models_support import CLASSES, make_diagnosis_version

pytestmark = pytest.mark.e2e


def test_second_read_after_submit_then_agree_is_stored(
    e2e_server: E2EServer, login: Callable[..., Any]
) -> None:
    dataset = e2e_server.ok(
        "POST",
        "/api/datasets",
        json={"name": "second-read", "label_set": list(CLASSES), "settings": {"second_read": True}},
    )
    case = e2e_server.ok(
        "POST",
        "/api/cases",
        files={"file": ("c.png", png_bytes(sample_image(width=200, height=160)), "application/octet-stream")},
        data={"dataset_id": str(dataset["id"])},
    )
    e2e_server.ok(
        "POST", f"/api/cases/{case['id']}/assignments", json={"reader_ids": [e2e_server.user_ids["alice"]]}
    )
    db = Database(f"sqlite:///{e2e_server.data_dir / 'mcgip.db'}")
    try:
        make_diagnosis_version(db, BlobStore(e2e_server.data_dir / "blobs"), dataset["id"], active=True)
    finally:
        db.dispose()

    page = login("alice")
    serve_json(page, "/e2e/second-read.json", make_scanpath(60, 200, 160))
    session_id = open_reading(page, e2e_server.base_url, case["id"], "/e2e/second-read.json", rate=4.0)
    wait_replay_end(page)
    # While the reader is still reading (gaze captured), the model's answer is nowhere on the page.
    assert page.locator("[data-testid=second-read]").is_hidden()
    assert page.locator("[data-testid=second-read-probabilities]").count() == 0
    finish_case(page, "a")

    table = page.locator("[data-testid=second-read-probabilities]")
    table.wait_for(timeout=20_000)
    assert sorted(table.locator("tr").evaluate_all("rows => rows.map(r => r.dataset.label)")) == sorted(
        CLASSES
    )
    assert "NOT FOR CLINICAL USE" in page.locator("[data-testid=second-read]").inner_text()
    page.click("[data-testid=second-read-agree]")
    page.wait_for_selector("[data-testid=second-read-status][data-choice=agree]")

    stored = e2e_server.ok("GET", f"/api/sessions/{session_id}/second-read")
    assert stored["choice"] == "agree" and stored["reader_label"] == "a" and stored["amended_label"] is None
    assert set(stored["probabilities"]) == set(CLASSES)
    session = e2e_server.ok("GET", f"/api/sessions/{session_id}")
    assert session["status"] == "finished"
