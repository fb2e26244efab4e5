"""Browser-test fixtures: a real ``mcgip serve`` on a free port (SQLite in a temp data dir), API
helpers to arrange data, and headless Debian Chromium driven by Playwright (never a downloaded browser).

Reusable by every e2e module: ``e2e_server`` (session), ``browser`` (session), ``login`` (a
logged-in page per user in its own browser context), ``make_case`` (upload + assign).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.e2e.ui_checks import signed_in_page

logger = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "e2e-password-long-enough"
USERS = (("admin", "admin"), ("alice", "reader"), ("bob", "reader"))
LABELS = ["normal", "benign", "malignant"]
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mcgip() -> list[str]:
    exe = Path(sys.executable).with_name("mcgip")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "server.cli"]


@dataclass
class E2EServer:
    """A running server and bearer-token API access to it for arranging and checking data."""

    base_url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    dataset_id: int = 0

    def token(self, username: str) -> str:
        if username not in self.tokens:
            form = {"username": username, "password": PASSWORD}
            r = httpx.post(f"{self.base_url}/api/auth/token", data=form)
            r.raise_for_status()
            self.tokens[username] = r.json()["access_token"]
        return self.tokens[username]

    def api(self, method: str, path: str, user: str = "admin", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs)

    def ok(self, method: str, path: str, user: str = "admin", **kwargs: Any) -> Any:
        r = self.api(method, path, user, **kwargs)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:500]}"
        is_json = r.headers.get("content-type", "").startswith("application/json")
        return r.json() if r.content and is_json else r

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def sample_image(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    """A 16-bit test image (H, W) uint16: a gradient with a bright disc, so windowing is visible."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = 8000 + 20 * xx + 10 * yy + rng.normal(0, 50, (height, width))
    disc = (xx - width * 0.6) ** 2 + (yy - height * 0.4) ** 2 < (min(width, height) * 0.12) ** 2
    img[disc] += 20000
    return np.clip(img, 0, 65535).astype(np.uint16)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EServer]:
    """``mcgip db upgrade``, ``mcgip users create`` x3, then ``mcgip serve`` on a free port."""
    root = tmp_path_factory.mktemp("e2e")
    data_dir = root / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCGIP_")}
    env.update(
        MCGIP_DATA_DIR=str(data_dir),
        MCGIP_SECRET_KEY="e2e-secret-key-0123456789-abcdefghijklmnop",
        MCGIP_LOGIN_ATTEMPTS="1000",
        MCGIP_LOG_LEVEL="WARNING",
    )
    cli = _mcgip()
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=REPO, check=True, capture_output=True, timeout=120)
    port = _free_port()
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    # Accounts are created while the server starts: each CLI start costs seconds on a busy machine.
    creators = [
        subprocess.Popen(
            [*cli, "users", "create", "--username", username, "--role", role],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
        for username, role in USERS
    ]
    for creator in creators:
        out, _ = creator.communicate(f"{PASSWORD}\n".encode(), timeout=120)
        if creator.returncode != 0:
            process.kill()
            pytest.fail(f"mcgip users create failed: {out.decode(errors='replace')}")
    server = E2EServer(
        base_url=f"http://localhost:{port}", data_dir=data_dir, log_path=log_path, process=process
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{server.base_url}/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"server did not start:\n{server.log_tail()}")
        time.sleep(0.2)
    users = server.ok("GET", "/api/users")
    server.user_ids = {u["username"]: u["id"] for u in (users if isinstance(users, list) else users["items"])}
    server.dataset_id = server.ok("POST", "/api/datasets", json={"name": "e2e", "label_set": LABELS})["id"]
    yield server
    stop_process(process, timeout=20)
    if process.returncode not in (0, -15):
        logger.warning("server exited with %s:\n%s", process.returncode, server.log_tail())


@pytest.fixture
def make_case(e2e_server: E2EServer) -> Callable[..., int]:
    """Upload a 16-bit PNG case (or given bytes) and put it on the readers' worklists; returns its id."""

    def make(
        readers: tuple[str, ...] = ("alice",),
        data: bytes | None = None,
        name: str = "case.png",
        title: str = "",
        **image_kw: Any,
    ) -> int:
        body = data if data is not None else png_bytes(sample_image(**image_kw))
        created = e2e_server.ok(
            "POST",
            "/api/cases",
            files={"file": (name, body, "application/octet-stream")},
            data={"dataset_id": str(e2e_server.dataset_id), "title": title},
        )
        if readers:
            ids = [e2e_server.user_ids[r] for r in readers]
            e2e_server.ok("POST", f"/api/cases/{created['id']}/assignments", json={"reader_ids": ids})
        return int(created["id"])

    return make


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """The one Playwright driver of the run: the sync API allows a single one per thread."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield chromium
    chromium.close()


@pytest.fixture
def new_context(browser: Any) -> Iterator[Callable[..., Any]]:
    """Factory of isolated browser contexts (own cookies and IndexedDB); closed after the test."""
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("viewport", {"width": 1280, "height": 800})
        context = browser.new_context(**kwargs)
        context.set_default_timeout(15_000)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def login(e2e_server: E2EServer, new_context: Callable[..., Any]) -> Callable[..., Any]:
    """``login("alice")`` -> a Playwright page signed in through the login form."""

    def sign_in(username: str, **context_kw: Any) -> Any:
        page = new_context(**context_kw).new_page()
        page.on("console", lambda msg: logger.info("browser console %s: %s", msg.type, msg.text))
        page.on("pageerror", lambda err: logger.error("browser page error: %s", err))
        page.goto(f"{e2e_server.base_url}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=whoami]")
        return page

    return sign_in


@pytest.fixture(scope="module")
def admin(e2e_server: E2EServer, browser: Any) -> Iterator[Any]:
    """A page signed in as the demo admin, one per test module (its tests share the session)."""
    page = signed_in_page(browser, e2e_server.base_url, "admin", PASSWORD)
    yield page
    page.context.close()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
