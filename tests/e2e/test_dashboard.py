"""Admin dashboard in the browser: retrain on the demo data with a real worker, watch the job's live
progress reach done, promote the new version, download its ONNX export and run it with onnxruntime.

The demo (``mcgip demo seed``: synthetic cases with simulated, labelled reading sessions) and a
``mcgip worker`` process share the test server's data directory; the training config is tiny so the
whole retrain (McGIP run, no-gaze baseline, evaluation, three exports) takes seconds on a CPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import REPO, E2EServer, _mcgip, stop_process

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

DEMO_DATASET = "synthetic-mammo-demo"
#: Small enough to train, evaluate and export in seconds on two CPU cores.
TINY_CONFIG = {
    "data": {"image_size": 32, "load_size": 40},
    "augment": {"preset": "synthetic"},
    "model": {"proj_hidden_dim": 64, "proj_dim": 32},
    "method": {"temperature": 0.5},
    "optim": {"lr": 0.05},
    "train": {"batch_size": 8, "checkpoint_every": 2, "log_every": 1, "device": "cpu"},
    "evaluation": {"knn_k": 3, "probe_epochs": 10, "cv_repeats": 2},  # a smoke run: few CV repetitions
}
RETRAIN_TIMEOUT_S = 240
PAIRS_TIMEOUT_S = 120


def _cli_env(server: E2EServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCGIP_")}
    env.update(
        MCGIP_DATA_DIR=str(server.data_dir),
        MCGIP_SECRET_KEY="e2e-secret-key-0123456789-abcdefghijklmnop",
        MCGIP_LOG_LEVEL="INFO",
        MCGIP_WORKER_HEARTBEAT_S="0.5",
        MCGIP_WORKER_POLL_S="0.2",
    )
    return env


@pytest.fixture(scope="module")
def demo(e2e_server: E2EServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Seed the demo into the server's data dir and run a worker beside it; yields the demo dataset id."""
    env = _cli_env(e2e_server)
    cli = _mcgip()
    started = time.monotonic()
    seeded = subprocess.run(
        [*cli, "demo", "seed", "--cases", "16", "--size", "64"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    datasets = e2e_server.ok("GET", "/api/datasets")
    dataset_id = next(d["id"] for d in datasets if d["name"] == DEMO_DATASET)
    logger.info("demo seeded in %.1f s", time.monotonic() - started)
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([*cli, "worker"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield dataset_id
    finally:
        stop_process(worker)
        tail = log_path.read_text(errors="replace").splitlines()[-40:]
        logger.info("worker log tail:\n%s", "\n".join(tail))


def _chart_points(page: Any, canvas: str) -> dict[str, int]:
    """Run label -> number of points on a dashboard chart (read from the page's own Chart.js instance)."""
    return page.evaluate(
        """async (canvas) => {
            const charts = await import('/static/js/dashboard/charts.js');
            const chart = charts.chartOn(canvas);
            if (!chart) return {};
            return Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data.length]));
        }""",
        canvas,
    )


@pytest.mark.slow  # it trains for real: two short runs, evaluation and three exports in subprocesses
def test_admin_retrains_watches_promotes_and_runs_the_onnx_export(
    e2e_server: E2EServer, demo: int, login: Callable[..., Any], tmp_path: Path
) -> None:
    import onnxruntime as ort

    # The worker mines the demo sessions' gaze into pairs on its own schedule; train once it has.
    deadline = time.monotonic() + PAIRS_TIMEOUT_S
    while (pairs := e2e_server.ok("GET", f"/api/stats/pairs?dataset_id={demo}"))["pairs"] == 0:
        assert time.monotonic() < deadline, "the worker mined no pairs from the demo sessions"
        time.sleep(1)
    page = login("admin")
    page.goto(f"{e2e_server.base_url}/dashboard?dataset={demo}")
    # The gaze panel shows the demo's simulated sessions: two readers, every other case read by both.
    page.wait_for_function(
        "() => document.querySelectorAll('#gaze-sources tbody tr').length > 0", timeout=20_000
    )
    stats = e2e_server.ok("GET", f"/api/stats/gaze?dataset_id={demo}")
    assert stats["totals"]["readers"] == 2 and stats["totals"]["finished"] == 16  # 8 of 16 cases x 2 readers
    assert page.locator("#gaze-totals dt:text-is('Readers') + dd").inner_text() == "2"
    assert page.locator("#gaze-totals dt:text-is('Cases read') + dd").inner_text() == "8 of 16"
    page.wait_for_function("() => !!document.querySelector('#pair-totals dd')")
    shown_pairs = int(page.locator("#pair-totals dt:text-is('Pairs') + dd").inner_text().replace(",", ""))
    assert shown_pairs >= pairs["pairs"] > 0  # mining may have added more since
    if pairs["label_precision"] is not None:  # the demo's cases are labelled: precision against chance
        precision = page.locator("#pair-totals dt:text-is('Pair precision (labels)') + dd").inner_text()
        assert "labelled pairs (chance " in precision or "no positive pair joins" in precision

    # Server-side validation: the 422's message appears next to the field that caused it.
    page.select_option("#train-method", "simclr")
    page.select_option("#train-backbone", "resnet18")
    page.select_option("#train-metric", "moments")
    page.fill("#train-threshold", "0.9")
    page.fill("#train-epochs", "0")
    page.click("#train-form details summary")
    page.fill("#train-advanced", json.dumps(TINY_CONFIG))
    page.click("[data-testid=retrain-submit]")
    epochs_error = page.locator("[data-error-for=epochs]")
    epochs_error.wait_for(state="visible")
    assert "greater than or equal to 1" in epochs_error.inner_text()
    assert e2e_server.ok("GET", f"/api/jobs?dataset_id={demo}&kind=retrain")["total"] == 0

    page.fill("#train-epochs", "2")
    page.click("[data-testid=retrain-submit]")
    page.locator("[data-testid=job-live]").wait_for(state="visible")
    assert page.locator("[data-error-for=epochs]").inner_text() == ""
    jobs = e2e_server.ok("GET", f"/api/jobs?dataset_id={demo}&kind=retrain")["items"]
    assert len(jobs) == 1
    job_id = jobs[0]["id"]
    queued_at = time.monotonic()
    config = jobs[0]["params"]["config"]
    assert config["method"]["name"] == "simclr" and config["data"]["image_size"] == 32

    # Live progress over SSE: the percentage climbs while the job runs, and the state reaches done.
    seen: set[str] = set()
    deadline = time.monotonic() + RETRAIN_TIMEOUT_S
    state = ""
    while time.monotonic() < deadline:
        state = page.locator("[data-testid=job-state]").inner_text()
        seen.add(page.locator("[data-testid=job-progress]").inner_text())
        if state in ("succeeded", "failed", "cancelled"):
            break
        page.wait_for_timeout(250)
    job = e2e_server.ok("GET", f"/api/jobs/{job_id}")
    logger.info(
        "retrain job %s ended %s after %.1f s (created %s, started %s, finished %s)\n%s",
        job_id,
        state,
        time.monotonic() - queued_at,
        job["created_at"],
        job["started_at"],
        job["finished_at"],
        job["log_tail"][-3000:],
    )
    assert state == "succeeded", f"job ended {state!r}: {job['error']}\n{job['log_tail'][-2000:]}"
    assert page.locator("[data-testid=job-progress]").inner_text() == "100%"
    assert len(seen - {"0%", "100%"}) >= 1, f"no intermediate progress was shown: {sorted(seen)}"
    # Loss and learning-rate curves of both runs (McGIP and its no-gaze baseline), one point per step.
    steps = config["train"]["steps"]
    assert _chart_points(page, "chart-loss") == {"mcgip": steps, "baseline": steps}
    assert _chart_points(page, "chart-lr") == {"mcgip": steps, "baseline": steps}

    # The new version is listed with its metrics next to the baseline, then promoted.
    model_id = job["result"]["model_version_id"]
    row = page.locator(f"#models-table tr[data-model-id='{model_id}']")
    row.wait_for()
    assert "knn.accuracy" in row.inner_text()
    page.click(f"[data-testid=promote-{model_id}]")
    page.locator(f"[data-testid=active-{model_id}]").wait_for()
    model = e2e_server.ok("GET", f"/api/models/{model_id}")
    assert model["is_active"] is True

    # Download the ONNX export through the page's link and check it against the registry's checksum.
    with page.expect_download() as download_info:
        page.click(f"[data-testid=export-onnx-{model_id}]")
    target = tmp_path / "encoder.onnx"
    download_info.value.save_as(target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == model["checksums"]["encoder.onnx"]

    # Run it: input shape from the model card, checked against the ONNX graph itself.
    card = e2e_server.ok("GET", f"/api/models/{model_id}/card")
    size = int(card["input"]["size"])
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    graph_input = session.get_inputs()[0]
    assert list(graph_input.shape[1:]) == [1, size, size]
    batch = np.random.default_rng(0).random((3, 1, size, size), dtype=np.float32)
    (features,) = session.run(["embedding"], {graph_input.name: batch})
    assert features.ndim == 2 and features.shape[0] == 3 and features.shape[1] > 0
    assert np.isfinite(features).all()
    # Different images give different embeddings (the encoder is not a constant).
    assert not np.allclose(features[0], features[1])

    # The model card renders on the dashboard, "not for clinical use" first; predictions follow the
    # head: calibrated probabilities when the demo's labels sufficed, else 409 naming what is missing.
    page.click(f"[data-testid=card-{model_id}]")
    page.locator("[data-testid=card-clinical]").wait_for()
    assert page.locator("[data-testid=card-clinical]").inner_text() == "NOT FOR CLINICAL USE"
    assert "Intended use" in page.locator("[data-testid=model-card]").inner_text()
    case_id = e2e_server.ok("GET", f"/api/cases?dataset_id={demo}")["items"][0]["id"]
    r = e2e_server.api("POST", "/api/models/active/predict", "admin", json={"case_id": case_id})
    if card["diagnosis"]["available"]:
        assert r.status_code == 200, r.text
        assert (
            abs(sum(r.json()["probabilities"].values()) - 1) < 1e-5 and r.json()["model_version"] == model_id
        )
        assert "temperature-scaled" in page.locator("[data-testid=card-calibration]").inner_text()
        ((_, probs),) = [session.run(["embedding", "probabilities"], {graph_input.name: batch})]
        assert np.allclose(probs.sum(1), 1, atol=1e-5)
    else:
        assert r.status_code == 409 and "no diagnosis head" in r.json()["detail"], r.text


def test_dashboard_pure_helpers_in_the_browser(e2e_server: E2EServer, browser: Any) -> None:
    """format.js: 422 details grouped by form field, curve series per run, metric comparison rows."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{e2e_server.base_url}/login")
        out = page.evaluate(
            """async () => {
                const F = await import('/static/js/dashboard/format.js');
                const fields = ['epochs', 'advanced', 'threshold'];
                const grouped = F.fieldErrors([
                    {loc: ['body', 'epochs'], msg: 'too small'},
                    {loc: ['body', 'advanced', 'train', 'batch_size'], msg: 'at least 2'},
                    {loc: ['body', 'dataset_id'], msg: 'missing'},
                ], fields);
                const plain = F.fieldErrors('a retrain is already running (job 4)', fields);
                const series = F.historySeries({baseline: [[1, 2.0, 0.1], [2, 1.5, 0.05]],
                                                mcgip: [[1, 3.0, 0.1]]});
                const rows = F.metricRows(
                    {side_by_side: {'knn.accuracy': {mcgip: 0.8, baseline: 0.7},
                                    'linear.accuracy': {mcgip: 0.9, baseline: 0.95, previous: 0.85}}},
                    {side_by_side: {'knn.accuracy': {mcgip: 0.75, baseline: 0.6}}});
                const none = F.metricRows({}, null);
                return {grouped, plain, series, rows, none, pct: F.fmtPercent(0.456),
                        labels: F.binLabels([0, 0.5, 1], 1)};
            }"""
        )
    finally:
        context.close()
    assert out["grouped"] == {
        "fields": {"epochs": ["too small"], "advanced": ["train.batch_size: at least 2"]},
        "other": ["dataset_id: missing"],
    }
    assert out["plain"] == {"fields": {}, "other": ["a retrain is already running (job 4)"]}
    assert [s["run"] for s in out["series"]] == ["mcgip", "baseline"]
    assert out["series"][1]["points"] == {
        "loss": [{"x": 1, "y": 2.0}, {"x": 2, "y": 1.5}],
        "lr": [{"x": 1, "y": 0.1}, {"x": 2, "y": 0.05}],
    }
    assert out["rows"] == [
        {"name": "knn.accuracy", "value": 0.8, "baseline": 0.7, "previous": 0.75},
        {"name": "linear.accuracy", "value": 0.9, "baseline": 0.95, "previous": 0.85},
    ]
    assert out["none"] == [] and out["pct"] == "46%" and out["labels"] == ["0.0–0.5", "0.5–1.0"]


def test_evidence_verdicts_and_forest_plot_in_the_browser(e2e_server: E2EServer, browser: Any) -> None:
    """evidence.js on real protocol reports: CIs, differences, verdict wording, one forest bar per metric."""
    from tests.server.jobs.models_support import sample_evaluation
    from trainer.protocol import evaluate_conditions

    better = sample_evaluation()
    rng = np.random.default_rng(3)
    unsure = evaluate_conditions(  # two encoders at chance (this seed: the difference's CI straddles 0)
        {"mcgip": rng.normal(size=(40, 3)), "baseline": rng.normal(size=(40, 3))},
        ["a" if i % 2 else "b" for i in range(40)],
        [f"k{i}" for i in range(40)],
    )
    short = evaluate_conditions({}, ["a"] * 8 + ["b"] * 2, [f"k{i}" for i in range(10)])
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{e2e_server.base_url}/login")
        out = page.evaluate(
            """async ([better, unsure, short]) => {
                const E = await import('/static/js/dashboard/evidence.js');
                const cell = E.evidenceCell({id: 7, metrics: {evaluation: better}});
                document.body.append(cell);
                return {
                    rows: E.evidenceRows(better),
                    better: E.verdictOf(better), unsure: E.verdictOf(unsure), short: E.verdictOf(short),
                    none: E.verdictOf(null),
                    bars: [...cell.querySelectorAll('svg.forest line[data-metric]')].map(
                        (l) => [l.dataset.metric, l.getAttribute('stroke')]),
                    verdictText: cell.querySelector('[data-testid="verdict-7"]').textContent,
                };
            }""",
            [better, unsure, short],
        )
    finally:
        context.close()
    first = out["rows"][0]
    assert first["name"] == "knn.balanced_accuracy"
    assert first["diff"]["low"] == better["differences"]["mcgip"]["knn.balanced_accuracy"]["ci_low"]
    assert first["value"]["value"] == better["conditions"]["mcgip"]["knn.balanced_accuracy"]["value"]
    assert out["better"]["verdict"] == "better" and out["verdictText"].startswith("better")
    assert out["unsure"]["verdict"] == "cannot tell"
    assert out["unsure"]["text"].startswith("cannot tell yet — ")
    assert "more labelled cases would narrow it to ±" in out["unsure"]["text"]
    assert out["short"]["text"] == (
        "cannot tell — class 'b' has 2 labelled cases; 5-fold cross-validation needs at least 5 per "
        "class (3 more)"
    )
    assert out["none"]["verdict"] == "not evaluated"
    assert len(out["bars"]) == len(out["rows"])
    assert dict(out["bars"])["knn.balanced_accuracy"] == "#276749"
