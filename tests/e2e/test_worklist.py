"""The reader's worklist at 1280x720: status per case, counts, filters, search, sorting, skip,
"next unread" and keyboard control; no serious accessibility violation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, E2EServer
from tests.e2e.ui_checks import assert_accessible, screenshot, signed_in_page

pytestmark = pytest.mark.e2e
DISPLAY = {"screen_w": 1280, "screen_h": 720, "dpr": 1}


@pytest.fixture(scope="module")
def bob(e2e_server: E2EServer, browser: Any) -> Iterator[Any]:
    page = signed_in_page(browser, e2e_server.base_url, "bob", PASSWORD)
    yield page
    page.context.close()


def _counts(page: Any) -> dict[str, int]:
    return {
        status: int(page.locator(f"[data-testid=filter-{status}] .count").inner_text())
        for status in ("all", "unread", "in_progress", "read", "skipped")
    }


def test_worklist_statuses_filters_and_next_unread(
    e2e_server: E2EServer, make_case: Callable[..., int], bob: Any
) -> None:
    ids = [make_case(readers=("bob",), title=f"WL case {i}", width=96, height=64) for i in range(4)]
    done, started, skipped, fresh = ids
    sid = e2e_server.ok(
        "POST", "/api/sessions", "bob", json={"case_id": done, "source": "mouse", "display_info": DISPLAY}
    )["id"]
    e2e_server.ok("POST", f"/api/sessions/{sid}/finish", "bob", json={"label": "benign"})
    e2e_server.ok(
        "POST", "/api/sessions", "bob", json={"case_id": started, "source": "mouse", "display_info": DISPLAY}
    )
    e2e_server.ok("PUT", f"/api/worklist/{skipped}/skip", "bob")
    api_items = e2e_server.ok("GET", "/api/worklist", "bob")
    expected = {
        s: sum(1 for i in api_items if i["status"] == s) for s in ("unread", "in_progress", "read", "skipped")
    }

    bob.goto(f"{e2e_server.base_url}/")
    bob.wait_for_selector("#worklist[data-state=ready]")
    assert _counts(bob) == {"all": len(api_items), **expected}
    # The page opens on what is left to read.
    assert bob.get_attribute("[data-testid=filter-unread]", "aria-pressed") == "true"
    assert bob.is_visible(f"tr[data-case-id='{fresh}']") and not bob.is_visible(f"tr[data-case-id='{done}']")
    screenshot(bob, "worklist-unread")
    assert_accessible(bob, "worklist")

    bob.click("[data-testid=filter-all]")
    bob.fill("#worklist-search", "WL case")
    rows = bob.locator("#worklist tbody tr")
    assert rows.count() == 4
    assert bob.inner_text(f"[data-testid=status-{done}]") == "Read"
    assert bob.inner_text(f"[data-testid=status-{started}]") == "In progress"
    assert bob.inner_text(f"[data-testid=status-{skipped}]") == "Skipped"
    assert "benign" in bob.inner_text(f"tr[data-case-id='{done}']")
    bob.select_option("#worklist-sort", "status")
    order = [int(x) for x in rows.evaluate_all("rows => rows.map(r => r.dataset.caseId)")]
    assert order == [started, fresh, skipped, done]

    # Skip from the page (button), then un-skip with the keyboard on the selected row.
    bob.click(f"[data-testid=skip-{fresh}]")
    bob.wait_for_selector(f"tr[data-case-id='{fresh}'][data-status=skipped]")
    assert e2e_server.ok("GET", "/api/worklist?status=skipped", "bob")[-1]["case"]["id"] in {fresh, skipped}
    bob.click(f"[data-testid=skip-{fresh}]")  # unskip
    bob.wait_for_selector(f"tr[data-case-id='{fresh}'][data-status=unread]")
    bob.evaluate("() => document.activeElement.blur()")
    bob.keyboard.press("j")
    assert bob.locator("#worklist tbody tr.selected").count() == 1
    bob.keyboard.press("?")
    assert bob.is_visible("[data-testid=shortcut-help]")
    bob.keyboard.press("Escape")

    # "Next unread" (button and N) goes to the case in progress first.
    bob.keyboard.press("n")
    bob.wait_for_url(f"**/read/{started}")
