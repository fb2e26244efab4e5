"""A throwaway Orthanc PACS with the DICOMweb plugin for the tests (loopback only, basic auth on).

Debian's ``orthanc`` and ``orthanc-dicomweb`` packages provide the server and the plugin; the
server gets a private JSON configuration, storage and index folder on a free port, with the DICOM
(DIMSE) listener disabled, and is stopped and removed by :meth:`OrthancServer.stop`.
"""

from __future__ import annotations

import glob
import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

USERNAME = "pacs-test"
PASSWORD = "pacs-test-password-1234"
DICOMWEB_ROOT = "/dicom-web"
_PLUGIN_GLOBS = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so*",
    "/usr/lib/*/orthanc/libOrthancDicomWeb.so*",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)


def dicomweb_plugin() -> str | None:
    for pattern in _PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


@dataclass
class OrthancServer:
    """A running Orthanc; ``dicomweb_url`` is what McGIP is pointed at."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    username: str = USERNAME
    password: str = PASSWORD
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.base_url}{DICOMWEB_ROOT}"

    @property
    def rest(self) -> httpx.Client:
        """An authenticated client of Orthanc's own REST API (test set-up and checks)."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url, auth=(self.username, self.password), timeout=30
            )
        return self._client

    def upload(self, data: bytes) -> dict[str, str]:
        """Store one DICOM file through Orthanc's REST ``/instances``; returns Orthanc's answer."""
        response = self.rest.post("/instances", content=data, headers={"Content-Type": "application/dicom"})
        response.raise_for_status()
        answer: dict[str, str] = response.json()
        return answer

    def clear(self) -> None:
        """Delete every patient (and so every study, series and instance)."""
        for patient in self.rest.get("/patients").json():
            self.rest.delete(f"/patients/{patient}").raise_for_status()

    def instance_count(self) -> int:
        return int(self.rest.get("/statistics").json()["CountInstances"])

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)


def _wait_ready(server: OrthancServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (server.directory / "orthanc.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Orthanc exited with {server.process.returncode}: {log}")
        try:
            if server.rest.get("/system").status_code == 200:
                return
        except httpx.TransportError as exc:
            last = str(exc)
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"Orthanc did not answer within {timeout_s:.0f} s ({last})")


def start_orthanc(timeout_s: float = 30.0) -> OrthancServer | None:
    """Start a private Orthanc, or return None when Orthanc or its DICOMweb plugin is not installed."""
    binary, plugin = orthanc_binary(), dicomweb_plugin()
    if binary is None or plugin is None:
        return None
    directory = Path(tempfile.mkdtemp(prefix="mcgip-orthanc-"))
    port = _free_port()
    config = {
        "Name": "mcgip-test-pacs",
        "StorageDirectory": str(directory / "storage"),
        "IndexDirectory": str(directory / "storage"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USERNAME: PASSWORD},
        "Plugins": [plugin],
        "DicomWeb": {"Enable": True, "Root": f"{DICOMWEB_ROOT}/", "EnableWado": False},
        "OrthancExplorerEnabled": False,
        "SaveJobs": False,
        "StorageCompression": False,
        "HttpThreadsCount": 8,
    }
    config_path = directory / "orthanc.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    log = (directory / "orthanc.log").open("wb")
    process = subprocess.Popen([binary, str(config_path)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = OrthancServer(directory=directory, port=port, process=process)
    _wait_ready(server, timeout_s)
    return server
