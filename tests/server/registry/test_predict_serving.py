"""Serving the predict API fast: tensor cache, export metadata cache, micro-batching."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.special import softmax

from server.db import Database
from server.exceptions import Unavailable
from server.registry.batcher import MicroBatcher
from server.registry.pool import PredictPool
from server.registry.predict_cache import TensorCache, TensorKey
from server.registry.priority import call_in_lowered_thread
from server.settings import Settings
from server.storage import BlobStore
from tests.conftest import Users
from tests.server.jobs.models_support import (
    CLASSES,
    SIZE,
    TEMPERATURE,
    diagnosis_weights,
    make_diagnosis_version,
    tiny_diagnosis_onnx,
)
from tests.server.registry import pool_jobs
from tests.server.worker.data import TinyDataset, make_dataset
from trainer.imaging import PreprocessSpec, model_input, read_values

Auth = Callable[[str], dict[str, str]]
SPEC = PreprocessSpec(size=4)


def expected(values: np.ndarray, seed: int) -> np.ndarray:
    """The tiny graph of ``tiny_diagnosis_onnx(seed)`` in numpy."""
    x = model_input(values, PreprocessSpec(size=SIZE))[0]
    pooled = x.reshape(4, 4, 4, 4).mean(axis=(1, 3)).reshape(-1)
    w, h, b = diagnosis_weights(seed)
    return softmax(((pooled @ w) @ h + b) / TEMPERATURE)


def test_tensor_cache_is_a_bounded_lru_of_read_only_copies() -> None:
    row = np.ones((1, 4, 4), np.float32)  # 64 bytes
    cache = TensorCache(max_bytes=3 * row.nbytes)
    keys = [TensorKey(f"{i:064x}", False, SPEC) for i in range(4)]
    for i, key in enumerate(keys[:3]):
        cache.put(key, row * i)
    assert cache.get(keys[0]) is not None  # keys[0] is now the most recent
    cache.put(keys[3], row * 3)  # over the bound: the least recently used (keys[1]) goes
    assert len(cache) == 3 and cache.nbytes == 3 * row.nbytes
    assert cache.get(keys[1]) is None
    got = cache.get(keys[3])
    assert got is not None and float(got.max()) == 3.0 and not got.flags.writeable
    # The spec and the invert flag are part of the key.
    assert cache.get(TensorKey(keys[3].content_sha256, True, SPEC)) is None
    assert cache.get(TensorKey(keys[3].content_sha256, False, PreprocessSpec(size=8))) is None
    off = TensorCache(max_bytes=0)
    off.put(keys[0], row)
    assert len(off) == 0 and off.get(keys[0]) is None


def test_micro_batch_returns_each_request_its_own_rows() -> None:
    batcher = MicroBatcher(max_rows=8)
    first_running = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def graph(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        if len(calls) == 1:
            first_running.set()
            assert release.wait(10)
        return x.reshape(len(x), -1).sum(axis=1, keepdims=True) * 10  # one row out per row in

    results: dict[int, np.ndarray] = {}

    def caller(k: int, n_rows: int) -> None:
        rows = np.full((n_rows, 1, 2, 2), float(k), np.float32)
        results[k] = batcher.run("model", graph, rows)

    lead = threading.Thread(target=caller, args=(0, 1))
    lead.start()
    assert first_running.wait(10)
    others = [threading.Thread(target=caller, args=(k, 1 + k % 2)) for k in range(1, 5)]
    for t in others:
        t.start()
    deadline = time.monotonic() + 10
    while sum(len(q) for q in batcher._pending.values()) < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in [lead, *others]:
        t.join(10)
    # The lone first request ran alone; the four that queued meanwhile shared one run of 6 rows.
    assert calls == [1, 6]
    for k in range(5):
        n_rows = 1 + k % 2 if k else 1
        assert results[k].shape == (n_rows, 1)
        assert np.all(results[k] == k * 4 * 10)


def test_micro_batch_failure_reaches_every_caller_and_the_next_run_works() -> None:
    batcher = MicroBatcher()

    def broken(x: np.ndarray) -> np.ndarray:
        raise ValueError("graph failed")

    with pytest.raises(ValueError, match="graph failed"):
        batcher.run("m", broken, np.zeros((1, 2), np.float32))
    out = batcher.run("m", lambda x: x + 1, np.zeros((2, 2), np.float32))
    assert out.shape == (2, 2) and float(out.max()) == 1.0


@pytest.fixture
def data(db: Database, settings: Settings, users: Users) -> TinyDataset:
    return make_dataset(db, BlobStore(settings.blob_dir), users.reader2, n_cases=3)


def test_cache_serves_repeats_and_follows_the_active_model_and_a_recreated_export(
    app_client: TestClient, auth: Auth, db: Database, settings: Settings, data: TinyDataset
) -> None:
    blobs = BlobStore(settings.blob_dir)
    v1 = make_diagnosis_version(db, blobs, data.dataset_id, version=1, active=True)
    v2 = make_diagnosis_version(db, blobs, data.dataset_id, version=2)
    v2_onnx = f"models/diag-{data.dataset_id}-2/encoder.onnx"
    blobs.write(v2_onnx, tiny_diagnosis_onnx(seed=1))
    case_id = data.case_ids[0]
    values, _ = read_values(blobs.path(f"images/{case_id}/pixels16.png"))
    tensors = app_client.app.state.ctx.predict_tensors  # type: ignore[attr-defined]

    def active() -> dict[str, object]:
        r = app_client.post("/api/models/active/predict", json={"case_id": case_id}, headers=auth("admin"))
        assert r.status_code == 200, r.text
        return dict(r.json())

    def probs(body: dict[str, object]) -> np.ndarray:
        p = body["probabilities"]
        assert isinstance(p, dict)
        return np.array([p[c] for c in CLASSES])

    first = active()
    misses = tensors.misses
    again = active()
    assert tensors.misses == misses and tensors.hits >= 1  # the repeat skipped read + preprocessing
    assert first["model_version"] == again["model_version"] == v1
    assert np.abs(probs(first) - expected(values, 0)).max() <= 1e-5
    assert probs(again).tolist() == probs(first).tolist()

    promoted = app_client.post(f"/api/models/{v2}/promote", headers=auth("admin"))
    assert promoted.status_code == 200, promoted.text
    switched = active()
    assert switched["model_version"] == v2
    assert np.abs(probs(switched) - expected(values, 1)).max() <= 1e-5

    # An export re-created in place (same path) is a new file version: new session, new answers.
    path = blobs.path(v2_onnx)
    blobs.write(v2_onnx, tiny_diagnosis_onnx(seed=2))
    later = time.time_ns() + 2_000_000_000
    os.utime(path, ns=(later, later))
    recreated = active()
    assert recreated["model_version"] == v2
    assert np.abs(probs(recreated) - expected(values, 2)).max() <= 1e-5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux")
def test_prediction_threads_and_the_threads_they_start_run_at_lower_priority() -> None:
    def own_nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    base = own_nice()
    pool = PredictPool(workers=1, capacity=1, nice=5)
    try:
        assert asyncio.run(pool.run(own_nice)) == min(19, base + 5)
    finally:
        pool.shutdown()

    def spawn_and_report() -> int:  # as onnxruntime's session constructor starts its workers
        seen: list[int] = []
        child = threading.Thread(target=lambda: seen.append(own_nice()))
        child.start()
        child.join()
        return seen[0]

    assert call_in_lowered_thread(spawn_and_report, 3) == min(19, base + 3)
    assert own_nice() == base  # the caller keeps its priority


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux")
def test_worker_processes_run_every_thread_lower_with_one_blas_thread() -> None:
    from server.imaging.errors import UnsupportedImageType

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pool = PredictPool(workers=1, capacity=2, nice=4, processes=True)
    try:
        pid, nices, started, blas = asyncio.run(pool.run(pool_jobs.worker_report))
        # Domain errors raised in the worker reach the caller as themselves (415 in the API).
        with pytest.raises(UnsupportedImageType, match="unsupported"):
            asyncio.run(pool.run(pool_jobs.fails))
        # A worker that dies is a 503 for its request; the next job gets fresh workers.
        with pytest.raises(Unavailable, match="worker stopped"):
            asyncio.run(pool.run(pool_jobs.dies))
        assert pool.admitted == 0
        again, *_ = asyncio.run(pool.run(pool_jobs.worker_report))
        assert again not in (pid, os.getpid())
    finally:
        pool.shutdown(wait=True)
    assert pid != os.getpid()  # decoding and preprocessing hold another process's GIL
    # Every thread of the worker, numpy's BLAS threads started before the initializer included,
    # and every thread it starts later (onnxruntime's) runs lower than the web process.
    assert nices and set(nices) == {min(19, base + 4)}
    assert started == min(19, base + 4)
    assert blas == 1
