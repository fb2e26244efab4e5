"""The admin's PACS import form at 1280x720 against the test harness's Orthanc: fill the form, start the
import, watch the job's progress reach done, and find the imported (de-identified) cases on the cases
page; the dashboard passes axe-core (no serious or critical violation)."""

from __future__ import annotations

import io
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pydicom
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, REPO, E2EServer, _mcgip, stop_process
from tests.e2e.ui_checks import assert_accessible, screenshot, signed_in_page
from tests.server.pacs.data import ct_series, dicom_file
from tests.support.orthanc import OrthancServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a worker process and a real import: tens of seconds


@pytest.fixture(scope="module")
def pacs_worker(
    e2e_server: E2EServer, orthanc_server: OrthancServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OrthancServer]:
    """A ``mcgip worker`` beside the test server whose MCGIP_PACS_* name the harness's Orthanc."""
    orthanc_server.clear()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCGIP_")}
    env.update(
        MCGIP_DATA_DIR=str(e2e_server.data_dir),
        MCGIP_SECRET_KEY="e2e-secret-key-0123456789-abcdefghijklmnop",
        MCGIP_LOG_LEVEL="INFO",
        MCGIP_WORKER_HEARTBEAT_S="0.5",
        MCGIP_WORKER_POLL_S="0.2",
        MCGIP_PACS_URL=orthanc_server.dicomweb_url,
        MCGIP_PACS_USERNAME=orthanc_server.username,
        MCGIP_PACS_PASSWORD=orthanc_server.password,
    )
    log_path = tmp_path_factory.mktemp("pacs-worker") / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [*_mcgip(), "worker"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield orthanc_server
    finally:
        stop_process(worker)
        log_text = log_path.read_text(errors="replace")
        # The worker logs the import, never the PACS password.
        assert orthanc_server.password not in log_text


def _study_uid(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).StudyInstanceUID)


def test_admin_imports_a_study_from_the_pacs(
    e2e_server: E2EServer, pacs_worker: OrthancServer, browser: Any
) -> None:
    wanted = ct_series(3, description="CT chest")
    other = ct_series(2, description="CT head")
    for data in [*wanted, *other, dicom_file("MR_small.dcm")]:
        pacs_worker.upload(data)
    dataset_id = e2e_server.ok("POST", "/api/datasets", json={"name": "pacs-e2e", "label_set": ["a", "b"]})[
        "id"
    ]

    page = signed_in_page(browser, e2e_server.base_url, "admin", PASSWORD)
    try:
        page.goto(f"{e2e_server.base_url}/dashboard?dataset={dataset_id}")
        page.wait_for_selector(f"#dataset-select option[value='{dataset_id}']", state="attached")
        page.select_option("#dataset-select", str(dataset_id))
        # A bad value first: the server's 422 is shown next to the field it names, nothing is queued.
        page.fill("#pacs-modality", "ct scan")
        page.click("[data-testid=pacs-submit]")
        page.wait_for_function("() => document.querySelector('[data-error-for=modality]').textContent !== ''")
        assert e2e_server.ok("GET", f"/api/jobs?dataset_id={dataset_id}&kind=pacs-import")["total"] == 0

        page.fill("#pacs-url", pacs_worker.dicomweb_url)
        page.fill("#pacs-study-uids", _study_uid(wanted[0]))
        page.fill("#pacs-modality", "CT")
        page.fill("#pacs-description", "*chest*")
        page.click("[data-testid=pacs-submit]")
        page.locator("#job-live").wait_for(state="visible")
        assert page.locator("[data-error-for=modality]").inner_text() == ""
        assert page.locator("#job-live-kind").inner_text() == "pacs-import"

        deadline = time.monotonic() + 120
        while page.locator("#job-live-state").inner_text() not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, "the pacs-import job did not finish in time"
            page.wait_for_timeout(200)
        jobs = e2e_server.ok("GET", f"/api/jobs?dataset_id={dataset_id}&kind=pacs-import")["items"]
        assert len(jobs) == 1
        job = e2e_server.ok("GET", f"/api/jobs/{jobs[0]['id']}")
        assert page.locator("#job-live-state").inner_text() == "succeeded", job["error"]
        assert page.locator("#job-live-progress").inner_text() == "100%"
        assert job["result"]["imported"] == 3 and job["result"]["studies"] == 1
        assert job["params"]["study_uids"] == [_study_uid(wanted[0])]
        screenshot(page, "dashboard-pacs-import")
        assert_accessible(page, "dashboard with PACS import")

        # The imported cases are listed for the admin, with neutral titles (no PACS UIDs).
        page.goto(f"{e2e_server.base_url}/cases")
        # The server is shared with the other browser tests: filter the table to this import's dataset.
        page.wait_for_selector(f"#filter-dataset option[value='{dataset_id}']", state="attached")
        page.select_option("#filter-dataset", str(dataset_id))
        page.click("#filter-form button[type=submit]")
        expect(page.locator("#case-table tbody tr")).to_have_count(3)
        for case_id in job["result"]["case_ids"]:
            row = page.wait_for_selector(f"#case-table tr[data-case-id='{case_id}']")
            assert row is not None and "CT series" in (row.text_content() or "")
        assert _study_uid(wanted[0]) not in page.content()
        assert_accessible(page, "cases after PACS import")
    finally:
        page.context.close()
