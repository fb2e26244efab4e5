"""Schemathesis over every operation of the OpenAPI document against a fresh server: no input makes
it answer 5xx, and every documented response matches its schema.

The run is bounded (fixed seed, a few examples per operation) to fit the suite's time. It signs in
as an admin holding every scope, with data to find (a dataset, a case, a reading session), and
cannot lock itself out: the one operation that could revoke its token, changing a user, is pinned
to another account.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server.models import Role
from tests.support.live import LiveServer

SEED = 20261203
EXAMPLES = 6
CHECKS = "not_a_server_error,response_schema_conformance"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("fuzz"),
        users=(("admin", Role.admin), ("alice", Role.reader), ("victim", Role.reader)),
    )
    server.start()
    yield server
    server.close()


def _seed(live: LiveServer) -> dict[str, int]:
    """Something behind the low ids the fuzzer tries first, so GETs return real bodies to validate."""
    users = {u["username"]: u["id"] for u in live.api("GET", "/api/users").json()}
    dataset = live.api("POST", "/api/datasets", json={"name": "fuzz", "label_set": ["a", "b"]}).json()
    buf = io.BytesIO()
    Image.fromarray(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)).save(buf, format="PNG")
    files = {"file": ("x.png", buf.getvalue(), "image/png")}
    case = live.api("POST", "/api/cases", files=files, data={"dataset_id": str(dataset["id"])}).json()
    live.api("POST", f"/api/cases/{case['id']}/assignments", json={"reader_ids": [users["alice"]]})
    display = {"screen_w": 800, "screen_h": 600, "dpr": 1}
    made = live.api(
        "POST", "/api/sessions", json={"case_id": case["id"], "source": "mouse", "display_info": display}
    )
    assert made.status_code == 201, made.text
    return users


@pytest.mark.slow
def test_no_input_gives_a_server_error_or_breaks_the_schema(live: LiveServer, tmp_path: Path) -> None:
    users = _seed(live)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[[operations]]\n"
        'include-path = "/api/users/{user_id}"\n'
        f'parameters = {{ "path.user_id" = {users["victim"]} }}\n'
    )
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    result = subprocess.run(
        [
            cli,
            "--config-file",
            str(config),
            "run",
            f"{live.base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {live.token('admin')}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            str(SEED),
            "--max-examples",
            str(EXAMPLES),
            "--generation-database",
            "none",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = result.stdout[-20000:] + result.stderr[-4000:]
    assert result.returncode == 0, (
        f"schemathesis found failures:\n{report}\n--- server log ---\n{live.log_tail()}"
    )
    assert "Tested: " in result.stdout
    # The admin's token survived the run (nothing locked it out mid-way).
    assert live.api("GET", "/api/auth/me").status_code == 200
