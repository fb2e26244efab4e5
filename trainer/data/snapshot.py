"""Data snapshot: the frozen view of cases, labels and the gaze pair graph a training job reads.

Pure Python (no torch, no numpy) so the worker can write snapshots without importing torch.
Format (documented in docs/trainer.md)::

    {"format": "mcgip-snapshot", "version": 1,
     "split": {"seed": 0, "test_fraction": 0.2},
     "classes": ["normal", ...],
     "cases": [{"id": "c1", "image": "images/c1.png", "label": "normal" | null, "split": "train" | "test",
                "invert": false, "group": "patient-17"}],   # invert and group (patient key) optional
     "pairs": [["c1", "c2", 0.93], ...],
     "metadata": {"counts": {"cases": n, "sessions": n, "readers": n, "positives": n},
                  "gaze": {"metric": "moments", "threshold": 0.9}, ...}}

Image paths are relative to the manifest's folder unless absolute.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "mcgip-snapshot"
VERSION = 1
SPLITS = ("train", "test")


class SnapshotError(ValueError):
    """A manifest that is malformed or inconsistent."""


def assign_split(case_id: str, *, seed: int = 0, test_fraction: float = 0.2) -> str:
    """Fixed train/test split from a seeded hash of the case id.

    Stable across runs, machines and snapshot growth: a case never changes side when others are added.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise SnapshotError(f"test_fraction must be in [0, 1] (got {test_fraction})")
    digest = hashlib.sha256(f"{seed}:{case_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if u < test_fraction else "train"


@dataclass(frozen=True)
class SnapshotCase:
    """One case: id, image file, resolved label (None if unlabelled), split, display inversion, patient.

    ``invert``: the image is shown inverted (DICOM MONOCHROME1); optional in manifests, default false.
    ``group``: patient key (if known); keeps all images of one patient in one cross-validation fold.
    """

    id: str
    image: Path
    label: str | None
    split: str
    invert: bool = False
    group: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Cases, classes and the gaze pair graph ``(case_id_a, case_id_b, score)``."""

    cases: tuple[SnapshotCase, ...]
    pairs: tuple[tuple[str, str, float], ...]
    classes: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    split_seed: int = 0
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        ids = [c.id for c in self.cases]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise SnapshotError(f"duplicate case ids: {dup}")
        known = set(ids)
        for case in self.cases:
            if case.split not in SPLITS:
                raise SnapshotError(f"case {case.id!r}: split must be train or test (got {case.split!r})")
            if case.label is not None and case.label not in self.classes:
                raise SnapshotError(
                    f"case {case.id!r}: label {case.label!r} not in classes {list(self.classes)}"
                )
        for a, b, score in self.pairs:
            if a not in known or b not in known:
                raise SnapshotError(f"pair ({a!r}, {b!r}) names a case that is not in the snapshot")
            if not math.isfinite(score):
                raise SnapshotError(f"pair ({a!r}, {b!r}) has non-finite score {score!r}")

    @property
    def counts(self) -> dict[str, int]:
        """Counts for the model card: metadata counts, with cases/positives/labelled taken from the data."""
        counts = {k: int(v) for k, v in dict(self.metadata.get("counts", {})).items()}
        counts["cases"] = len(self.cases)
        counts["positives"] = len(self.pairs)
        counts["labelled"] = sum(c.label is not None for c in self.cases)
        counts.setdefault("sessions", 0)
        counts.setdefault("readers", 0)
        return counts

    @property
    def gaze(self) -> dict[str, Any]:
        """Gaze metric and threshold the pair graph was mined with."""
        return dict(self.metadata.get("gaze", {}))

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        """JSON-ready manifest; image paths are written relative to ``root`` when under it."""

        def rel(p: Path) -> str:
            if root is not None:
                try:
                    return p.resolve().relative_to(root.resolve()).as_posix()
                except ValueError:
                    pass
            return str(p)

        return {
            "format": FORMAT,
            "version": VERSION,
            "split": {"seed": self.split_seed, "test_fraction": self.test_fraction},
            "classes": list(self.classes),
            "cases": [
                {"id": c.id, "image": rel(c.image), "label": c.label, "split": c.split, "invert": c.invert}
                | ({"group": c.group} if c.group is not None else {})
                for c in self.cases
            ],
            "pairs": [[a, b, float(s)] for a, b, s in self.pairs],
            "metadata": self.metadata,
        }


def make_snapshot(
    cases: Iterable[tuple[str, str | Path, str | None] | tuple[str, str | Path, str | None, bool]],
    pairs: Iterable[tuple[str, str, float]],
    *,
    classes: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    split_seed: int = 0,
    test_fraction: float = 0.2,
    groups: dict[str, str] | None = None,
) -> Snapshot:
    """Build a snapshot from ``(case_id, image_path, label[, invert])`` tuples, assigning splits by hash.

    ``groups`` maps case ids to patient keys where known.
    """
    items = [(str(c[0]), Path(c[1]), c[2], bool(c[3]) if len(c) > 3 else False) for c in cases]
    if classes is None:
        classes = sorted({label for _, _, label, _ in items if label is not None})
    group_of = groups or {}
    built = tuple(
        SnapshotCase(
            cid,
            img,
            label,
            assign_split(cid, seed=split_seed, test_fraction=test_fraction),
            invert,
            group_of.get(cid),
        )
        for cid, img, label, invert in items
    )
    return Snapshot(
        cases=built,
        pairs=tuple((str(a), str(b), float(s)) for a, b, s in pairs),
        classes=tuple(classes),
        metadata=dict(metadata or {}),
        split_seed=split_seed,
        test_fraction=test_fraction,
    )


def save_snapshot(snapshot: Snapshot, path: str | Path) -> Path:
    """Write the manifest as JSON (image paths relative to its folder where possible)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(snapshot.to_dict(root=path.parent), indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def load_snapshot(path: str | Path) -> Snapshot:
    """Read and validate a manifest. Cases without ``split`` get the hash split of the manifest's seed."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise SnapshotError(f"{path}: not an {FORMAT} manifest")
    if raw.get("version") != VERSION:
        raise SnapshotError(f"{path}: unsupported version {raw.get('version')!r} (expected {VERSION})")
    split = raw.get("split", {})
    seed = int(split.get("seed", 0))
    fraction = float(split.get("test_fraction", 0.2))
    cases = []
    for i, c in enumerate(raw.get("cases", [])):
        try:
            cid, img = str(c["id"]), Path(c["image"])
        except (KeyError, TypeError):
            raise SnapshotError(f"{path}: cases[{i}] needs 'id' and 'image'") from None
        image = img if img.is_absolute() else path.parent / img
        label = c.get("label")
        side = c.get("split") or assign_split(cid, seed=seed, test_fraction=fraction)
        invert = c.get("invert", False)
        if not isinstance(invert, bool):
            raise SnapshotError(f"{path}: cases[{i}].invert must be true or false")
        group = c.get("group")
        cases.append(
            SnapshotCase(
                cid,
                image,
                None if label is None else str(label),
                side,
                invert,
                None if group is None else str(group),
            )
        )
    pairs = []
    for i, p in enumerate(raw.get("pairs", [])):
        if not isinstance(p, list | tuple) or len(p) != 3:
            raise SnapshotError(f"{path}: pairs[{i}] must be [case_id_a, case_id_b, score]")
        pairs.append((str(p[0]), str(p[1]), float(p[2])))
    classes = raw.get("classes")
    if classes is None:
        classes = sorted({c.label for c in cases if c.label is not None})
    return Snapshot(
        cases=tuple(cases),
        pairs=tuple(pairs),
        classes=tuple(str(c) for c in classes),
        metadata=dict(raw.get("metadata", {})),
        split_seed=seed,
        test_fraction=fraction,
    )
