"""The admin dashboard at 1280x720 has no serious or critical accessibility violation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import E2EServer
from tests.e2e.ui_checks import assert_accessible, screenshot

pytestmark = pytest.mark.e2e


def test_dashboard_is_accessible(e2e_server: E2EServer, admin: Any) -> None:
    admin.goto(f"{e2e_server.base_url}/dashboard?dataset={e2e_server.dataset_id}")
    admin.wait_for_load_state("networkidle")
    screenshot(admin, "dashboard")
    assert_accessible(admin, "dashboard")
    # The tab icon exists (no 404 in the browser's console for /favicon.ico).
    assert admin.evaluate("async () => (await fetch('/favicon.ico')).status") == 200
