"""Snapshot manifest: round trip, hash split, validation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trainer.data.snapshot import SnapshotError, assign_split, load_snapshot, make_snapshot, save_snapshot


def test_split_is_stable_and_about_the_fraction() -> None:
    ids = [f"case-{i}" for i in range(2000)]
    splits = [assign_split(i, seed=3, test_fraction=0.2) for i in ids]
    assert splits == [assign_split(i, seed=3, test_fraction=0.2) for i in ids]
    assert 0.17 < splits.count("test") / len(ids) < 0.23
    assert splits != [assign_split(i, seed=4, test_fraction=0.2) for i in ids]
    assert assign_split("x", test_fraction=0.0) == "train" and assign_split("x", test_fraction=1.0) == "test"


def test_round_trip(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    snap = make_snapshot(
        [("a", tmp_path / "img" / "a.png", "normal"), ("b", tmp_path / "img" / "b.png", None)],
        [("a", "b", 0.93)],
        metadata={"counts": {"sessions": 4, "readers": 2}, "gaze": {"metric": "moments", "threshold": 0.9}},
    )
    path = save_snapshot(snap, tmp_path / "snap.json")
    raw = json.loads(path.read_text())
    assert raw["cases"][0]["image"] == "img/a.png"  # relative to the manifest
    back = load_snapshot(path)
    assert back.cases == snap.cases and back.pairs == snap.pairs and back.classes == ("normal",)
    assert back.counts == {"sessions": 4, "readers": 2, "cases": 2, "positives": 1, "labelled": 1}
    assert back.gaze == {"metric": "moments", "threshold": 0.9}


def test_missing_split_is_computed(tmp_path: Path) -> None:
    raw = {"format": "mcgip-snapshot", "version": 1, "cases": [{"id": "z", "image": "z.png", "label": None}]}
    (tmp_path / "s.json").write_text(json.dumps(raw))
    assert load_snapshot(tmp_path / "s.json").cases[0].split == assign_split("z")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["cases"].append(dict(r["cases"][0])), "duplicate case ids"),
        (lambda r: r["pairs"].append(["a", "nope", 0.9]), "not in the snapshot"),
        (lambda r: r["cases"][0].update(split="val"), "split must be"),
        (lambda r: r["cases"][0].update(label="cancer"), "not in classes"),
        (lambda r: r.update(version=9), "unsupported version"),
        (lambda r: r["pairs"].append(["a", "b"]), "pairs\\[1\\]"),
    ],
)
def test_validation_errors(tmp_path: Path, mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    raw = {
        "format": "mcgip-snapshot",
        "version": 1,
        "classes": ["normal"],
        "cases": [
            {"id": "a", "image": "a.png", "label": "normal", "split": "train"},
            {"id": "b", "image": "b.png", "label": None, "split": "test"},
        ],
        "pairs": [["a", "b", 0.95]],
    }
    mutate(raw)
    (tmp_path / "s.json").write_text(json.dumps(raw))
    with pytest.raises(SnapshotError, match=message):
        load_snapshot(tmp_path / "s.json")


def test_invert_flag_round_trips_and_defaults_to_false(tmp_path: Path) -> None:
    snap = make_snapshot([("a", tmp_path / "a.png", None, True), ("b", tmp_path / "b.png", None)], [])
    back = load_snapshot(save_snapshot(snap, tmp_path / "snap.json"))
    assert [c.invert for c in back.cases] == [True, False]
    raw = json.loads((tmp_path / "snap.json").read_text())
    del raw["cases"][0]["invert"]
    raw["cases"][1]["invert"] = "yes"
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    with pytest.raises(SnapshotError, match="invert"):
        load_snapshot(tmp_path / "bad.json")
