"""Gazepoint trackers through the Open Gaze API (XML lines over TCP, port 4242 by default).

The client first asks for the product id, the screen size and the calibration summary, then
enables the fixation point of gaze, time stamps and (last) the data stream::

    <SET ID="ENABLE_SEND_POG_FIX" STATE="1" />
    <SET ID="ENABLE_SEND_TIME" STATE="1" />
    <SET ID="ENABLE_SEND_DATA" STATE="1" />

and then reads ``<REC TIME="12.345" FPOGX="0.51" FPOGY="0.40" FPOGV="1" ... />`` records (one per
line, ``\\r\\n`` terminated): TIME in seconds since the tracker started, FPOGX/FPOGY as fractions of
the screen, FPOGV = 1 when valid. The calibration summary answers
``<GET ID="CALIBRATE_RESULT_SUMMARY" />`` with ``<ACK ... AVE_ERROR="..." VALID_POINTS="..." />``
(average error in screen pixels). The client also passes on any
``<CAL ID="CALIB_RESULT" .../>`` record a calibration run sends.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, Final

from server.tracker_bridge.source import TrackerEvent, TrackerInfo, TrackerSample

logger = logging.getLogger(__name__)

DEFAULT_PORT: Final = 4242
ENABLE: Final = ("ENABLE_SEND_POG_FIX", "ENABLE_SEND_TIME", "ENABLE_SEND_DATA")
QUERIES: Final = ("PRODUCT_ID", "SCREEN_SIZE", "CALIBRATE_RESULT_SUMMARY")


def command(kind: str, ident: str, **attrs: str) -> bytes:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f'<{kind} ID="{ident}"{extra} />\r\n'.encode("ascii")


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def parse_line(line: str) -> TrackerEvent | None:
    """One Open Gaze API line as a sample or tracker info (None for anything else).

    Raises:
        ValueError: the line is not well-formed XML.
    """
    element = ET.fromstring(line)
    attrs = element.attrib
    if element.tag == "REC":
        t, x, y = _number(attrs.get("TIME")), _number(attrs.get("FPOGX")), _number(attrs.get("FPOGY"))
        if t is None:
            return None
        valid = attrs.get("FPOGV") == "1" and x is not None and y is not None
        return TrackerSample(t, x if x is not None else -1.0, y if y is not None else -1.0, valid)
    ident = attrs.get("ID")
    if element.tag == "ACK" and ident == "CALIBRATE_RESULT_SUMMARY":
        info: dict[str, Any] = {"calibration": {"source": "tracker"}}
        error = _number(attrs.get("AVE_ERROR"))
        points = _number(attrs.get("VALID_POINTS"))
        if error is not None:
            info["calibration"]["mean_error_px"] = error
        if points is not None:
            info["calibration"]["valid_points"] = int(points)
        return TrackerInfo(info)
    if element.tag == "ACK" and ident == "SCREEN_SIZE":
        size = {k.lower(): _number(v) for k, v in attrs.items() if k in ("X", "Y", "WIDTH", "HEIGHT")}
        return TrackerInfo({"screen": size})
    if element.tag == "ACK" and ident == "PRODUCT_ID":
        return TrackerInfo({"model": f"Gazepoint {attrs.get('VALUE', '')}".strip()})
    if element.tag == "CAL" and ident == "CALIB_RESULT":
        cal_points: list[dict[str, float | None]] = []
        i = 1
        while f"CALX{i}" in attrs:
            cal_points.append(
                {
                    k: _number(attrs.get(f"{k.upper()}{i}"))
                    for k in ("calx", "caly", "lx", "ly", "lv", "rx", "ry", "rv")
                }
            )
            i += 1
        return TrackerInfo({"calibration_points": cal_points})
    return None


class GazepointTracker:
    """Reads a Gazepoint tracker (or Gazepoint Control) over the Open Gaze API.

    Args:
        host: Where Gazepoint Control listens.
        port: Its Open Gaze API port.
        timeout_s: Connect and read timeout; a silent tracker for this long ends ``events()``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, timeout_s: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        # Queries go first and ENABLE_SEND_DATA last, so the answers (product, screen,
        # calibration) arrive before the record stream and are never stuck behind it.
        for ident in QUERIES:
            sock.sendall(command("GET", ident))
        for ident in ENABLE:
            sock.sendall(command("SET", ident, STATE="1"))
        return sock

    def events(self) -> Iterator[TrackerEvent]:
        self._sock = self._connect()
        yield TrackerInfo({"tracker": "gazepoint", "api": f"open-gaze-api@{self.host}:{self.port}"})
        buffer = b""
        bad = 0
        while self._sock is not None:
            try:
                data = self._sock.recv(65536)
            except OSError:
                if self._sock is None:
                    return  # closed by close()
                raise
            if not data:
                logger.info("gazepoint tracker closed the connection")
                return
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.strip().decode("utf-8", errors="replace")
                if not line:
                    continue
                try:
                    event = parse_line(line)
                except ET.ParseError:
                    bad += 1
                    if bad % 100 == 1:
                        logger.warning("ignoring malformed Open Gaze API line %r", line[:120])
                    continue
                if event is not None:
                    yield event

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendall(command("SET", "ENABLE_SEND_DATA", STATE="0"))
                # Unblocks a recv() waiting in the reading thread.
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
