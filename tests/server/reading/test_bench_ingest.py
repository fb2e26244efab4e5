"""Smoke run of ``mcgip bench ingest`` (real server, real sockets) and where its echo endpoint lives."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from bench import ingest
from server.settings import Settings


def test_quick_ingest_bench_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert ingest.main(["--quick", "--readers", "4"]) == 0
    out = capsys.readouterr().out
    assert "samples lost 0 (must be 0)" in out
    reconciled = re.findall(r"reconciled durable \w+: (\d+)/(\d+) frames stored, samples lost (\d+)", out)
    assert len(reconciled) == 2
    for stored, sent, lost in reconciled:
        assert int(stored) == int(sent) > 0 and lost == "0"


def test_echo_endpoint_only_with_the_bench_setting(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def echo_reachable() -> bool:
        with TestClient(ingest.bench_app(settings)) as client:
            try:
                with client.websocket_connect(ingest.ECHO_PATH) as ws:
                    ws.send_text("ping")
                    return ws.receive_text() == "ping"
            except WebSocketDisconnect:
                return False

    monkeypatch.delenv(ingest.ECHO_ENV, raising=False)
    assert not echo_reachable()
    monkeypatch.setenv(ingest.ECHO_ENV, "1")
    assert echo_reachable()
