"""/favicon.ico is served to everyone (browsers ask for it on every page) as a real icon."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image


def test_favicon_is_an_icon_without_sign_in(app_client: TestClient) -> None:
    r = app_client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    icon = Image.open(io.BytesIO(r.content))
    assert icon.format == "ICO" and icon.size[0] >= 16
