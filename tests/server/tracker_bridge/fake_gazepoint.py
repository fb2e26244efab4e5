"""A fake Gazepoint Control: answers Open Gaze API commands and streams REC records in real time."""

from __future__ import annotations

import socket
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass
class FakeGazepoint:
    """Serves one client: ACKs SET/GET, then (once data is enabled) streams ``points`` at ``rate_hz``.

    Attributes:
        points: (FPOGX, FPOGY, FPOGV) per record.
        t0: Tracker clock (s) of the first record.
        received: Commands the client sent, as (tag, ID, STATE) tuples.
    """

    points: list[tuple[float, float, int]]
    rate_hz: float = 60.0
    t0: float = 1234.5
    ave_error: str = "21.5"
    received: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.settimeout(5)
            enabled: set[str] = set()
            buffer = b""
            while "ENABLE_SEND_DATA" not in enabled:
                buffer += conn.recv(4096)
                *lines, buffer = buffer.split(b"\r\n")
                for line in lines:
                    element = ET.fromstring(line)
                    ident = element.get("ID", "")
                    self.received.append((element.tag, ident, element.get("STATE", "")))
                    if element.tag == "SET":
                        conn.sendall(f'<ACK ID="{ident}" STATE="1" />\r\n'.encode())
                        enabled.add(ident)
                    elif ident == "CALIBRATE_RESULT_SUMMARY":
                        summary = f'AVE_ERROR="{self.ave_error}" VALID_POINTS="9"'
                        reply = f'<ACK ID="CALIBRATE_RESULT_SUMMARY" {summary} />'
                        conn.sendall(reply.encode() + b"\r\n")
                    elif ident == "SCREEN_SIZE":
                        conn.sendall(b'<ACK ID="SCREEN_SIZE" X="0" Y="0" WIDTH="1920" HEIGHT="1080" />\r\n')
                    elif ident == "PRODUCT_ID":
                        conn.sendall(b'<ACK ID="PRODUCT_ID" VALUE="GP3" />\r\n')
            start = time.monotonic()
            conn.sendall(b"<NOT XML\r\n")  # a damaged line must not stop the stream
            for i, (x, y, v) in enumerate(self.points):
                wait = start + i / self.rate_hz - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                t = self.t0 + i / self.rate_hz
                pog = f'FPOGX="{x:.5f}" FPOGY="{y:.5f}" FPOGS="{t:.5f}" FPOGD="0.1" FPOGID="{i}" FPOGV="{v}"'
                record = f'<REC TIME="{t:.5f}" {pog} />'
                conn.sendall(record.encode() + b"\r\n")
        self.server.close()
