"""Jinja2 templates from webui/templates and the static/vendor mounts."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

WEBUI_DIR = Path(__file__).resolve().parents[2] / "webui"
TEMPLATES_DIR = WEBUI_DIR / "templates"
STATIC_DIR = WEBUI_DIR / "static"
NODE_MODULES_DIR = WEBUI_DIR / "node_modules"

#: npm packages served under /vendor/<name>/ (only these; never the whole node_modules tree).
VENDOR_PACKAGES: dict[str, str] = {
    "chart.js": "chart.js/dist",
    "webgazer": "webgazer/dist",
    # Accessibility checks (the browser tests run it on every page kind; nothing loads it otherwise).
    "axe-core": "axe-core",
}

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
