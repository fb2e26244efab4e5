"""Review shows why the quality gate keeps a session out of pair mining; an admin overrides it there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import E2EServer
from tests.e2e.ui_checks import assert_accessible, screenshot

pytestmark = pytest.mark.e2e


def test_flag_reason_in_review_and_admin_override(
    e2e_server: E2EServer, make_case: Callable[..., int], admin: Any
) -> None:
    case_id = make_case(readers=("alice",), title="No gaze", width=96, height=64)
    display = {"screen_w": 1280, "screen_h": 720, "dpr": 1}
    sid = e2e_server.ok(
        "POST",
        "/api/sessions",
        "alice",
        json={"case_id": case_id, "source": "mouse", "display_info": display},
    )["id"]
    finished = e2e_server.ok("POST", f"/api/sessions/{sid}/finish", "alice", json={"label": "normal"})
    assert finished["quality_flag"] == "no gaze samples"

    admin.goto(f"{e2e_server.base_url}/review/sessions/{sid}")
    admin.wait_for_selector("#review[data-state=ready]")
    assert "no gaze samples" in admin.inner_text("[data-testid=quality-flag]")
    assert "alice" in admin.inner_text("[data-testid=session-meta]")
    screenshot(admin, "review-quality-flag")
    assert_accessible(admin, "review (flagged session)")
    admin.check("[data-testid=quality-override]")
    admin.wait_for_function(
        "() => document.querySelector('#quality-reason').textContent.includes('overridden')"
    )
    assert e2e_server.ok("GET", f"/api/sessions/{sid}")["quality_override"] is True
    # The review list names readers (not ids).
    admin.goto(f"{e2e_server.base_url}/review")
    row = admin.wait_for_selector(f"tr[data-session-id='{sid}']")
    assert "alice" in row.inner_text()
