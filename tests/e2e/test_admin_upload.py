"""Admin bulk upload at 1280x720: a folder (webkitdirectory) and a zip, then the per-file result table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2EServer
from tests.e2e.ui_checks import assert_accessible, screenshot
from tests.server.test_bulk_upload import make_zip
from tests.server.test_cases import gradient, phi_dicom, png_bytes

pytestmark = pytest.mark.e2e


def _outcomes(page: Any) -> dict[str, str]:
    rows = page.locator("#upload-result tbody tr")
    return {
        rows.nth(i).get_attribute("data-name"): rows.nth(i).get_attribute("data-outcome")
        for i in range(rows.count())
    }


def test_bulk_upload_of_a_folder_and_a_zip(e2e_server: E2EServer, admin: Any, tmp_path: Path) -> None:
    dataset = e2e_server.ok("POST", "/api/datasets", json={"name": "bulk-e2e", "label_set": ["a", "b"]})
    folder = tmp_path / "scans"
    (folder / "left").mkdir(parents=True)
    (folder / "left" / "one.png").write_bytes(png_bytes(gradient(60, 70)))
    (folder / "right.png").write_bytes(png_bytes(gradient(70, 60)))
    (folder / "readme.txt").write_text("not an image\n")

    admin.goto(f"{e2e_server.base_url}/admin/upload")
    admin.wait_for_selector("#upload-form[data-state=ready]")
    admin.select_option("#upload-dataset", str(dataset["id"]))
    admin.set_input_files("[data-testid=upload-folder]", folder)
    admin.click("[data-testid=upload-submit]")
    admin.wait_for_selector("#upload-result:not([hidden]) tbody tr")
    assert _outcomes(admin) == {
        "scans/left/one.png": "stored",
        "scans/readme.txt": "refused",
        "scans/right.png": "stored",
    }
    assert admin.locator("[data-testid=upload-status]").inner_text() == "2 stored, 0 duplicate, 1 refused."
    assert "unsupported" in admin.locator("tr[data-name='scans/readme.txt']").inner_text().lower()

    # A zip with one new DICOM, a copy of an image stored above, and a path-traversal entry.
    archive = tmp_path / "more.zip"
    archive.write_bytes(
        make_zip(
            {
                "ct.dcm": phi_dicom()[0],
                "again/one.png": (folder / "left" / "one.png").read_bytes(),
                "../escape.png": png_bytes(gradient(20, 20)),
            }
        )
    )
    admin.reload()  # a fresh form: the folder chosen above is no longer selected
    admin.wait_for_selector("#upload-form[data-state=ready]")
    admin.select_option("#upload-dataset", str(dataset["id"]))
    admin.set_input_files("[data-testid=upload-files]", archive)
    admin.click("[data-testid=upload-submit]")
    admin.wait_for_function(
        "() => document.querySelector('[data-testid=upload-status]').textContent.includes('1 duplicate')"
    )
    assert _outcomes(admin) == {
        "more.zip/ct.dcm": "stored",
        "more.zip/again/one.png": "duplicate",
        "more.zip/../escape.png": "refused",
    }
    assert "unsafe path" in admin.locator("tr[data-name='more.zip/../escape.png']").inner_text()
    cases = e2e_server.ok("GET", f"/api/cases?dataset_id={dataset['id']}")
    assert cases["total"] == 3
    screenshot(admin, "admin-upload")
    assert_accessible(admin, "admin bulk upload")
