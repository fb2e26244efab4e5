"""Per-session features, computed once when a session finishes and stored with it.

Everything a similarity metric needs is precomputed here, so that comparing two sessions never
touches raw samples: the 32x32 heatmap and its moments, its dHash, TIMA cluster features, the
MultiMatch scanpath and a cheap scanpath descriptor used to prefilter MultiMatch candidates.
Features serialise to a plain dict (JSON-friendly) or to compact bytes (``.npz``, no pickle) for a
database column.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trainer.arrays import FloatArray
from trainer.gaze.dhash import dhash_batch
from trainer.gaze.heatmap import gaussian_heatmap
from trainer.gaze.moments import moment_features_batch
from trainer.gaze.tima import tima_clusters

#: MultiMatch compares scanpaths of different images in this common frame (image coordinates are
#: scaled to it), so screen normalisation is the same for every pair.
MULTIMATCH_FRAME: tuple[float, float] = (1000.0, 1000.0)
FEATURES_VERSION = 1


@dataclass(frozen=True)
class FeatureConfig:
    """How session features are computed (store it with the features; changing it means recompute).

    Attributes:
        grid: heatmap (rows, cols) for moments, dHash and correlation.
        sigma_px: heatmap kernel sigma in image pixels (None: 1 degree if ``pixels_per_degree``
            is known, else a fixed fraction of the image).
        pixels_per_degree: image pixels per degree of visual angle, if known.
        tima_eps, tima_min_samples: DBSCAN parameters of TIMA.
    """

    grid: tuple[int, int] = (32, 32)
    sigma_px: float | None = None
    pixels_per_degree: float | None = None
    tima_eps: float = 0.15
    tima_min_samples: int = 2


@dataclass
class SessionFeatures:
    """Precomputed features of one reading session.

    Attributes:
        session_id, case_id, reader_id: identifiers (ints or strings).
        image_size: (width, height) of the case image in pixels.
        fixations: (n, 3) x, y (image px) and duration (s).
        heatmap: (rows, cols) max-normalised fixation heatmap.
        moments: (2,) M00 and I1 of ``heatmap``.
        dhash: (64,) bool dHash bits of ``heatmap``.
        tima: (c, 2) per-cluster (M00, I1) in time order.
        descriptor: (32,) non-negative scanpath summary for the MultiMatch prefilter.
    """

    session_id: Any
    case_id: Any
    reader_id: Any
    image_size: tuple[float, float]
    fixations: FloatArray
    heatmap: FloatArray
    moments: FloatArray
    dhash: NDArray[np.bool_]
    tima: FloatArray
    descriptor: FloatArray
    version: int = field(default=FEATURES_VERSION)

    def multimatch_fixations(self) -> FloatArray:
        """(n, 3) fixations in the :data:`MULTIMATCH_FRAME` (durations unchanged)."""
        w, h = self.image_size
        scale = np.array([MULTIMATCH_FRAME[0] / w, MULTIMATCH_FRAME[1] / h, 1.0])
        return self.fixations * scale

    _ARRAYS = ("fixations", "heatmap", "moments", "dhash", "tima", "descriptor")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (arrays as nested lists)."""
        d: dict[str, Any] = {
            "version": self.version,
            "session_id": self.session_id,
            "case_id": self.case_id,
            "reader_id": self.reader_id,
            "image_size": list(self.image_size),
        }
        for name in self._ARRAYS:
            d[name] = np.asarray(getattr(self, name)).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SessionFeatures:
        """Inverse of :meth:`to_dict`."""
        if d.get("version") != FEATURES_VERSION:
            raise ValueError(f"unsupported features version {d.get('version')!r}; recompute features")
        return cls(
            session_id=d["session_id"],
            case_id=d["case_id"],
            reader_id=d["reader_id"],
            image_size=(float(d["image_size"][0]), float(d["image_size"][1])),
            fixations=np.asarray(d["fixations"], dtype=np.float64).reshape(-1, 3),
            heatmap=np.asarray(d["heatmap"], dtype=np.float64),
            moments=np.asarray(d["moments"], dtype=np.float64),
            dhash=np.asarray(d["dhash"], dtype=bool),
            tima=np.asarray(d["tima"], dtype=np.float64).reshape(-1, 2),
            descriptor=np.asarray(d["descriptor"], dtype=np.float64),
        )

    def to_bytes(self) -> bytes:
        """Compact binary form (``numpy.savez_compressed``, no pickle)."""
        meta = {k: v for k, v in self.to_dict().items() if k not in self._ARRAYS}
        buf = io.BytesIO()
        arrays: dict[str, Any] = {name: np.asarray(getattr(self, name)) for name in self._ARRAYS}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionFeatures:
        """Inverse of :meth:`to_bytes`."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            d: dict[str, Any] = json.loads(bytes(z["meta"]).decode())
            for name in cls._ARRAYS:
                d[name] = z[name]
        return cls.from_dict(d)


def scanpath_descriptor(fixations: FloatArray, image_size: tuple[float, float]) -> FloatArray:
    """(32,) summary of where, how far and how long the reader looked (unit-norm blocks).

    4x4 duration-weighted position histogram (16), saccade-amplitude histogram (8 bins over the
    image diagonal), fixation-duration histogram (8 log bins, 50 ms - 3 s).  Cosine similarity of
    descriptors ranks MultiMatch candidates cheaply.
    """
    fix = np.asarray(fixations, dtype=np.float64).reshape(-1, 3)
    w, h = float(image_size[0]), float(image_size[1])
    out = np.zeros(32)
    if fix.shape[0] == 0:
        return out
    gx = np.clip((fix[:, 0] / w * 4).astype(np.int64), 0, 3)
    gy = np.clip((fix[:, 1] / h * 4).astype(np.int64), 0, 3)
    pos = np.bincount(gy * 4 + gx, weights=fix[:, 2], minlength=16)
    amp = np.hypot(np.diff(fix[:, 0]) / w, np.diff(fix[:, 1]) / h)
    amp_bin = np.clip((amp / np.sqrt(2) * 8).astype(np.int64), 0, 7)
    amp_h = np.bincount(amp_bin, minlength=8).astype(np.float64)
    logd = np.log(np.clip(fix[:, 2], 0.05, 3.0) / 0.05) / np.log(60.0)
    dur_bin = np.clip((logd * 8).astype(np.int64), 0, 7)
    dur_h = np.bincount(dur_bin, minlength=8).astype(np.float64)
    for block, sl in ((pos, slice(0, 16)), (amp_h, slice(16, 24)), (dur_h, slice(24, 32))):
        norm = np.linalg.norm(block)
        out[sl] = block / norm if norm > 0 else 0.0
    return out


def compute_session_features(
    session_id: Any,
    case_id: Any,
    reader_id: Any,
    fixations: ArrayLike,
    image_size: tuple[float, float],
    config: FeatureConfig | None = None,
) -> SessionFeatures:
    """Compute all features of one session from its fixations.

    Args:
        session_id, case_id, reader_id: identifiers stored with the features.
        fixations: (n, 3) x, y (image px) and duration (s), e.g.
            ``detect_fixations(samples).fixations.scanpath()``.
        image_size: (width, height) of the image in pixels.
        config: feature settings (default :class:`FeatureConfig`).

    Returns:
        The session's :class:`SessionFeatures`.
    """
    cfg = config or FeatureConfig()
    fix = np.asarray(fixations, dtype=np.float64).reshape(-1, 3)
    fix = fix[np.isfinite(fix).all(axis=1)]
    size = (float(image_size[0]), float(image_size[1]))
    hm = gaussian_heatmap(fix, size, cfg.grid, sigma_px=cfg.sigma_px, pixels_per_degree=cfg.pixels_per_degree)
    return SessionFeatures(
        session_id=session_id,
        case_id=case_id,
        reader_id=reader_id,
        image_size=size,
        fixations=fix,
        heatmap=hm,
        moments=moment_features_batch(hm[None])[0],
        dhash=dhash_batch(hm[None])[0],
        tima=tima_clusters(
            fix,
            size,
            eps=cfg.tima_eps,
            min_samples=cfg.tima_min_samples,
            grid=cfg.grid,
            sigma_px=cfg.sigma_px,
            pixels_per_degree=cfg.pixels_per_degree,
        ),
        descriptor=scanpath_descriptor(fix, size),
    )
