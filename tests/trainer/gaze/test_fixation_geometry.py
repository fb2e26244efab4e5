"""Fixations in degrees of visual angle: the display's zoom and pan do not change them."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.gaze.fixations import angular_positions, detect_fixations, screen_pixels_per_degree

PPD = 35.0  # screen px per degree


def _scan(
    targets: np.ndarray, zoom: float, pan: tuple[float, float], seed: int = 0, rate: float = 250.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixations on image-px ``targets`` shown at ``zoom``: 250 ms dwell with 0.05 deg eye tremor,
    40 ms saccades; returns image samples (m, 4), screen positions (m, 2) and zoom per sample (m,)."""
    rng = np.random.default_rng(seed)
    dt = 1000.0 / rate
    screen_targets = targets * zoom + np.asarray(pan)
    pts: list[np.ndarray] = []
    for i, p in enumerate(screen_targets):
        pts.append(p + rng.normal(0, 0.05 * PPD, size=(int(250 / dt), 2)))
        if i + 1 < len(screen_targets):
            steps = np.linspace(0, 1, int(40 / dt) + 2)[1:-1, None]
            pts.append(p + steps * (screen_targets[i + 1] - p))
    screen = np.concatenate(pts)
    t = np.arange(len(screen)) * dt
    image = (screen - np.asarray(pan)) / zoom
    samples = np.column_stack((t, image, np.ones(len(t))))
    return samples, screen, np.full(len(t), zoom)


def _detect(samples: np.ndarray, screen: np.ndarray, zoom: np.ndarray) -> np.ndarray:
    ang = angular_positions(screen, samples[:, 1:3], zoom, PPD)
    fix = detect_fixations(samples, angular=ang).fixations
    return np.column_stack((fix.x, fix.y))


def _recovered(found: np.ndarray, targets: np.ndarray, tol: float) -> float:
    if len(found) == 0:
        return 0.0
    d = np.hypot(*(targets[:, None, :] - found[None, :, :]).transpose(2, 0, 1))
    return float((d.min(1) <= tol).mean())


def test_same_scan_at_zoom_1_and_4_gives_the_same_fixations() -> None:
    rng = np.random.default_rng(3)
    grid = np.stack(np.meshgrid(np.arange(4), np.arange(3)), -1).reshape(-1, 2) * 80.0 + 100.0
    targets = rng.permutation(grid) + rng.uniform(-15, 15, size=(12, 2))  # >= 1.4 deg apart at zoom 1
    at1 = _detect(*_scan(targets, 1.0, (0.0, 0.0)))
    at4 = _detect(*_scan(targets, 4.0, (-800.0, -600.0)))
    assert len(at1) == len(at4) == 12
    assert np.abs(at1 - at4).max() < 1.0  # image px
    assert _recovered(at4, targets, 1.0) == 1.0


def test_small_image_shown_large_keeps_its_fixations() -> None:
    """A 96-px image shown at 768 px: targets 6-20 image px apart are 1.4-4.6 deg apart on screen."""
    rng = np.random.default_rng(5)
    targets = [np.array([48.0, 48.0])]
    while len(targets) < 30:
        step = rng.uniform(6, 20) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
        nxt = targets[-1] + step
        if (nxt > 8).all() and (nxt < 88).all():
            targets.append(nxt)
    t = np.array(targets)
    samples, screen, zoom = _scan(t, 8.0, (0.0, 0.0), seed=1)
    found = _detect(samples, screen, zoom)
    assert _recovered(found, t, 1.0) >= 0.9
    # Thresholds in image pixels (35 px "per degree" of the image) merge most of them.
    image_only = detect_fixations(samples).fixations
    assert _recovered(np.column_stack((image_only.x, image_only.y)), t, 1.0) < 0.5


def test_imported_samples_without_screen_positions_use_zoomed_image_positions() -> None:
    image = np.array([[10.0, 20.0], [30.0, 40.0]])
    screen = np.array([[np.nan, np.nan], [100.0, 70.0]])
    got = angular_positions(screen, image, np.array([2.0, np.nan]), 10.0)
    assert np.allclose(got, [[2.0, 4.0], [10.0, 7.0]])


def test_screen_pixels_per_degree_from_geometry() -> None:
    # 1920 px over 531 mm at 600 mm: 3.616 px/mm x 10.47 mm per degree.
    assert screen_pixels_per_degree(1920, 531, 600) == pytest.approx(37.87, abs=0.01)
    assert screen_pixels_per_degree(1920, None, 600) is None
