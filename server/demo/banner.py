"""The first-run banner: where the app listens and how to sign in, printed once the server answers."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

#: Bind addresses that mean "this machine": the banner shows a URL a local browser can open.
_LOCAL_BINDS = {"127.0.0.1", "0.0.0.0", "::", "::1", "localhost", ""}


def public_url(host: str, port: int) -> str:
    """The URL to open for a server bound to ``host``:``port``."""
    shown = "localhost" if host in _LOCAL_BINDS else host
    if ":" in shown:  # a literal IPv6 address
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def banner_text(url: str, credentials: dict[str, str]) -> str:
    """The banner: the URL and the demo logins (if a demo was seeded), set apart by rules."""
    rule = "=" * 64
    lines = ["", rule, f"  McGIP is running: {url}", ""]
    if credentials:
        lines.append("  Demo logins (kept in the data dir, demo-credentials.json):")
        for username, password in credentials.items():
            role = "admin" if username == "admin" else "reader"
            lines.append(f"    {username:<10} {password:<20} ({role})")
    else:
        lines.append("  No demo accounts: create one with `mcgip users create`.")
    lines += ["", "  Ctrl-C stops the server and the worker.", rule, ""]
    return "\n".join(lines)


def stored_credentials(path: Path) -> dict[str, str]:
    """The demo logins the seed kept, or none when there is no (readable) file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def announce_when_up(
    health_url: str, emit: Callable[[], None], *, timeout_s: float = 120.0, interval_s: float = 0.1
) -> threading.Thread:
    """Call ``emit`` once ``health_url`` answers 200 (from a daemon thread), so the banner is the
    last thing the start-up prints instead of scrolling away above the server's own log lines."""

    def wait() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(health_url, timeout=2) as response:  # noqa: S310 (loopback URL we built)
                    if response.status == 200:
                        emit()
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(interval_s)

    thread = threading.Thread(target=wait, name="mcgip-banner", daemon=True)
    thread.start()
    return thread
