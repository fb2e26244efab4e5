"""Checks every page test can run: axe-core accessibility (served locally under /vendor/axe-core) and
screenshots kept as test artifacts under ``.test-artifacts/`` at the repository root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".test-artifacts" / "e2e"
#: Impacts that fail a page (axe also reports "moderate" and "minor", which are logged by the caller).
BLOCKING = ("serious", "critical")

_RUN_AXE = """async () => {
  const result = await window.axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
  }));
}"""


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (the library is injected from the app itself)."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(url="/vendor/axe-core/axe.min.js")
    return list(page.evaluate(_RUN_AXE))


def assert_accessible(page: Any, name: str) -> None:
    """No serious or critical axe-core violation on the page."""
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING]
    assert not blocking, f"{name}: accessibility violations {blocking}"


def screenshot(page: Any, name: str) -> Path:
    """Save a PNG of the viewport as ``.test-artifacts/e2e/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def signed_in_page(browser: Any, base_url: str, username: str, password: str, **context_kw: Any) -> Any:
    """A page in a fresh 1280x720 browser context, signed in through the login form (for module-scoped
    fixtures: one context per test module keeps the browser tests fast)."""
    context_kw.setdefault("viewport", {"width": 1280, "height": 720})
    context = browser.new_context(**context_kw)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=whoami]")
    return page


_CLIPPED = """(selector) => {
  const root = document.querySelector(selector);
  if (!root) return ['missing ' + selector];
  const box = root.getBoundingClientRect();
  const out = [];
  if (box.right > window.innerWidth + 1 || box.left < -1) out.push(`${selector} outside the window`);
  for (const node of root.querySelectorAll('*')) {
    const r = node.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(node).visibility === 'hidden') continue;
    if (r.left < box.left - 1 || r.right > box.right + 1) {
      const name = `${node.tagName.toLowerCase()}#${node.id}.${node.className}`;
      out.push(`${name} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
    }
  }
  return out;
}"""


def clipped(page: Any, selector: str) -> list[str]:
    """Elements inside ``selector`` that stick out of it left or right (cut off or scrolled away), and
    the container itself when it leaves the window; vertical overflow is left to the panel's scroll."""
    return list(page.evaluate(_CLIPPED, selector))
