"""``mcgip bench predict``: the predict API against a bare onnxruntime session, and gaze ingest beside it.

One run, one machine, the same images and the same exported model (a ResNet-18 encoder with a
calibrated-layout diagnosis head, exported by ``trainer.export``):

1. reference: a bare ``onnxruntime.InferenceSession`` in this process scores the images with the
   same preprocessing (``trainer.imaging``), from ``--clients`` threads -> requests/s and p95; once
   with onnxruntime's default options (what a plain user writes), once with no spin-waiting, and
   the ratios use the stronger of the two on each figure;
2. API: ``POST /api/models/{id}/predict {"case_id": N}`` against a real server (uvicorn subprocess,
   SQLite) from ``--clients`` concurrent HTTP clients -> requests/s and p95;
3. gaze ingest alone, then while predictions run: ``--readers`` readers at ``--rate`` Hz stream to
   ``/ws/gaze`` (``bench/ingest_load.py``), first with nothing else running (the control), then while
   the API phase's clients keep predicting -> p99 ack of both.

Targets: API throughput >= 0.7x the reference, API p95 <= 2x the reference p95, and gaze p99 ack
<= 100 ms with 100 readers x 120 Hz while predictions run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.ingest import free_port, percentile, prepare, sample_blocks, start_server, stop_server, summarise
from bench.ingest_load import LoadSpec, run_load

IMAGE_SIDE = 512


def _model(folder: Path, image_size: int, classes: tuple[str, ...]) -> Path:
    """Export an untrained ResNet-18 with a random head (the layout and cost of a real version)."""
    import torch

    from trainer.diagnosis.head import DiagnosisHead, save_head
    from trainer.export import export_onnx, save_encoder
    from trainer.models.backbone import build_backbone

    torch.manual_seed(0)
    net, dim = build_backbone("resnet18")
    info = {
        "backbone": "resnet18",
        "image_size": image_size,
        "normalize": {"mean": 0.5, "std": 0.25},
        "config": {"data": {"intensity": "minmax"}},
    }
    encoder = save_encoder(folder / "encoder.pt", net.eval(), info)
    rng = np.random.default_rng(0)
    head = DiagnosisHead(classes, rng.normal(0, 0.01, (len(classes), dim)), np.zeros(len(classes)), 1.3)
    save_head(head, folder / "head.json")
    export_onnx(net.eval(), info, folder / "encoder.onnx", head)
    return encoder


def _register(
    url: str, secret: str, blob_dir: Path, n_cases: int, image_size: int
) -> tuple[int, list[int], str]:
    """Cases with 16-bit images, an admin token with ``predict`` and a model version.

    Returns:
        (model id, case ids, token).
    """
    from server.auth.tokens import TokenCodec
    from server.db import Database
    from server.models import Case, Dataset, ModelVersion, Role, StoredImage, User
    from server.registry.artifacts import checksums

    classes = ("normal", "mass")
    db = Database(url)
    rng = np.random.default_rng(1)
    with db.session() as session:
        dataset = Dataset(name="bench-predict", label_set=list(classes))
        session.add(dataset)
        session.flush()
        folder = blob_dir / "models" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        _model(folder, image_size, classes)
        version = ModelVersion(
            dataset_id=dataset.id,
            version=1,
            method="simclr",
            backbone="resnet18",
            config={"gaze": {"enabled": True}},
            snapshot={},
            metrics={},
            checksums=checksums(folder),
            artifact_dir="models/bench",
            is_active=True,
        )
        session.add(version)
        admin = User(username="bench-admin", password_hash="!", role=Role.admin)
        session.add(admin)
        case_ids = []
        for i in range(n_cases):
            case = Case(dataset_id=dataset.id, title=f"bench {i}", external_id=f"bench-{i}")
            session.add(case)
            session.flush()
            pixels = (rng.random((IMAGE_SIDE, IMAGE_SIDE)) * 4095).astype(np.uint16)
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="PNG")
            storage = blob_dir / "images" / f"bench-{case.id}"
            storage.mkdir(parents=True, exist_ok=True)
            (storage / "pixels16.png").write_bytes(buf.getvalue())
            session.add(
                StoredImage(
                    case_id=case.id,
                    format="png",
                    width=IMAGE_SIDE,
                    height=IMAGE_SIDE,
                    bits_stored=16,
                    photometric="MONOCHROME2",
                    value_offset=0.0,
                    value_scale=1.0,
                    window_center=2048.0,
                    window_width=4096.0,
                    sha256=f"{i:064d}",
                    storage_dir=f"images/bench-{case.id}",
                )
            )
            case_ids.append(case.id)
        session.flush()
        model_id, admin_id = version.id, admin.id
    db.dispose()
    token = TokenCodec(secret, 3600).issue(admin_id, 0, frozenset({"read", "predict"}))
    return model_id, case_ids, token


def _reference(
    onnx_path: Path, images: list[Path], clients: int, duration: float, *, tuned: bool
) -> tuple[float, list[float]]:
    """Bare onnxruntime from ``clients`` threads, each request read + decode + preprocess + one run.

    ``tuned=False`` is what a plain user writes: ``InferenceSession(path)`` with onnxruntime's
    default options. ``tuned=True`` gives the session the server's per-session choices for a
    shared box (no spin-waiting, ``MCGIP_PREDICT_THREADS`` x workers intra-op threads in all).
    Neither runs at a lowered priority: nothing else competes during the reference phase.
    """
    import onnxruntime as ort

    from trainer.imaging import PreprocessSpec, model_input, read_values

    options = ort.SessionOptions()
    if tuned:
        options.intra_op_num_threads = os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    spec = PreprocessSpec.from_dict(json.loads(meta["mcgip.preprocessing"]))
    latencies: list[float] = []
    lock = threading.Lock()
    # One untimed request first, as the API side gets (session start-up is not serving).
    values, full = read_values(images[0])
    session.run(["probabilities"], {"image": model_input(values, spec, full_scale=full)[None]})
    stop = time.perf_counter() + duration

    def loop(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            values, full = read_values(images[i % len(images)])
            x = model_input(values, spec, full_scale=full)[None]
            session.run(["probabilities"], {"image": x})
            with lock:
                latencies.append(time.perf_counter() - t0)
            i += clients

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.perf_counter() - start), latencies


async def _api_load(
    base: str, model_id: int, case_ids: list[int], token: str, clients: int, duration: float
) -> tuple[float, list[float], int]:
    """``clients`` concurrent predict loops for ``duration`` s; (requests/s, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration
    headers = {"Authorization": f"Bearer {token}"}

    async def loop(http: httpx.AsyncClient, k: int) -> None:
        nonlocal errors
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = await http.post(
                f"{base}/api/models/{model_id}/predict",
                json={"case_id": case_ids[i % len(case_ids)]},
                headers=headers,
            )
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
                await asyncio.sleep(0.05)
            i += clients

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(loop(http, k) for k in range(clients)))
    return len(latencies) / (time.perf_counter() - start), latencies, errors


def _warm_up(base: str, model_id: int, case_ids: list[int], token: str, clients: int) -> None:
    """Untimed predictions: the server starts its workers, each loads onnxruntime and the session.

    A few rounds of ``clients`` concurrent requests, so every worker (they start on demand) has
    served one before timing starts, as the reference's session has.
    """

    async def rounds() -> None:
        async with httpx.AsyncClient(timeout=120) as http:
            for _ in range(3):
                answers = await asyncio.gather(
                    *(
                        http.post(
                            f"{base}/api/models/{model_id}/predict",
                            json={"case_id": case_ids[k % len(case_ids)]},
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        for k in range(clients)
                    )
                )
                for r in answers:
                    r.raise_for_status()

    asyncio.run(rounds())


async def _ingest_while_predicting(
    spec: LoadSpec, base: str, model_id: int, case_ids: list[int], token: str, clients: int
) -> tuple[object, tuple[float, list[float], int]]:
    load = asyncio.ensure_future(run_load(spec))
    predict = asyncio.ensure_future(
        _api_load(base, model_id, case_ids, token, clients, spec.duration_s + 1.0)
    )
    return await load, await predict


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcgip bench predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent prediction clients")
    parser.add_argument("--duration", type=float, default=None, help="seconds per phase (10; quick 2)")
    parser.add_argument("--readers", type=int, default=100, help="gaze readers during predictions")
    parser.add_argument("--rate", type=float, default=120.0, help="gaze samples per second per reader")
    parser.add_argument("--frame-ms", type=float, default=100.0, help="gaze frame period, ms")
    parser.add_argument("--image-size", type=int, default=224, help="model input side")
    parser.add_argument("--cases", type=int, default=16, help="distinct images")
    parser.add_argument(
        "--cache-mb",
        type=int,
        default=0,
        help="server tensor cache (MCGIP_PREDICT_CACHE_MB); 0, the default, makes every API request"
        " read, decode and preprocess its image as the reference does",
    )
    parser.add_argument(
        "--micro-batch",
        type=int,
        default=16,
        help="server micro-batch rows (MCGIP_PREDICT_MICRO_BATCH; 1 = each request runs alone)",
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="server predict workers (default min(clients, CPUs))"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="onnxruntime threads per worker (MCGIP_PREDICT_THREADS)"
    )
    parser.add_argument(
        "--threads-only",
        action="store_true",
        help="thread workers in the web process instead of worker processes (MCGIP_PREDICT_PROCESSES=0)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 s phases (unless --duration), 10 readers, 64 px"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.readers, args.image_size, args.cases = min(args.readers, 10), 64, 4
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    data_dir = Path(tempfile.mkdtemp(prefix="mcgip-bench-predict-"))
    world = prepare(data_dir, args.readers)
    model_id, case_ids, token = _register(
        world.url, world.secret, data_dir / "blobs", args.cases, args.image_size
    )
    images = [p for p in sorted((data_dir / "blobs" / "images").glob("*/pixels16.png"))]
    server_env = {
        "MCGIP_PREDICT_WORKERS": str(args.workers or min(args.clients, os.cpu_count() or 1)),
        "MCGIP_PREDICT_THREADS": str(args.threads),
        "MCGIP_PREDICT_PROCESSES": "0" if args.threads_only else "1",
        "MCGIP_PREDICT_CACHE_MB": str(args.cache_mb),
        "MCGIP_PREDICT_MICRO_BATCH": str(args.micro_batch),
    }
    print(
        f"predict: ResNet-18 + head at {args.image_size} px on {IMAGE_SIDE}x{IMAGE_SIDE} 16-bit PNGs,"
        f" {args.clients} clients, {args.duration:g} s phases, {os.cpu_count()} CPUs;"
        f" server: {server_env['MCGIP_PREDICT_WORKERS']} worker"
        f" {'threads' if args.threads_only else 'processes'} x {args.threads} onnxruntime threads,"
        f" tensor cache {args.cache_mb} MiB, micro-batch {args.micro_batch}"
    )
    onnx_path = data_dir / "blobs" / "models" / "bench" / "encoder.onnx"
    refs = {}
    for name, tuned in (("plain", False), ("tuned", True)):
        rps, lat = _reference(onnx_path, images, args.clients, args.duration, tuned=tuned)
        refs[name] = (rps, percentile(lat, 95) * 1000)
        print(
            f"  reference, {name} session{' ' * (6 - len(name))}  {rps:7.1f} req/s"
            f"  p95 {refs[name][1]:7.1f} ms  n={len(lat)}"
        )
    # The ratios are against the stronger reference on each figure.
    ref_rps = max(r for r, _ in refs.values())
    ref_p95 = min(p for _, p in refs.values())
    port = free_port()
    server = start_server(data_dir, world, port, server_env)
    base = f"http://127.0.0.1:{port}"
    try:
        _warm_up(base, model_id, case_ids, token, args.clients)
        api_rps, api_lat, api_errors = asyncio.run(
            _api_load(base, model_id, case_ids, token, args.clients, args.duration)
        )
        api_p95 = percentile(api_lat, 95) * 1000
        print(
            f"  API predict                   {api_rps:7.1f} req/s  p95 {api_p95:7.1f} ms"
            f"  n={len(api_lat)}  errors {api_errors}"
        )
        per_frame = max(1, round(args.rate * args.frame_ms / 1000.0))
        blocks, _ = sample_blocks(per_frame)
        ws_url = f"ws://127.0.0.1:{port}/ws/gaze"
        # Control: the same gaze load with no predictions running (other sessions of the same readers),
        # so a loaded machine's share of the latency can be told from what predictions add.
        alone = asyncio.run(
            run_load(LoadSpec(ws_url, world.saturate, blocks, args.frame_ms, args.duration, resume=True))
        )
        alone_row = summarise(f"gaze alone ({args.readers}x{args.rate:g} Hz)", alone, per_frame)
        spec = LoadSpec(ws_url, world.durable, blocks, args.frame_ms, args.duration, resume=True)
        gaze, (mix_rps, mix_lat, mix_errors) = asyncio.run(
            _ingest_while_predicting(spec, base, model_id, case_ids, token, args.clients)
        )
        row = summarise(f"gaze ({args.readers}x{args.rate:g} Hz)", gaze, per_frame)  # type: ignore[arg-type]
        print(
            f"  API predict during ingest     {mix_rps:7.1f} req/s"
            f"  p95 {percentile(mix_lat, 95) * 1000:7.1f} ms"
            f"  errors {mix_errors}"
        )
    finally:
        stop_server(server)
    print(f"  throughput API/reference {api_rps / ref_rps:.2f} (target >= 0.70)")
    print(f"  p95 API/reference {api_p95 / ref_p95:.2f} (target <= 2.00)")
    print(
        f"  gaze p99 ack while predicting {row['p99_ms']:.1f} ms (target <= 100 ms;"
        f" {alone_row['p99_ms']:.1f} ms with no predictions in this run)"
    )
    import shutil

    shutil.rmtree(data_dir, ignore_errors=True)
    return 0 if api_errors == 0 and row["errors"] == 0 and alone_row["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
