"""Synthetic mammogram-like radiographs with class-specific findings and their ground truth.

Each case is a 12-bit grayscale image of a breast in a mediolateral-oblique-like view: dark air around
a half-elliptic breast outline, fatty tissue that thins towards the skin line, fibroglandular tissue
with the 1/f^3 power spectrum typical of mammographic texture, fibrous strands converging on the
nipple, often a pectoral muscle in the upper chest-wall corner, an exposure gradient, detector blur,
and signal-dependent quantum noise plus film grain.  One finding is added for every class but
``"normal"``:

* ``round_mass``: a smooth-edged, slightly elliptic bright blob;
* ``spiculated_mass``: a small blob with an irregular margin and thin radiating spicules;
* ``calcifications``: a cluster of tiny bright dots.

Size, position and contrast of findings vary per case so that some findings are conspicuous and
some hide in dense tissue.  The anatomy and the noise depend only on the case seed, so the same seed
with two labels gives the same breast with different findings.  Everything is numpy/scipy only and
deterministic given the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.special import expit

CLASSES: tuple[str, ...] = ("normal", "round_mass", "spiculated_mass", "calcifications")

#: Largest 12-bit value.
MAX_VALUE = 4095

# Sizes below are given for a 256 px image and scaled with the image size.
_REF_SIZE = 256.0


@dataclass(frozen=True)
class Finding:
    """Ground truth of one finding.

    Attributes:
        kind: One of ``CLASSES[1:]``.
        cx: Centre column, image pixels (pixel ``j`` has its centre at ``x = j``).
        cy: Centre row, image pixels.
        radius: Extent of the finding from its centre, pixels (mass with spicules, or cluster).
        bbox: ``(x0, y0, x1, y1)`` in image pixels, clipped to the image.
    """

    kind: str
    cx: float
    cy: float
    radius: float
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class SyntheticCase:
    """One synthetic case.

    Attributes:
        image: ``(H, W)`` uint16 with 12-bit values ``0..4095``; bright means dense.
        label: One of ``CLASSES``.
        findings: Ground-truth findings; empty for ``"normal"``.
        seed: Seed that reproduces the case with ``generate_case(seed, label, size)``.
    """

    image: np.ndarray
    label: str
    findings: tuple[Finding, ...]
    seed: int


@dataclass(frozen=True)
class _Anatomy:
    """Breast geometry in normalised coordinates (chest wall at ``u = 0``), used to place findings."""

    a: float  # horizontal semi-axis (nipple at u = a)
    b: float  # vertical semi-axis
    cy: float  # vertical centre
    muscle_w: float  # pectoral muscle width at the top edge (0 when absent)
    muscle_h: float  # pectoral muscle height along the chest wall


@lru_cache(maxsize=8)
def _radial_frequency(size: int) -> np.ndarray:
    """``(size, size // 2 + 1)`` radial spatial frequency of an rfft2 grid, DC set to 1."""
    freq = np.hypot(np.fft.rfftfreq(size)[None, :], np.fft.fftfreq(size)[:, None])
    freq[0, 0] = 1.0
    freq.setflags(write=False)
    return freq


def _power_noise(rng: np.random.Generator, size: int, betas: Sequence[float]) -> list[np.ndarray]:
    """Gaussian random fields with ``1/f^beta`` power spectra, one per beta, from the same white noise.

    The white noise is drawn directly in the frequency domain, which saves the forward transform.

    Returns:
        One ``(size, size)`` float32 field per beta, each with zero mean and unit standard deviation.
    """
    freq = _radial_frequency(size)
    white = rng.standard_normal(freq.shape) + 1j * rng.standard_normal(freq.shape)
    white[0, 0] = 0.0
    fields = []
    for beta in betas:
        field = np.fft.irfft2(white * freq ** (-beta / 2.0), s=(size, size))
        fields.append((field / (field.std() + 1e-12)).astype(np.float32))
    return fields


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """Cubic ramp from 0 (``x <= 0``) to 1 (``x >= 1``)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _deposit(points: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """Splat weighted points onto a grid (nearest pixel); points are ``(n, 2)`` as ``(x, y)``."""
    grid = np.zeros((size, size))
    cols = np.rint(points[:, 0]).astype(np.int64)
    rows = np.rint(points[:, 1]).astype(np.int64)
    keep = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    np.add.at(grid, (rows[keep], cols[keep]), weights[keep])
    return grid


def _strands(rng: np.random.Generator, anat: _Anatomy, size: int) -> np.ndarray:
    """Fibrous strands and ducts: faint curves fanning out from behind the nipple, ``(size, size)``."""
    n = int(rng.integers(20, 40))
    t = np.linspace(0.0, 1.0, size)[None, :, None] * rng.uniform(0.4, 1.0, n)[:, None, None]
    start = np.stack([np.full(n, anat.a * 0.93), anat.cy + rng.normal(0.0, 0.04, n)], axis=1)
    end = np.stack([rng.uniform(-0.1, 0.2, n), anat.cy + rng.uniform(-1.3, 1.3, n) * anat.b], axis=1)
    c1 = start + (end - start) / 3.0 + rng.normal(0.0, 0.07, (n, 2))
    c2 = start + 2.0 * (end - start) / 3.0 + rng.normal(0.0, 0.07, (n, 2))
    # Cubic Bezier curves, (n, T, 2) in normalised coordinates.
    curves = (
        ((1 - t) ** 3) * start[:, None]
        + 3 * ((1 - t) ** 2) * t * c1[:, None]
        + 3 * (1 - t) * (t**2) * c2[:, None]
        + (t**3) * end[:, None]
    )
    strength = rng.uniform(0.2, 1.0, n)[:, None] * (1.0 - 0.7 * t[..., 0])
    grid = _deposit(curves.reshape(-1, 2) * size, strength.reshape(-1), size)
    scale = size / _REF_SIZE
    # About one point per pixel of curve: the blurred line's peak falls as 1/sigma, so rescale.
    return scale * ndimage.gaussian_filter(grid.astype(np.float32), 0.9 * scale, truncate=3.0)


def _anatomy(rng: np.random.Generator, size: int) -> tuple[np.ndarray, _Anatomy]:
    """Draw the breast (chest wall on the left).

    Returns:
        ``(size, size)`` float32 attenuation (0 = air, ~0.2 fat, up to ~0.7 dense) and the geometry.
    """
    has_muscle = rng.random() < 0.8
    anat = _Anatomy(
        a=float(rng.uniform(0.62, 0.85)),
        b=float(rng.uniform(0.40, 0.46)),
        cy=float(rng.uniform(0.47, 0.53)),
        muscle_w=float(rng.uniform(0.15, 0.32)) if has_muscle else 0.0,
        muscle_h=float(rng.uniform(0.35, 0.6)) if has_muscle else 0.0,
    )
    # float32 grids: the image ends up 12-bit, and this halves the memory traffic.
    coords = ((np.arange(size) + 0.5) / size).astype(np.float32)
    u, v = coords[None, :], coords[:, None]
    # The breast widens towards the chest wall (it fills the image height there, as in an MLO view),
    # and its outline wobbles by a few low angular harmonics, cos(k*theta + phase) = Re(e^(i*phase) z^k).
    b_local = anat.b * (1.0 + 0.2 * np.clip(1.0 - u / anat.a, 0.0, 1.0) ** 2)
    z = u + 1j * (v - anat.cy)
    z /= np.abs(z)
    zk = z
    warp = np.zeros((size, size), dtype=np.float32)
    for _harmonic in range(2, 7):
        zk = zk * z
        amp, phase = rng.uniform(0.005, 0.02), rng.uniform(0, 2 * np.pi)
        warp += (amp * np.exp(1j * phase) * zk).real
    r = np.sqrt((u / anat.a) ** 2 + ((v - anat.cy) / b_local) ** 2) + warp
    tissue = _smoothstep((1.0 - r) / 0.02)
    # Compressed breast: full thickness inside, thinning over the outer quarter.
    thickness = _smoothstep((1.0 - r) / 0.3) ** 0.7
    skin = np.exp(-(((r - 0.985) / 0.008) ** 2))

    # Fibroglandular tissue: a 1/f^3 field (mammographic texture) with some finer lobular detail,
    # soft-thresholded so that breasts range from fatty to dense, concentrated behind the nipple.
    coarse, fine = _power_noise(rng, size, (3.0, 2.0))
    density_bias = rng.uniform(-1.5, 0.5)
    glandular = expit((coarse + 0.25 * fine + density_bias) / 0.7)
    envelope = np.exp(-(((u - 0.4 * anat.a) / (0.5 * anat.a)) ** 2)) * np.exp(
        -(((v - anat.cy) / (0.85 * anat.b)) ** 2)
    )
    attenuation = (
        tissue
        * thickness
        * (0.22 + 0.42 * glandular * envelope + 0.012 * fine + 0.04 * _strands(rng, anat, size))
    )
    attenuation += 0.05 * skin * tissue
    if has_muscle:
        edge = anat.muscle_w * (1.0 - v / anat.muscle_h) - u
        muscle = _smoothstep(edge / 0.02) * tissue
        shade = 0.5 + 0.12 * np.clip(edge / anat.muscle_w, 0.0, 1.0) + 0.02 * fine
        attenuation = np.maximum(attenuation, muscle * shade)
    return attenuation, anat


def _place(rng: np.random.Generator, anat: _Anatomy, extent: float) -> tuple[float, float]:
    """Draw a centre (normalised, chest wall left) well inside the breast and outside the muscle."""
    for _ in range(1000):
        u, v = rng.uniform(0.04, anat.a), rng.uniform(anat.cy - anat.b, anat.cy + anat.b)
        r = np.hypot(u / anat.a, (v - anat.cy) / anat.b)
        in_muscle = anat.muscle_w > 0 and u < anat.muscle_w * (1.0 - v / anat.muscle_h) + extent
        if r < 0.78 - extent and u > 0.05 + extent and not in_muscle and extent < v < 1 - extent:
            return float(u), float(v)
    return anat.a * 0.45, anat.cy  # unreachable for the drawn geometries; a safe central fallback


def _window(
    size: int, cx: float, cy: float, half: float
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Square window around ``(cx, cy)`` clipped to the image.

    Returns:
        The ``(rows, cols)`` slices and the ``dx``, ``dy`` offsets of its pixels from the centre.
    """
    r0, r1 = max(int(cy - half), 0), min(int(cy + half) + 2, size)
    c0, c1 = max(int(cx - half), 0), min(int(cx + half) + 2, size)
    dy = np.arange(r0, r1, dtype=np.float64)[:, None] - cy
    dx = np.arange(c0, c1, dtype=np.float64)[None, :] - cx
    return (slice(r0, r1), slice(c0, c1)), dx, dy


def _round_mass(
    rng: np.random.Generator, size: int, cx: float, cy: float, grow: float
) -> tuple[np.ndarray, float]:
    """Smooth-edged elliptic blob; returns its ``(size, size)`` attenuation and its radius (px)."""
    radius = rng.uniform(6.0, 18.0) * grow * size / _REF_SIZE
    contrast = rng.uniform(0.05, 0.16)
    ecc, angle = rng.uniform(0.0, 0.25), rng.uniform(0.0, np.pi)
    extent = radius * (1 + ecc)
    window, dx, dy = _window(size, cx, cy, 1.6 * extent)
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    rho = np.hypot(along / (radius * (1 + ecc)), across / (radius * (1 - ecc)))
    out = np.zeros((size, size))
    # Logistic edge: smooth margin; slightly domed interior.
    out[window] = contrast * expit((0.85 - rho) / 0.1) * (1.0 + 0.15 * (1.0 - np.clip(rho, 0, 1) ** 2))
    return out, extent


def _spiculated_mass(
    rng: np.random.Generator, size: int, cx: float, cy: float, grow: float
) -> tuple[np.ndarray, float]:
    """Irregular blob with radiating spicules; returns ``(size, size)`` attenuation and extent (px)."""
    scale = grow * size / _REF_SIZE
    core = rng.uniform(4.0, 10.0) * scale
    contrast = rng.uniform(0.06, 0.18)
    n = int(rng.integers(8, 19))
    angles = rng.uniform(0.0, 2 * np.pi, n)
    lengths = core * rng.uniform(1.2, 2.6, n)
    extent = core * 0.8 + float(lengths.max())

    window, dx, dy = _window(size, cx, cy, 1.6 * core)
    theta = np.arctan2(dy, dx)
    margin = np.ones_like(theta)
    for k in (3, 5, 7):  # a lobulated, irregular margin
        margin = margin + rng.uniform(0.04, 0.12) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    out = np.zeros((size, size))
    out[window] = expit((0.9 - np.hypot(dx, dy) / (core * margin)) / 0.06)

    t = np.linspace(0.0, 1.0, max(int(8 * core), 8))[None, :]
    bend = rng.normal(0.0, 0.08, n)[:, None] * t**2
    dist = core * 0.8 + lengths[:, None] * t
    px = cx + dist * np.cos(angles[:, None] + bend)
    py = cy + dist * np.sin(angles[:, None] + bend)
    weights = np.broadcast_to((1.0 - t) ** 1.5, px.shape)
    spicules = _deposit(np.stack([px.ravel(), py.ravel()], axis=1), weights.ravel(), size)
    spicules = ndimage.gaussian_filter(spicules, 0.7 * scale)
    out += spicules * (0.9 / max(float(spicules.max()), 1e-9))
    return contrast * out, extent


def _calcifications(
    rng: np.random.Generator, size: int, cx: float, cy: float, grow: float
) -> tuple[np.ndarray, float]:
    """Cluster of tiny bright dots; returns ``(size, size)`` attenuation and cluster radius (px)."""
    scale = grow * size / _REF_SIZE
    radius = rng.uniform(5.0, 14.0) * scale
    n = int(rng.integers(5, 17))
    offsets = rng.normal(0.0, radius / 2.0, (n, 2))
    norms = np.hypot(offsets[:, 0], offsets[:, 1])
    offsets *= np.minimum(1.0, radius / np.maximum(norms, 1e-9))[:, None]
    out = np.zeros((size, size))
    for (ox, oy), sigma, amp in zip(
        offsets, rng.uniform(0.5, 1.1, n) * scale, rng.uniform(0.10, 0.32, n), strict=True
    ):
        window, dx, dy = _window(size, cx + ox, cy + oy, 4.0 * sigma + 1.0)
        out[window] += amp * np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    return out, radius


_RENDERERS = {
    "round_mass": _round_mass,
    "spiculated_mass": _spiculated_mass,
    "calcifications": _calcifications,
}
# Typical extent (normalised) used to keep findings away from the breast edge when placing them.
_PLACEMENT_EXTENT = {"round_mass": 0.06, "spiculated_mass": 0.08, "calcifications": 0.05}


def _to_counts(attenuation: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Detector model: exposure gradient, blur, quantum noise and film grain -> 12-bit uint16."""
    rows = ((np.arange(size)[:, None] + 0.5) / size).astype(np.float32)
    signal = 0.035 + 0.95 * attenuation * (1.0 + 0.06 * (rows - 0.5))
    signal = ndimage.gaussian_filter(signal, 0.6 * size / _REF_SIZE, truncate=3.0)
    # Quantum noise grows with the square root of the signal.
    quantum = rng.standard_normal((size, size), dtype=np.float32)
    quantum *= 0.010 * np.sqrt(np.clip(signal, 0.0, None) + 0.02)
    white = rng.standard_normal((size, size), dtype=np.float32)
    grain = ndimage.gaussian_filter(white, 0.7, truncate=3.0) * 0.012
    counts = np.rint(np.clip(signal + quantum + grain, 0.0, 1.0) * MAX_VALUE)
    return counts.astype(np.uint16)


def generate_case(
    seed: int, label: str, size: int = 256, finding_scale: float = 1.0, finding_contrast: float = 1.0
) -> SyntheticCase:
    """Generate one case.

    Args:
        seed: Case seed; anatomy and noise depend only on it, the finding on it and ``label``.
        label: One of ``CLASSES``.
        size: Image side in pixels (square image).
        finding_scale: Multiplies the size of findings relative to the breast (1 = realistic).
            Larger findings stay visible at the low resolutions a CPU can train at in minutes.
        finding_contrast: Multiplies the attenuation a finding adds (1 = realistic, where many
            findings hide in dense tissue); larger values make findings conspicuous.

    Returns:
        The case with an ``(size, size)`` uint16 image and its ground truth.

    Raises:
        ValueError: For an unknown label, a size below 64, or a finding_scale or finding_contrast
            outside [0.5, 4].
    """
    if label not in CLASSES:
        raise ValueError(f"unknown label {label!r}; expected one of {CLASSES}")
    if size < 64:
        raise ValueError(f"size must be at least 64 px, got {size}")
    if not 0.5 <= finding_scale <= 4.0:
        raise ValueError(f"finding_scale must be in [0.5, 4], got {finding_scale}")
    if not 0.5 <= finding_contrast <= 4.0:
        raise ValueError(f"finding_contrast must be in [0.5, 4], got {finding_contrast}")
    anatomy_ss, finding_ss, noise_ss = np.random.SeedSequence(seed).spawn(3)
    attenuation, anat = _anatomy(np.random.default_rng(anatomy_ss), size)
    findings: list[Finding] = []
    if label != "normal":
        rng = np.random.default_rng([*finding_ss.generate_state(2), CLASSES.index(label)])
        u, v = _place(rng, anat, _PLACEMENT_EXTENT[label] * finding_scale)
        cx, cy = u * size - 0.5, v * size - 0.5
        lesion, extent = _RENDERERS[label](rng, size, cx, cy, finding_scale)
        attenuation = attenuation + finding_contrast * lesion
        findings.append(_finding(label, cx, cy, extent, size))
    image = _to_counts(attenuation, np.random.default_rng(noise_ss), size)
    # Half of the cases show the other breast: chest wall on the right.
    if np.random.default_rng(anatomy_ss.generate_state(1)).random() < 0.5:
        image = np.ascontiguousarray(image[:, ::-1])
        findings = [_finding(f.kind, size - 1 - f.cx, f.cy, f.radius, size) for f in findings]
    return SyntheticCase(image=image, label=label, findings=tuple(findings), seed=int(seed))


def _finding(kind: str, cx: float, cy: float, radius: float, size: int) -> Finding:
    """Finding with its bounding box clipped to the image."""
    lo, hi = 0.0, float(size - 1)
    bbox = (
        float(np.clip(cx - radius, lo, hi)),
        float(np.clip(cy - radius, lo, hi)),
        float(np.clip(cx + radius, lo, hi)),
        float(np.clip(cy + radius, lo, hi)),
    )
    return Finding(kind=kind, cx=float(cx), cy=float(cy), radius=float(radius), bbox=bbox)


def generate_dataset(
    n: int,
    *,
    seed: int = 0,
    size: int = 256,
    classes: Sequence[str] = CLASSES,
    finding_scale: float = 1.0,
    finding_contrast: float = 1.0,
) -> list[SyntheticCase]:
    """Generate ``n`` cases with balanced labels (counts differ by at most one), in shuffled order.

    Args:
        n: Number of cases.
        seed: Dataset seed; the same arguments always give the same cases.
        size: Image side in pixels.
        classes: Labels to draw from, a non-empty subset of ``CLASSES`` without repeats.
        finding_scale, finding_contrast: See :func:`generate_case`.

    Returns:
        ``n`` cases; ``generate_case(c.seed, c.label, size, finding_scale, finding_contrast)``
        reproduces each ``c``.

    Raises:
        ValueError: For a negative ``n`` or bad ``classes``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    classes = tuple(classes)
    unknown = [c for c in classes if c not in CLASSES]
    if not classes or unknown or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct members of {CLASSES}, got {classes}")
    ss = np.random.SeedSequence(seed)
    labels = [classes[i % len(classes)] for i in range(n)]
    order = np.random.default_rng(ss).permutation(n)
    case_seeds = ss.generate_state(max(n, 1), dtype=np.uint32)[:n]
    return [
        generate_case(int(s), labels[int(i)], size, finding_scale, finding_contrast)
        for s, i in zip(case_seeds, order, strict=True)
    ]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Map a 12-bit image linearly onto 8 bits (0 -> 0, 4095 -> 255).

    Args:
        image: ``(H, W)`` integer array with values in ``0..4095`` (larger values saturate).

    Returns:
        ``(H, W)`` uint8.
    """
    if image.ndim != 2:
        raise ValueError(f"expected a (H, W) image, got shape {image.shape}")
    scaled = np.clip(image.astype(np.float64), 0, MAX_VALUE) * (255.0 / MAX_VALUE)
    return np.rint(scaled).astype(np.uint8)
