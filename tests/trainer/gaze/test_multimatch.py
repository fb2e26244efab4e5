"""MultiMatch agrees with the reference ``multimatch-gaze`` and behaves as documented."""

from __future__ import annotations

import itertools
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from trainer.gaze.multimatch import (
    SimplificationError,
    combined_score,
    multimatch,
    multimatch_indexed,
    multimatch_many,
    prepare_scanpath,
    stack_scanpaths,
)

mm_ref = pytest.importorskip("multimatch_gaze")

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "studyforrest-fixvectors"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/studyforrest-fixvectors")
SCREEN = (1280.0, 720.0)
GROUPINGS = [
    {},
    {"grouping": True, "tdir": 45.0, "tdur": 0.05, "tamp": 150.0},
    {"grouping": True, "tdir": 30.0, "tdur": 0.1, "tamp": 100.0},
]


def _load() -> dict[tuple[int, str], np.ndarray]:
    if not DATA.is_dir():
        pytest.skip(f"studyforrest scanpaths not found at {DATA}")
    out = {}
    for f in sorted(DATA.glob("segment_*_sub-*.tsv")):
        _, seg, sub = f.stem.split("_")
        out[(int(seg), sub)] = np.loadtxt(f, skiprows=1, ndmin=2)
    return out


@pytest.fixture(scope="module")
def studyforrest() -> dict[tuple[int, str], np.ndarray]:
    return _load()


def _reference(a: np.ndarray, b: np.ndarray, kw: dict) -> np.ndarray | None:
    """The reference's result, or None where it raises."""
    dtype = [("start_x", "f8"), ("start_y", "f8"), ("duration", "f8")]
    rec = lambda f: np.rec.fromarrays(list(f.T), dtype=dtype)  # noqa: E731
    ref_kw = {
        "grouping": kw.get("grouping", False),
        "TDir": kw.get("tdir", 0.0),
        "TDur": kw.get("tdur", 0.0),
        "TAmp": kw.get("tamp", 0.0),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.asarray(mm_ref.docomparison(rec(a), rec(b), screensize=list(SCREEN), **ref_kw), float)
        except (IndexError, ValueError):
            return None


def _pairs(data: dict) -> list[tuple[tuple[int, str], tuple[int, str]]]:
    segs = sorted({k[0] for k in data})
    same = [((s, "sub-01"), (s, "sub-19")) for s in segs]
    rng = random.Random(5)
    diff = [p for p in itertools.combinations(sorted(data), 2) if p[0][0] != p[1][0]]
    return same + rng.sample(diff, 120)


@pytest.mark.parametrize("kw", GROUPINGS, ids=["plain", "group45", "group30"])
def test_agrees_with_reference_on_studyforrest(studyforrest: dict, kw: dict) -> None:
    pairs = _pairs(studyforrest)
    prepared = {k: prepare_scanpath(v, **kw) for k, v in studyforrest.items()}
    ours = multimatch_many([prepared[p] for p, _ in pairs], [prepared[q] for _, q in pairs], SCREEN)
    raised = 0
    for row, (p, q) in enumerate(pairs):
        ref = _reference(studyforrest[p], studyforrest[q], kw)
        if ref is None:
            raised += 1
            # Where the reference raises, strict mode raises too, and the default gives numbers.
            with pytest.raises(SimplificationError):
                multimatch(studyforrest[p], studyforrest[q], SCREEN, strict=True, **kw)
            assert np.isfinite(ours[row]).all() and (ours[row] >= 0).all() and (ours[row] <= 1).all()
            continue
        np.testing.assert_allclose(ours[row], ref, atol=1e-6, rtol=0, err_msg=f"{p} vs {q}")
        np.testing.assert_allclose(
            multimatch(studyforrest[p], studyforrest[q], SCREEN, **kw), ours[row], atol=1e-12, rtol=0
        )
    if kw.get("tdir") == 45.0:
        # The reference is known to raise on some real scanpaths with these thresholds.
        assert raised > 0


def test_same_segment_scores_higher_than_different(studyforrest: dict) -> None:
    segs = sorted({k[0] for k in studyforrest})
    keys = sorted(studyforrest)
    prepared = {k: prepare_scanpath(studyforrest[k]) for k in keys}
    same = [((s, "sub-01"), (s, "sub-19")) for s in segs]
    diff = [((s, "sub-01"), (t, "sub-19")) for s in segs for t in segs if s != t]

    def score(pairs: list[tuple[tuple[str, str], tuple[str, str]]]) -> np.ndarray:
        left = [prepared[p] for p, _ in pairs]
        right = [prepared[q] for _, q in pairs]
        return np.asarray(combined_score(multimatch_many(left, right, SCREEN)))

    s_same, s_diff = score(same), score(diff)
    assert s_same.mean() > s_diff.mean()
    # Position carries most of the signal on this data: check it measure by measure as well.
    pos = lambda pairs: multimatch_many(  # noqa: E731
        [prepared[p] for p, _ in pairs], [prepared[q] for _, q in pairs], SCREEN
    )[:, 3]
    assert pos(same).mean() > pos(diff).mean()


def test_indexed_equals_many(studyforrest: dict) -> None:
    keys = sorted(studyforrest)[:30]
    paths = [prepare_scanpath(studyforrest[k]) for k in keys]
    stack = stack_scanpaths([p for p in paths if p is not None])
    ia, ib = np.triu_indices(len(keys), 1)
    got = multimatch_indexed(stack, ia, stack, ib, SCREEN)
    want = multimatch_many([paths[i] for i in ia], [paths[j] for j in ib], SCREEN)
    np.testing.assert_array_equal(got, want)


def test_short_scanpaths_give_nan_like_the_reference() -> None:
    a = np.array([[10.0, 10.0, 0.2], [50.0, 60.0, 0.3]])
    b = np.array([[10.0, 10.0, 0.2], [50.0, 60.0, 0.3], [90.0, 20.0, 0.1]])
    assert np.isnan(multimatch(a, b, SCREEN)).all()
    assert combined_score(multimatch(a, b, SCREEN)) == 0.0
    with pytest.raises(ValueError, match="shape"):
        multimatch(np.zeros((4, 2)), b, SCREEN)


def test_combined_score_weights() -> None:
    m = np.array([[1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 0.5, 0.5, 0.5, 1.0], [np.nan] * 5])
    s = combined_score(m, weights=(1, 0, 0, 0, 1))
    np.testing.assert_allclose(s, [1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="weights"):
        combined_score(m, weights=(1, 1))


# Small integer coordinates make exactly equal alignment costs common: tie-breaking must follow
# the reference's graph search there too.
_coord = st.integers(0, 6).map(lambda v: 100.0 * v)
_fix = st.tuples(_coord, _coord, st.sampled_from([0.03, 0.1, 0.25]))
_path = st.lists(_fix, min_size=3, max_size=9).map(lambda f: np.array(f, dtype=np.float64))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=_path, b=_path, group=st.booleans())
def test_property_agreement_including_ties(a: np.ndarray, b: np.ndarray, group: bool) -> None:
    kw: dict[str, Any] = {"grouping": True, "tdir": 45.0, "tdur": 0.2, "tamp": 250.0} if group else {}
    ref = _reference(a, b, kw)
    got = multimatch(a, b, SCREEN, **kw)
    if ref is None:
        with pytest.raises(SimplificationError):
            multimatch(a, b, SCREEN, strict=True, **kw)
    else:
        np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)
    assert ((got >= 0) & (got <= 1)).all()


_real = st.floats(0.0, 1.0, allow_nan=False).map(lambda v: float(np.float32(v)))
_rfix = st.tuples(_real.map(lambda v: v * 1280), _real.map(lambda v: v * 720), _real.map(lambda v: 0.05 + v))
_rpath = st.lists(_rfix, min_size=3, max_size=12).map(lambda f: np.array(f, dtype=np.float64))


def _distinct_saccades(p: np.ndarray) -> bool:
    d = np.diff(p[:, :2], axis=0)
    return len({tuple(v) for v in d.tolist()}) == d.shape[0] and bool((np.abs(d).sum(axis=1) > 0).all())


@settings(max_examples=100, deadline=None)
@given(a=_rpath, b=_rpath)
def test_property_identity_symmetry_range(a: np.ndarray, b: np.ndarray) -> None:
    assume(_distinct_saccades(a) and _distinct_saccades(b))
    np.testing.assert_allclose(multimatch(a, a, SCREEN), np.ones(5), atol=1e-12)
    ab, ba = multimatch(a, b, SCREEN), multimatch(b, a, SCREEN)
    assert ((ab >= 0) & (ab <= 1)).all()
    # Symmetric wherever the cheapest alignment is unique (always for generic real coordinates).
    np.testing.assert_allclose(ab, ba, atol=1e-12)
    assert combined_score(ab) == pytest.approx(combined_score(ba), abs=1e-12)


def test_batch_with_mixed_lengths_matches_single_calls() -> None:
    rng = np.random.default_rng(3)
    paths = [
        np.column_stack((rng.uniform(0, 1280, n), rng.uniform(0, 720, n), rng.uniform(0.05, 0.5, n)))
        for n in rng.integers(1, 40, 40)
    ]
    prepared = [prepare_scanpath(p) for p in paths]
    ia, ib = rng.integers(0, 40, 200), rng.integers(0, 40, 200)
    batch = multimatch_many([prepared[i] for i in ia], [prepared[j] for j in ib], SCREEN)
    for r in range(0, 200, 7):
        np.testing.assert_array_equal(batch[r], multimatch(paths[ia[r]], paths[ib[r]], SCREEN))
