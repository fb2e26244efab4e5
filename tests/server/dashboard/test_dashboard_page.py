"""The dashboard page: admins get it (with Chart.js from the local vendor mount), readers a 403 page."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

Auth = Callable[[str], dict[str, str]]


def test_admin_page_loads_local_chart_js_and_every_panel(app_client: TestClient, auth: Auth) -> None:
    page = app_client.get("/dashboard", headers=auth("admin"))
    assert page.status_code == 200
    html = page.text
    assert '<script src="/vendor/chart.js/chart.umd.js"></script>' in html
    for panel in ("panel-gaze", "panel-pairs", "panel-train", "panel-pacs", "panel-jobs", "panel-models"):
        assert f'data-testid="{panel}"' in html
    for field in ("method", "backbone", "metric", "threshold", "epochs", "advanced"):
        assert f'data-error-for="{field}"' in html
    chart = app_client.get("/vendor/chart.js/chart.umd.js")
    assert chart.status_code == 200 and "Chart" in chart.text[:5000]
    assert app_client.get("/static/js/dashboard/main.js").status_code == 200
    for field in ("url", "study_uids", "modality", "date_from", "date_to", "study_description"):
        assert f'data-error-for="{field}"' in html  # the PACS import form
    assert app_client.get("/static/js/dashboard/pacs.js").status_code == 200


def test_readers_get_403_and_anonymous_visitors_the_login(app_client: TestClient, auth: Auth) -> None:
    reader = app_client.get("/dashboard", headers=auth("alice"))
    assert reader.status_code == 403 and 'data-testid="forbidden"' in reader.text
    assert "panel-train" not in reader.text
    anonymous = app_client.get("/dashboard", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/dashboard"
