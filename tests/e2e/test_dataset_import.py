"""A public data set imported with ``mcgip import gaze`` (cases created from its DICOM) shows its
anatomy boxes as a toggleable overlay on the admin's case review page."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from tests.e2e.conftest import REPO, E2EServer, _mcgip
from tests.server.interchange.files import BBOX_COLUMNS, EGD_COLUMNS, egd_row, master_sheet, write_csv

pytestmark = pytest.mark.e2e


def viewer_pixels(page: Any) -> np.ndarray:
    shot = page.locator("[data-testid=viewer] canvas").first.screenshot()
    return np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=np.int16)


def test_imported_boxes_toggle_on_the_case_review(
    e2e_server: E2EServer, tmp_path: Path, login: Callable[..., Any]
) -> None:
    root = tmp_path / "egd-cxr"
    master_sheet(
        root / "master_sheet.csv", {"e2e-dcm-1": {"margins": (0, 0, 420, 420), "condition": "Normal"}}
    )
    write_csv(
        root / "fixations.csv",
        EGD_COLUMNS,
        [egd_row("1", "e2e-dcm-1", 0.9, 0.5, 0.5, start=0.4, duration=0.5)],
    )
    write_csv(
        root / "bounding_boxes.csv",
        BBOX_COLUMNS,
        [["e2e-dcm-1", "cardiac silhouette", 20.0, 100.0, 30.0, 90.0]],
    )
    images = tmp_path / "files"
    images.mkdir()
    pydicom.dcmread(get_testdata_file("CT_small.dcm")).save_as(images / "e2e-dcm-1.dcm")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCGIP_")}
    env["MCGIP_DATA_DIR"] = str(e2e_server.data_dir)
    command = [
        *_mcgip(), "import", "gaze", "--format", "egd-cxr", str(root), "--dataset", "e2e",
        "--images", str(images), "--create-cases", "--label-map", "Normal=normal",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported 1 sessions" in done.stdout and "stored 1 annotations" in done.stdout
    cases = e2e_server.ok("GET", f"/api/cases?dataset_id={e2e_server.dataset_id}&limit=500")
    items = cases["items"] if isinstance(cases, dict) else cases
    case_id = next(c["id"] for c in items if c["external_id"] == "e2e-dcm-1")

    admin = login("admin")
    admin.goto(f"{e2e_server.base_url}/review/cases/{case_id}")
    admin.wait_for_selector("#review[data-state=ready]")
    toggle = admin.get_by_test_id("show-annotations")
    assert toggle.is_visible() and not toggle.is_checked()
    assert "1 region (egd-cxr)" in admin.get_by_test_id("annotation-info").inner_text()
    admin.get_by_test_id("show-heat").uncheck()
    before = viewer_pixels(admin)
    toggle.check()
    admin.wait_for_timeout(300)
    after = viewer_pixels(admin)
    changed = np.abs(after - before).sum(axis=2) > 30
    # The box outline (green) appears; most of the image stays as it was.
    assert 50 < changed.sum() < 0.2 * changed.size
    green = after[changed]
    assert (green[:, 1] > green[:, 0] + 60).mean() > 0.5
