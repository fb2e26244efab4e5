"""Smoke run of ``mcgip bench mcgip-vs-baseline`` at toy size: every row is trained and reported.

The figures of a real run are in bench/README.md; this checks the plumbing (demo data, simulated
readers, pair mining, four encoders per seed, the report and its JSON) on 60 cases and a few steps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from bench import mcgip_vs_baseline as bench
from trainer.config import TrainConfig
from trainer.data.snapshot import load_snapshot
from trainer.export import load_encoder
from trainer.pipeline import initial_method, prepare_data, save_untrained_encoder

pytestmark = pytest.mark.slow


def test_toy_run_reports_every_row_and_the_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures.json"
    argv = ["--cases", "60", "--seeds", "1", "--steps", "25", "--workdir", str(tmp_path), "--json", str(out)]
    assert bench.main(argv) == 0
    report = capsys.readouterr().out
    figures = json.loads(out.read_text())

    # The simulated readers look at the findings, so their gaze pairs mostly join same-label cases.
    assert figures["data"]["pairs"] > 0 and figures["data"]["same_label"] > 0.8
    held_out = figures["data"]["test_cases"]
    assert 0 < held_out < 60 and f"{held_out} held out" in report
    for row in bench.ROWS:
        (acc,) = figures["results"][row]["acc"]
        (auc,) = figures["results"][row]["auc"]
        assert 0.0 <= acc <= 1.0 and 0.0 <= auc <= 1.0, row
        assert f"seed 0 {row:<9} kNN acc {100 * acc:5.1f}" in report
    gain = 100 * (figures["results"]["mcgip"]["acc"][0] - figures["results"]["baseline"]["acc"][0])
    assert math.isclose(figures["gain_pt"], gain)
    assert "target McGIP >= baseline + 5 pt:" in report
    assert "target shuffled within +-2 pt of baseline:" in report
    # Each trained variant wrote its encoder; the untrained one is the shared starting point.
    for variant in bench.VARIANTS:
        assert list((tmp_path / "runs" / f"{variant}-0").rglob("encoder.pt")), variant


def test_untrained_encoder_is_the_seeded_starting_point(tmp_path: Path) -> None:
    manifest, _ = bench.build_demo_snapshot(
        tmp_path / "data", cases=12, seed=0, gen_size=64, store_size=64, top_k=2, threshold=0.9
    )
    config = TrainConfig.from_file(bench.CONFIGS / "cpu_synthetic.json")
    prepared = prepare_data(config, load_snapshot(manifest))

    def weights(seed: int, name: str) -> dict[str, torch.Tensor]:
        cfg = bench.variant_config(config, "baseline", seed)
        encoder, info = load_encoder(save_untrained_encoder(cfg, prepared, tmp_path / name / "encoder.pt"))
        assert info["steps"] == 0 and info["run"] == "untrained"
        return encoder.state_dict()

    first, again, other = weights(0, "a"), weights(0, "b"), weights(1, "c")
    assert first.keys() == other.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["conv1.weight"], other["conv1.weight"])
    # McGIP and the shuffled control of the same seed start from these weights too: building their
    # gaze positives draws nothing from the seeded generator.
    for variant in ("mcgip", "shuffled"):
        cfg = bench.variant_config(config, variant, 0)
        assert cfg.gaze.enabled and prepared.edges.shape[0] > 0
        start = initial_method(cfg, prepared, torch.device("cpu")).encoder.state_dict()
        assert all(torch.equal(first[k], start[k]) for k in first), variant
