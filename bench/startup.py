"""``mcgip bench startup``: ``make run`` from a fresh clone to the first page, twice.

The target (README, quick start): a second ``make run`` reaches the first page (HTTP 200 on ``/``,
redirects followed) in at most 10 s. The benchmark clones this repository's committed HEAD into a
temporary folder, points ``MCGIP_DATA_DIR`` at an empty folder there and ``MCGIP_PORT`` at a free
port, then runs ``make run`` twice, stopping the server after each first page:

- run 1 installs (unless prepared, see below), migrates a new database and seeds the demo;
- run 2 is the one the target is about: nothing to install, migrations and the demo seed no-ops.

By default the clone's ``.venv`` is prepared without the network: a new virtual environment that
sees this interpreter's installed packages (one path line, read-only) with the clone itself
installed editable into it, and the browser libraries hard-linked from this checkout; the install
stamps are then fresh, so run 1 measures migrating and seeding only. ``--cold`` leaves the clone
bare, so run 1 is the real first ``make run`` (downloads everything: minutes). Nothing is installed
into, or changed in, this checkout's own environment.

Prints seconds per run and the second run's ratio to the 10 s target (<= 1.0 meets it). The
reference measured in the same run is the bare ``mcgip serve`` of the same clone and database (no
make, no migration, no seed): what a start costs at least.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_page(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # follows the redirect to /login
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _clean_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MCGIP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env.update(MCGIP_DATA_DIR=str(data_dir), MCGIP_PORT=str(port), MCGIP_HOST="127.0.0.1")
    return env


def timed_start(command: list[str], cwd: Path, env: dict[str, str], port: int, timeout_s: float) -> float:
    """Seconds from starting ``command`` to HTTP 200 on ``/``; the process group is stopped after."""
    log = (cwd.parent / "startup.log").open("ab")
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        while not _first_page(f"http://127.0.0.1:{port}/"):
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}; see {log.name}")
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"no first page after {timeout_s:.0f} s; see {log.name}")
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue


def prepare_clone(clone: Path) -> None:
    """A ``.venv`` and ``webui/node_modules`` for the clone without the network (see the module doc)."""
    venv = clone / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # A plain path line: this environment's packages are importable, its .pth files (its own
    # editable install of the product) are not processed, so the clone's code is the one run.
    (site / "zz_shared_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-e",
            str(clone),
        ],
        check=True,
    )
    (venv / ".installed").touch()
    modules = (REPO / "webui" / "node_modules").resolve()
    target = clone / "webui" / "node_modules"
    subprocess.run(["cp", "-al", str(modules), str(target)], check=True)
    stamp = target / ".installed"
    stamp.unlink(missing_ok=True)  # a hard link: touching it would touch this checkout's stamp
    stamp.touch()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcgip bench startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="run 1 installs everything (needs the network)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run at most")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone (printed)")
    args = parser.parse_args(argv)
    if shutil.which("make") is None or shutil.which("git") is None:
        print("needs make and git")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="mcgip-startup-"))
    try:
        clone = tmp / "repo"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        if not args.cold:
            prepare_clone(clone)
        port = free_port()
        env = _clean_env(tmp / "data", port)
        runs = [timed_start(["make", "run"], clone, env, port, args.timeout) for _ in range(2)]
        reference = timed_start(
            [str(clone / ".venv" / "bin" / "mcgip"), "serve"], clone, env, port, args.timeout
        )
        first = "first make run (install, migrate, seed)" if args.cold else "first make run (migrate, seed)"
        print(f"{first}: {runs[0]:.2f} s")
        print(f"second make run: {runs[1]:.2f} s")
        print(f"reference, bare mcgip serve of the same clone and data: {reference:.2f} s")
        print(f"second run / reference: {runs[1] / reference:.2f}x")
        verdict = "meets" if runs[1] <= TARGET_S else "misses"
        print(f"second run / {TARGET_S:.0f} s target: {runs[1] / TARGET_S:.2f} ({verdict} the target)")
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
