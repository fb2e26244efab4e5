"""Synthetic cases: determinism, value ranges, ground truth, balance, and radiograph-like texture."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from trainer.synthetic.images import CLASSES, MAX_VALUE, generate_case, generate_dataset, to_uint8


@pytest.fixture(scope="module")
def dataset() -> list:
    return generate_dataset(40, seed=7)


def test_generate_case_is_deterministic() -> None:
    a, b = generate_case(11, "spiculated_mass"), generate_case(11, "spiculated_mass")
    assert np.array_equal(a.image, b.image)
    assert a.findings == b.findings
    assert not np.array_equal(a.image, generate_case(12, "spiculated_mass").image)


def test_generate_dataset_is_deterministic_and_reproducible_from_case_seeds(dataset: list) -> None:
    again = generate_dataset(40, seed=7)
    assert [c.label for c in again] == [c.label for c in dataset]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(again, dataset, strict=True))
    for case in dataset[:6]:
        rebuilt = generate_case(case.seed, case.label)
        assert np.array_equal(rebuilt.image, case.image)
        assert rebuilt.findings == case.findings
    other = generate_dataset(40, seed=8)
    assert not all(np.array_equal(a.image, b.image) for a, b in zip(other, dataset, strict=True))


@pytest.mark.parametrize("size", [64, 256, 320])
def test_image_shape_dtype_and_range(size: int) -> None:
    case = generate_case(3, "round_mass", size=size)
    assert case.image.shape == (size, size)
    assert case.image.dtype == np.uint16
    assert int(case.image.max()) <= MAX_VALUE
    # Dark air around the breast and bright tissue: a radiograph uses a wide part of the range.
    assert np.percentile(case.image, 5) < 0.1 * MAX_VALUE
    assert np.percentile(case.image, 95) > 0.3 * MAX_VALUE


@pytest.mark.parametrize("n", [1, 10, 60, 61])
def test_labels_are_balanced(n: int) -> None:
    counts = Counter(c.label for c in generate_dataset(n, seed=1, size=64))
    assert set(counts) <= set(CLASSES)
    assert sum(counts.values()) == n
    full = [counts.get(label, 0) for label in CLASSES]
    assert max(full) - min(full) <= 1


def test_dataset_with_a_subset_of_classes() -> None:
    cases = generate_dataset(9, seed=2, size=64, classes=("normal", "calcifications", "round_mass"))
    assert Counter(c.label for c in cases) == {"normal": 3, "calcifications": 3, "round_mass": 3}


def test_labels_are_shuffled(dataset: list) -> None:
    labels = [c.label for c in dataset]
    assert labels != [CLASSES[i % len(CLASSES)] for i in range(len(labels))]


def test_findings_match_labels_and_lie_inside_the_image_and_the_tissue(dataset: list) -> None:
    for case in dataset:
        h, w = case.image.shape
        if case.label == "normal":
            assert case.findings == ()
            continue
        assert len(case.findings) == 1
        f = case.findings[0]
        assert f.kind == case.label
        assert 0 <= f.cx < w and 0 <= f.cy < h
        x0, y0, x1, y1 = f.bbox
        assert 0 <= x0 < f.cx < x1 <= w - 1 and 0 <= y0 < f.cy < y1 <= h - 1
        assert f.radius > 0
        # The finding sits on breast tissue, not on the air around it.
        assert case.image[int(round(f.cy)), int(round(f.cx))] > 0.15 * MAX_VALUE


def test_same_seed_gives_same_anatomy_and_the_finding_changes_only_its_surroundings() -> None:
    normal = generate_case(21, "normal")
    for label in CLASSES[1:]:
        case = generate_case(21, label)
        f = case.findings[0]
        diff = case.image.astype(np.int64) - normal.image.astype(np.int64)
        ys, xs = np.nonzero(np.abs(diff) > 8)
        assert len(xs) > 5, label
        # Blur tails aside, every changed pixel is within a few pixels of the bounding box.
        x0, y0, x1, y1 = f.bbox
        assert xs.min() >= x0 - 4 and xs.max() <= x1 + 4 and ys.min() >= y0 - 4 and ys.max() <= y1 + 4, label
        # Findings are brighter (denser) than what they cover.
        assert diff.sum() > 0, label


def _local_contrast(image: np.ndarray, cx: float, cy: float, r: float) -> float:
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    d = np.hypot(xx - cx, yy - cy)
    inside = image[d <= 0.6 * r].astype(np.float64)
    ring = image[(d > 1.2 * r) & (d <= 2.2 * r)].astype(np.float64)
    return float((np.percentile(inside, 90) - np.median(ring)) / ring.std())


def test_findings_vary_in_conspicuity() -> None:
    # Learnable but not trivial: most findings stand out from their surroundings, to varying degrees.
    cases = generate_dataset(48, seed=4, classes=CLASSES[1:])
    contrast = np.array(
        [_local_contrast(c.image, c.findings[0].cx, c.findings[0].cy, c.findings[0].radius) for c in cases]
    )
    assert np.median(contrast) > 1.0
    assert contrast.min() < 1.0 < 3.0 < contrast.max()
    radii = {label: [c.findings[0].radius for c in cases if c.label == label] for label in CLASSES[1:]}
    for label, values in radii.items():
        assert max(values) > 1.5 * min(values), label


def test_finding_scale_and_contrast_enlarge_and_brighten_the_finding_only() -> None:
    normal = generate_case(33, "normal", size=128).image.astype(np.int64)
    plain = generate_case(33, "round_mass", size=128)
    large = generate_case(33, "round_mass", size=128, finding_scale=3.0)
    bright = generate_case(33, "round_mass", size=128, finding_contrast=2.5)
    assert large.findings[0].radius > 2.5 * plain.findings[0].radius
    # Contrast leaves the finding's geometry alone and scales what it adds to the anatomy.
    assert bright.findings[0] == plain.findings[0]
    added_plain = plain.image.astype(np.int64) - normal
    added_bright = bright.image.astype(np.int64) - normal
    inside = np.abs(added_plain) > 40
    assert inside.sum() > 5
    ratio = added_bright[inside].sum() / added_plain[inside].sum()
    assert 2.0 < ratio < 2.8
    # Away from the finding the image is the same breast.
    x0, y0, x1, y1 = (int(v) for v in plain.findings[0].bbox)
    outside = np.ones_like(inside)
    outside[max(y0 - 6, 0) : y1 + 7, max(x0 - 6, 0) : x1 + 7] = False
    assert np.abs(added_bright[outside]).max() <= 80


def test_tissue_texture_has_a_power_law_spectrum() -> None:
    # Mammographic texture has a steep power-law spectrum (1/f^beta, beta about 2-3.5), unlike white noise.
    case = generate_case(5, "normal", size=256)
    image = case.image.astype(np.float64)
    # A window centred on the tissue, away from the skin line and the air.
    ys, xs = np.nonzero(image > 0.15 * MAX_VALUE)
    cy, cx = int(ys.mean()), int(xs.mean())
    window = image[cy - 32 : cy + 32, cx - 32 : cx + 32]
    assert window.min() > 0.1 * MAX_VALUE
    window = (window - window.mean()) * np.outer(np.hanning(64), np.hanning(64))
    power = np.abs(np.fft.fftshift(np.fft.fft2(window))) ** 2
    yy, xx = np.mgrid[-32:32, -32:32]
    radius = np.rint(np.hypot(xx, yy)).astype(int)
    freqs = np.arange(2, 14)
    radial = np.array([power[radius == f].mean() for f in freqs])
    slope = np.polyfit(np.log(freqs), np.log(radial), 1)[0]
    assert -4.0 < slope < -1.8


def test_to_uint8_is_full_range_and_linear() -> None:
    ramp = np.linspace(0, MAX_VALUE, 4096).astype(np.uint16).reshape(64, 64)
    out = to_uint8(ramp)
    assert out.dtype == np.uint8 and out.shape == (64, 64)
    assert out.min() == 0 and out.max() == 255
    assert np.all(np.diff(out.ravel().astype(int)) >= 0)
    assert abs(int(to_uint8(np.array([[2048]], dtype=np.uint16))[0, 0]) - 128) <= 1
    with pytest.raises(ValueError, match="shape"):
        to_uint8(np.zeros((2, 2, 2), dtype=np.uint16))


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="tumour"):
        generate_case(0, "tumour")
    with pytest.raises(ValueError, match="size"):
        generate_case(0, "normal", size=16)
    with pytest.raises(ValueError, match="finding_scale"):
        generate_case(0, "round_mass", finding_scale=8.0)
    with pytest.raises(ValueError, match="finding_contrast"):
        generate_case(0, "round_mass", finding_contrast=0.1)
    with pytest.raises(ValueError, match="classes"):
        generate_dataset(4, classes=("normal", "normal"))
    with pytest.raises(ValueError, match="n must"):
        generate_dataset(-1)
