"""The first-run banner of ``mcgip serve``: URL and demo logins, printed once the server answers."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from server.demo.banner import announce_when_up, banner_text, public_url, stored_credentials


def test_public_url_shows_localhost_for_local_binds() -> None:
    assert public_url("127.0.0.1", 8000) == "http://localhost:8000"
    assert public_url("0.0.0.0", 9001) == "http://localhost:9001"
    assert public_url("reading.example.org", 80) == "http://reading.example.org:80"
    assert public_url("fe80::1", 8000) == "http://[fe80::1]:8000"


def test_banner_lists_url_and_logins_between_rules(tmp_path: Path) -> None:
    path = tmp_path / "demo-credentials.json"
    path.write_text('{"admin": "a-pass", "reader1": "r-pass"}')
    text = banner_text("http://localhost:8123", stored_credentials(path))
    lines = text.strip().splitlines()
    assert lines[0].startswith("====") and lines[-1].startswith("====")
    assert "http://localhost:8123" in text
    assert any("admin" in line and "a-pass" in line for line in lines)
    assert any("reader1" in line and "r-pass" in line and "(reader)" in line for line in lines)
    assert stored_credentials(tmp_path / "missing.json") == {}
    assert "mcgip users create" in banner_text("http://x:1", {})


def test_announce_waits_for_health() -> None:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    said = threading.Event()
    thread = announce_when_up(f"http://127.0.0.1:{server.server_port}/api/health", said.set, timeout_s=10)
    assert not said.is_set()  # nothing answers yet
    threading.Thread(target=server.handle_request, daemon=True).start()
    thread.join(10)
    server.server_close()
    assert said.is_set()
