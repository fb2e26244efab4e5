"""Probes of ``mcgip bench loop``: what a reader and an admin do over HTTP and ``/ws/gaze``, timed.

Each function drives the running embedded set-up as a client would (no access to its internals
except ``pairs_in_database``, which reads the SQLite file after the server has stopped).
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.ingest_load import LoadSpec, Reader, run_load
from trainer.synthetic.images import SyntheticCase

TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Embedded:
    """The running set-up: base URL, the demo dataset and the admin's and a reader's credentials."""

    base: str
    dataset_id: int
    admin: dict[str, str]  # Authorization header
    reader: dict[str, str]
    reader_token: str
    reader_id: int
    reader_name: str


def _token(client: httpx.Client, username: str, password: str) -> str:
    reply = client.post("/api/auth/token", data={"username": username, "password": password})
    reply.raise_for_status()
    return str(reply.json()["access_token"])


def connect(base: str, passwords: dict[str, str]) -> Embedded:
    """Log in as the demo admin and the first demo reader; find the demo dataset."""
    from server.demo.seed import DEMO_ADMIN, DEMO_DATASET, DEMO_READERS

    with httpx.Client(base_url=base, timeout=30) as client:
        admin = {"Authorization": f"Bearer {_token(client, DEMO_ADMIN, passwords['admin'])}"}
        reader_token = _token(client, DEMO_READERS[0], passwords["reader"])
        reader = {"Authorization": f"Bearer {reader_token}"}
        datasets = client.get("/api/datasets", headers=admin).json()
        dataset_id = next(int(d["id"]) for d in datasets if d["name"] == DEMO_DATASET)
        reader_id = int(client.get("/api/auth/me", headers=reader).json()["id"])
    return Embedded(base, dataset_id, admin, reader, reader_token, reader_id, DEMO_READERS[0])


def _pair_stats(client: httpx.Client, world: Embedded) -> dict[str, Any]:
    reply = client.get(f"/api/stats/pairs?dataset_id={world.dataset_id}", headers=world.admin)
    reply.raise_for_status()
    return dict(reply.json())


def wait_settled(client: httpx.Client, world: Embedded, timeout_s: float = 180) -> float:
    """Wait until the worker has mined every seeded session: each read case has a pair."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        coverage = _pair_stats(client, world)["coverage"]
        busy = client.get("/api/jobs?state=queued&limit=1", headers=world.admin).json()["total"]
        busy += client.get("/api/jobs?state=running&limit=1", headers=world.admin).json()["total"]
        if coverage["cases_with_pair"] == coverage["cases_with_finished_session"] > 0 and busy == 0:
            return time.monotonic() - start
        time.sleep(0.25)
    raise RuntimeError(f"the worker did not mine the demo sessions within {timeout_s:.0f} s")


# ---- measurements ------------------------------------------------------------------------------


def _wait_job(client: httpx.Client, world: Embedded, job_id: int, timeout_s: float, poll_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = str(client.get(f"/api/jobs/{job_id}", headers=world.admin).json()["state"])
        if state in TERMINAL:
            return state
        time.sleep(poll_s)
    raise RuntimeError(f"job {job_id} did not finish within {timeout_s:.0f} s")


def queue_round_trip(client: httpx.Client, world: Embedded) -> float:
    """Seconds from ``POST /api/jobs`` of a ``pairs`` job with nothing new to mine until it is done."""
    start = time.perf_counter()
    reply = client.post(
        "/api/jobs", headers=world.admin, json={"kind": "pairs", "dataset_id": world.dataset_id}
    )
    reply.raise_for_status()
    state = _wait_job(client, world, int(reply.json()["id"]), 60, 0.02)
    if state != "succeeded":
        raise RuntimeError(f"reference pairs job ended {state}")
    return time.perf_counter() - start


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _frames(case_image: dict[str, Any], synthetic: SyntheticCase, seed: int, reader_name: str) -> list[str]:
    """The reader's simulated gaze on the case as protocol frames (JSON sample arrays, 100 ms each)."""
    from server.demo.gaze import Viewport, protocol_samples, split_frames
    from trainer.synthetic.readers import DEMO_READERS, simulate_session

    profile = next(p for p in DEMO_READERS if p.name == reader_name)
    simulated = simulate_session(synthetic, profile, seed=seed).samples  # (m, 4): t_ms, x, y, valid
    viewport = Viewport(
        int(case_image["width"]),
        int(case_image["height"]),
        float(case_image["window_center"]),
        float(case_image["window_width"]),
    )
    return [json.dumps(chunk.tolist()) for chunk in split_frames(protocol_samples(simulated, viewport))]


def read_new_case(client: httpx.Client, world: Embedded, synthetic: SyntheticCase, index: int) -> int:
    """Upload a case, assign it, read it over ``/ws/gaze`` and finish; returns the case id."""
    files = {"file": (f"loop-{index}.png", _png(synthetic.image), "image/png")}
    form = {
        "dataset_id": str(world.dataset_id),
        "title": f"Loop case {index}",
        "external_id": f"loop-{index}",
    }
    case = client.post("/api/cases", headers=world.admin, files=files, data=form)
    case.raise_for_status()
    case_id = int(case.json()["id"])
    assigned = client.post(
        f"/api/cases/{case_id}/assignments", headers=world.admin, json={"reader_ids": [world.reader_id]}
    )
    assigned.raise_for_status()
    image = case.json()["image"]
    display = {"screen_w": image["width"], "screen_h": image["height"], "dpr": 1.0}
    opened = client.post(
        "/api/sessions",
        headers=world.reader,
        json={"case_id": case_id, "source": "replay", "display_info": display},
    )
    opened.raise_for_status()
    session_id = int(opened.json()["id"])
    blocks = _frames(image, synthetic, 10_000 + index, world.reader_name)
    # Paced at 2 ms per frame for n - 0.5 periods: exactly frames 0..n-1, in order.
    period_ms = 2.0
    ws = world.base.replace("http://", "ws://") + "/ws/gaze"
    spec = LoadSpec(
        ws, [Reader(session_id, world.reader_token)], blocks, period_ms,
        (len(blocks) - 0.5) * period_ms / 1000.0, resume=True,
    )  # fmt: skip
    log = asyncio.run(run_load(spec)).logs[0]
    if log.errors or len(log.acked) != len(blocks):
        raise RuntimeError(f"session {session_id}: {len(log.acked)}/{len(blocks)} acked, {log.errors[:1]}")
    finished = client.post(
        f"/api/sessions/{session_id}/finish", headers=world.reader, json={"label": synthetic.label}
    )
    finished.raise_for_status()
    return case_id


def pair_latency(
    client: httpx.Client, world: Embedded, synthetic: SyntheticCase, index: int
) -> tuple[int, float]:
    """Read one new case; seconds from the finish reply until the pair statistics include it."""
    before = _pair_stats(client, world)["coverage"]["cases_with_pair"]
    case_id = read_new_case(client, world, synthetic, index)
    start = time.perf_counter()
    while time.perf_counter() - start < 120:
        if _pair_stats(client, world)["coverage"]["cases_with_pair"] > before:
            return case_id, time.perf_counter() - start
        time.sleep(0.1)
    raise RuntimeError(f"case {case_id} did not reach the pair statistics within 120 s")


@dataclass
class ProgressTrace:
    """What a 0.1 s poller of ``GET /api/jobs/{id}`` saw of one retrain."""

    job_id: int
    submitted: float
    running_at: float | None = None
    ended_at: float | None = None
    state: str = "queued"
    reports: list[float] = field(default_factory=list)  # times a new heartbeat_at was first seen
    changes: list[float] = field(default_factory=list)  # times progress or progress_info changed
    phases: list[tuple[str, float]] = field(default_factory=list)  # (phase, first seen)
    error: str | None = None

    def gaps(self, times: list[float]) -> list[float]:
        if self.running_at is None or self.ended_at is None:
            return []
        marks = [self.running_at, *(t for t in times if self.running_at < t < self.ended_at), self.ended_at]
        return [b - a for a, b in zip(marks, marks[1:], strict=False)]

    def phase_seconds(self) -> dict[str, float]:
        """Seconds from each phase's first sighting to the next phase's (or the job's end)."""
        ends = [t for _, t in self.phases[1:]] + [self.ended_at or float("nan")]
        return {name: end - start for (name, start), end in zip(self.phases, ends, strict=True)}


def follow_job(world: Embedded, trace: ProgressTrace, timeout_s: float, poll_s: float = 0.1) -> None:
    """Poll the job until it ends, recording when progress reports and changes became visible."""
    last_beat: Any = None
    last_content: Any = None
    with httpx.Client(base_url=world.base, timeout=30) as client:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = client.get(f"/api/jobs/{trace.job_id}", headers=world.admin).json()
            now = time.perf_counter()
            trace.state = job["state"]
            if job["state"] == "running":
                trace.running_at = trace.running_at or now
                info = {k: v for k, v in (job["progress_info"] or {}).items() if k != "history"}
                content = (job["progress"], json.dumps(info, sort_keys=True))
                if job["heartbeat_at"] != last_beat and last_beat is not None:
                    trace.reports.append(now)
                if content != last_content and last_content is not None:
                    trace.changes.append(now)
                last_beat, last_content = job["heartbeat_at"], content
                phase = str(info.get("phase", ""))
                if phase and (not trace.phases or trace.phases[-1][0] != phase):
                    trace.phases.append((phase, now))
            if job["state"] in TERMINAL:
                trace.ended_at = now
                trace.error = job.get("error")
                return
            time.sleep(poll_s)
    trace.error = f"still {trace.state} after {timeout_s:.0f} s"


def submit_retrain(client: httpx.Client, world: Embedded, config: dict[str, Any]) -> ProgressTrace:
    """Queue a retrain of the dataset with ``config`` (docs/trainer.md); the trace starts now."""
    body = {"kind": "retrain", "dataset_id": world.dataset_id, "params": {"config": config}}
    submitted = time.perf_counter()
    reply = client.post("/api/jobs", headers=world.admin, json=body)
    reply.raise_for_status()
    return ProgressTrace(job_id=int(reply.json()["id"]), submitted=submitted)


def pairs_in_database(data_dir: Path, case_ids: Sequence[int]) -> dict[int, int]:
    """Pairs stored per new case, read straight from the SQLite file after the server stopped."""
    from sqlalchemy import func, or_, select

    from server.db import Database
    from server.models import Pair
    from server.settings import Settings

    db = Database(Settings(data_dir=data_dir).resolved_database_url)
    try:
        with db.session() as session:
            return {
                case_id: int(
                    session.scalar(
                        select(func.count())
                        .select_from(Pair)
                        .where(or_(Pair.case_a_id == case_id, Pair.case_b_id == case_id))
                    )
                    or 0
                )
                for case_id in case_ids
            }
    finally:
        db.dispose()
