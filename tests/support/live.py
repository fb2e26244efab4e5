"""A real ``mcgip serve`` in a subprocess on a free port (SQLite in a temp data dir) that a test can
kill -9 and start again, with bearer-token access for arranging and checking data."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from server import migrate
from server.db import Database
from server.models import Role, User
from tests.conftest import _PASSWORD_HASH, PASSWORD

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A migrated SQLite database with users; ``start()`` runs a server on it, ``kill()`` is SIGKILL."""

    def __init__(self, root: Path, users: tuple[tuple[str, Role], ...] = (("admin", Role.admin),)) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "mcgip.db"
        self.db_url = f"sqlite:///{self.db_path}"
        self.log_path = root / "server.log"
        self._forker: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.port = 0
        self._tokens: dict[tuple[str, str], str] = {}
        migrate.upgrade(self.db_url)
        db = Database(self.db_url)
        with db.session() as session:
            session.add_all(
                User(username=name, display_name=name, password_hash=_PASSWORD_HASH, role=role)
                for name, role in users
            )
        db.dispose()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCGIP_")}
        env.update(
            MCGIP_DATA_DIR=str(self.data_dir),
            MCGIP_SECRET_KEY="live-server-secret-key-0123456789-abcdefghij",
            MCGIP_LOG_LEVEL="WARNING",
            PYTHONPATH=str(REPO),
        )
        return env

    def start(self, timeout_s: float = 120) -> None:
        """A fresh server process (forked from a process that imported the app once)."""
        if self._forker is None or self._forker.poll() is not None:
            log = self.log_path.open("ab")
            self._forker = subprocess.Popen(
                [sys.executable, "-m", "tests.support.forkserver"],
                env=self.env(),
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self._forker.stdin is not None and self._forker.stdout is not None
        self.port = free_port()
        self._forker.stdin.write(f"{self.port}\n".encode())
        self._forker.stdin.flush()
        self.pid = int(self._forker.stdout.readline())
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{self.base_url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not self.alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"server did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the server: no shutdown handler, no flush, no commit of anything in flight."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.01)
        self.pid = None

    def close(self) -> None:
        self.kill()
        if self._forker is not None:
            self._forker.kill()
            self._forker.wait(timeout=30)
            self._forker = None

    def token(self, username: str = "admin", scope: str | None = None) -> str:
        """A bearer token; by default with every scope the user's role may hold."""
        if scope is None:
            scope = "read write export predict" if username == "admin" else "read write predict"
        if (username, scope) not in self._tokens:
            form = {"username": username, "password": PASSWORD, "scope": scope}
            response = httpx.post(f"{self.base_url}/api/auth/token", data=form, timeout=30)
            response.raise_for_status()
            self._tokens[(username, scope)] = response.json()["access_token"]
        return self._tokens[(username, scope)]

    def api(self, method: str, path: str, user: str = "admin", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
