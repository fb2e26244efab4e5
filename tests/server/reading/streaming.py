"""Helpers that stream frames over the test client's WebSocket."""

from __future__ import annotations

from typing import Any

from tests.server.reading.conftest import Reading, frame


def stream(
    reading: Reading, session_id: int, frames: dict[int, list[list[float]]], username: str = "alice"
) -> None:
    """Send ``frames`` (seq -> samples) on one socket, in the given order, and wait for every ack."""
    with reading.client.websocket_connect(f"/ws/gaze?token={reading.token(username)}") as ws:
        ws.send_json({"type": "hello", "session_id": session_id})
        assert ws.receive_json()["type"] == "welcome"
        for seq, samples in frames.items():
            ws.send_json(frame(seq, samples))
        replies: list[dict[str, Any]] = [ws.receive_json() for _ in frames]
    assert sorted(r["seq"] for r in replies if r["type"] == "ack") == sorted(frames), replies
