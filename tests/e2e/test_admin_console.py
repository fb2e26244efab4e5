"""Admin console pages at 1280x720: users (create, role, deactivate, reset password), datasets
(settings form generated from the typed settings, every error shown at once), bulk assignment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import E2EServer
from tests.e2e.ui_checks import assert_accessible, screenshot

pytestmark = pytest.mark.e2e


def test_admin_console_users_datasets_assignments(
    e2e_server: E2EServer, make_case: Callable[..., int], admin: Any
) -> None:
    base = e2e_server.base_url
    admin.goto(f"{base}/admin")
    admin.wait_for_selector("#user-table tbody tr")
    admin.fill("#user-form input[name=username]", "carol")
    admin.fill("#user-form input[name=display_name]", "Carol Reader")
    admin.fill("#user-form input[name=password]", "carol-password-long")
    admin.click("#user-form button[type=submit]")
    admin.wait_for_selector("tr[data-user=carol]")
    admin.select_option("[data-testid=role-carol]", "admin")
    admin.wait_for_function("() => document.querySelector('#user-status').textContent.includes('now admin')")
    admin.select_option("[data-testid=role-carol]", "reader")
    admin.wait_for_function("() => document.querySelector('#user-status').textContent.includes('now reader')")
    admin.once("dialog", lambda dialog: dialog.accept("carol-new-password-123"))
    admin.click("[data-testid=reset-carol]")
    admin.wait_for_function("() => document.querySelector('#user-status').textContent.includes('reset')")
    assert e2e_server.api(
        "POST", "/api/auth/token", data={"username": "carol", "password": "carol-new-password-123"}
    ).status_code in (200, 401)
    admin.click("[data-testid=active-carol]")
    admin.wait_for_selector("tr[data-user=carol][data-active=false]")
    users = {u["username"]: u for u in e2e_server.ok("GET", "/api/users")}
    assert users["carol"]["is_active"] is False and users["carol"]["display_name"] == "Carol Reader"
    screenshot(admin, "admin-users")
    assert_accessible(admin, "admin users")

    admin.goto(f"{base}/admin/datasets")
    admin.wait_for_selector("#dataset-form[data-state=ready]")
    assert admin.locator("[name='settings.quality.min_valid_fraction']").input_value() == "0.2"
    # Two mistakes at once: one label only, and a threshold above 1 — both are reported.
    admin.fill("#dataset-form input[name=name]", "console-ds")
    admin.fill("#dataset-form input[name=label_set]", "only-one")
    admin.fill("[name='settings.threshold']", "1.5")
    admin.click("#dataset-form button[type=submit]")
    errors = admin.wait_for_selector("[data-testid=form-errors] li")
    assert errors is not None
    texts = admin.locator("[data-testid=form-errors] li").all_inner_texts()
    assert any(t.startswith("label_set") for t in texts) and any(
        t.startswith("settings.threshold") for t in texts
    )
    assert admin.get_attribute("[name='settings.threshold']", "aria-invalid") == "true"
    screenshot(admin, "admin-datasets-errors")
    assert_accessible(admin, "admin datasets")
    admin.fill("#dataset-form input[name=label_set]", "normal, abnormal")
    admin.fill("[name='settings.threshold']", "0.8")
    admin.fill("[name='settings.quality.min_valid_fraction']", "0.5")
    admin.click("#dataset-form button[type=submit]")
    admin.wait_for_function(
        "() => document.querySelector('#dataset-status').textContent"
        " || document.querySelector('.form-errors li')"
    )
    assert admin.locator("[data-testid=form-errors] li").all_inner_texts() == []
    admin.wait_for_selector("tr[data-dataset=console-ds]")
    made = next(d for d in e2e_server.ok("GET", "/api/datasets") if d["name"] == "console-ds")
    assert made["settings"]["threshold"] == 0.8 and made["settings"]["quality"]["min_valid_fraction"] == 0.5

    titles = [f"console case {i}" for i in range(4)]
    ids = [make_case(readers=(), title=t, width=64, height=48) for t in titles]
    admin.goto(f"{base}/admin/assignments")
    admin.wait_for_selector("#assign-form[data-state=ready]")
    admin.select_option("#assign-dataset", str(e2e_server.dataset_id))
    admin.check("[data-testid=reader-alice]")
    admin.check("[data-testid=reader-bob]")
    admin.fill("#assign-form input[name=search]", "console case")
    admin.click("#assign-form button[type=submit]")
    admin.wait_for_selector("[data-testid=assign-result] tbody tr")
    counts = dict(
        zip(
            admin.locator("[data-testid=assign-result] tbody td:first-child").all_inner_texts(),
            admin.locator("[data-testid=assign-result] tbody td:last-child").all_inner_texts(),
            strict=True,
        )
    )
    assert counts == {"alice": "2", "bob": "2"}
    for reader in ("alice", "bob"):
        mine = {i["case"]["id"] for i in e2e_server.ok("GET", "/api/worklist", reader)}
        assert len(mine & set(ids)) == 2
    screenshot(admin, "admin-assignments")
    assert_accessible(admin, "admin assignments")
