"""``mcgip bench science`` end to end at toy size: the protocol, not the outcome.

One tiny run (40 cases, 2 data seeds, 16 px encoder, 3 steps) checks that every condition starts
from the same weights and augmentation stream, is scored on the same folds, that the controls have
the McGIP pair count, that oracle pairs are all same-label, and that the JSON, figure and table are
written. The figures of a real run are in bench/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import science
from bench.science_data import (
    control_pairs,
    crop_edges,
    gaze_centres,
    pair_precision,
    tile_centres,
    write_crops,
)

# Ten tiny pre-trainings: about a minute on an idle 2-core box, far more on a loaded one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

TINY = [
    "--quick", "--cases", "40", "--data-seeds", "2", "--train-seeds", "1", "--gen-size", "64",
    "--store-size", "32", "--image-size", "16", "--steps", "3", "--batch-size", "8",
    "--resamples", "1000", "--no-sweeps",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("science")
    argv = [*TINY, "--workdir", str(out / "work"), "--json", str(out / "s.json"),
            "--figure", str(out / "s.png"), "--markdown", str(out / "s.md")]  # fmt: skip
    assert science.main(argv) == 0
    return json.loads((out / "s.json").read_text()), out


def test_outputs_follow_the_schema(run: tuple[dict, Path]) -> None:
    figures, out = run
    assert (out / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "s.md").read_text()
    assert "| mcgip |" in table and "| shuffled |" in table and "gaze noise (deg)" in table
    assert set(figures) >= {"protocol", "config", "setup", "records", "pooled", "targets", "timing"}
    pooled = figures["pooled"]
    assert set(pooled["default"]) == {"mcgip", "shuffled", "random", "oracle"}
    for point in pooled["default"].values():
        assert set(point) >= {"value", "ci_low", "ci_high", "n_data_seeds", "n_runs", "pair_precision"}
        assert point["n_data_seeds"] == 2
        # Two data seeds give a t interval around the pooled mean.
        assert point["ci_low"] <= point["value"] <= point["ci_high"]
    assert [r["level"] for r in pooled["sweeps"]["labelled"]] == science.QUICK_SWEEPS["labelled"]
    assert [r["level"] for r in pooled["sweeps"]["noise_deg"]] == [science.DEFAULT_POINT["noise_deg"]]
    assert {t["pass"] for t in figures["targets"].values()} <= {True, False}
    for rec in figures["records"]:
        assert rec["status"] == "ok", rec["problems"]
        for diff in rec["differences"].values():
            assert set(diff[science.PRIMARY]) == {"value", "ci_low", "ci_high", "p_value"}


def test_conditions_share_weights_augmentation_and_folds(run: tuple[dict, Path]) -> None:
    figures, _ = run
    default = [r for r in figures["records"] if r["finding"] == "realistic"]
    assert default
    for rec in default:
        runs = rec["runs"]
        assert set(science.CONDITIONS) <= set(runs)
        assert len({r["init_weights"] for r in runs.values()}) == 1
        assert len({r["augmentation"] for r in runs.values()}) == 1
        # Controls have exactly the McGIP pair count.
        assert (
            runs["shuffled"]["pairs"]
            == runs["random"]["pairs"]
            == runs["oracle"]["pairs"]
            == runs["mcgip"]["pairs"]
            > 0
        )
        assert runs["oracle"]["pair_precision"] == 1.0
        assert set(rec["conditions"]) == set(runs) or rec["labelled"] < 1.0
    # Same folds for every labelled fraction's cases: fold of a case never depends on the condition
    # (one protocol call scores all conditions) and the same content keys give the same folds.
    by_seed: dict[int, dict[str, int]] = {}
    for rec in default:
        folds = dict(zip(rec["folds"]["cases"], rec["folds"]["fold"], strict=True))
        seen = by_seed.setdefault(rec["data_seed"], folds)
        assert all(seen.get(k, f) == f for k, f in folds.items())


def test_control_pairs_match_the_mcgip_count_and_oracle_is_same_label() -> None:
    labels = ["a", "b", "c", "d"] * 10
    mcgip = np.array([(i, i + 4) for i in range(30)], dtype=np.int64)
    controls = control_pairs(mcgip, labels, seed=3)
    for name, pairs in controls.items():
        assert pairs.pairs.shape == mcgip.shape, name
        assert (pairs.pairs[:, 0] != pairs.pairs[:, 1]).all()
    assert pair_precision(controls["oracle"].pairs, labels) == 1.0
    assert len({tuple(sorted(p)) for p in controls["random"].pairs.tolist()}) == 30
    # Shuffling permutes case ids: the degree sequence of the graph is kept.
    assert sorted(np.bincount(controls["shuffled"].pairs.ravel(), minlength=40)) == sorted(
        np.bincount(mcgip.ravel(), minlength=40)
    )


def test_gaze_centres_follow_the_longest_distinct_fixations() -> None:
    # Reader a: a long fixation at (40, 40), a short one next to it, a middle one at (10, 60).
    noisy = {
        "a": [np.array([[40.0, 40.0, 0.9], [42.0, 41.0, 0.5], [10.0, 60.0, 0.7]])],
        "b": [np.array([[63.0, 2.0, 0.8]])],
    }
    centres = gaze_centres(noisy, k=3, side=16, gen_size=64)
    assert centres.shape == (1, 3, 2)
    # Longest first; the near-duplicate at (42, 41) is skipped; (63, 2) is clamped so a crop fits.
    assert centres[0].tolist() == [[40.0, 40.0], [56.0, 8.0], [10.0, 56.0]]
    # A case without fixations falls back to the image centre.
    empty = gaze_centres({"a": [np.zeros((0, 3))]}, k=2, side=16, gen_size=64)
    assert empty[0].tolist() == [[32.0, 32.0], [32.0, 32.0]]


def test_crops_tiles_and_crop_edges(tmp_path: Path) -> None:
    from trainer.synthetic.images import generate_dataset

    cases = generate_dataset(2, seed=0, size=64, classes=("normal", "round_mass"))
    tiles = tile_centres(64, 16)
    assert tiles.shape == (49, 2) and tiles.min() == 8 and tiles.max() == 56
    paths = write_crops(cases, [1], tiles[None, :2], 16, tmp_path)
    assert len(paths) == 2
    crop = np.asarray(Image.open(paths[1]))
    x0, y0 = int(tiles[1, 0] - 8), int(tiles[1, 1] - 8)
    assert crop.shape == (16, 16)
    assert (crop == cases[1].image[y0 : y0 + 16, x0 : x0 + 16].astype(np.uint16)).all()
    # Two cases, k = 2 crops: each case's crops pair up, a case pair joins crop j with crop j.
    edges = crop_edges(np.array([[0, 1]]), n=2, k=2)
    assert sorted(map(tuple, edges.tolist())) == [(0, 1), (0, 2), (1, 3), (2, 3)]
