"""Multi-positive losses against slow references, standard forms and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainer.losses.cosine import multi_positive_cosine
from trainer.losses.infonce import multi_positive_infonce
from trainer.losses.ntxent import multi_positive_ntxent


def ref_infonce(logits: torch.Tensor, pos: torch.Tensor, t: float) -> float:
    """Element-by-element: -sum over positive entries of log softmax / number of positive entries."""
    total, count = 0.0, 0
    for i in range(logits.shape[0]):
        row = [float(v) / t for v in logits[i]]
        m = max(row)
        log_z = m + math.log(sum(math.exp(v - m) for v in row))
        for j in range(logits.shape[1]):
            if pos[i, j]:
                total += -(row[j] - log_z)
                count += 1
    return total / count


def ref_cosine(p: torch.Tensor, z: torch.Tensor, pos: torch.Tensor) -> float:
    vals = []
    for i in range(p.shape[0]):
        for j in range(z.shape[0]):
            if pos[i, j]:
                a, b = p[i].double(), z[j].double()
                vals.append(float(a @ b / (a.norm() * b.norm())))
    return sum(vals) / len(vals)


def ref_ntxent(
    anchors: torch.Tensor, cands: torch.Tensor, pos: torch.Tensor, selfm: torch.Tensor, t: float
) -> float:
    a = F.normalize(anchors.double(), dim=1)
    c = F.normalize(cands.double(), dim=1)
    losses = []
    for i in range(a.shape[0]):
        others = [j for j in range(c.shape[0]) if not selfm[i, j]]
        log_z = math.log(sum(math.exp(float(a[i] @ c[j]) / t) for j in others))
        terms = [-(float(a[i] @ c[j]) / t - log_z) for j in others if pos[i, j]]
        losses.append(sum(terms) / len(terms))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_infonce_matches_reference(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    logits = torch.rand(6, 1 + 20, generator=g) * 2 - 1
    gaze = torch.rand(6, 20, generator=g) < 0.2
    pos = torch.cat([torch.ones(6, 1, dtype=torch.bool), gaze], 1)
    got = float(multi_positive_infonce(logits, pos, 0.2))
    assert got == pytest.approx(ref_infonce(logits, pos, 0.2), rel=1e-5)


def test_infonce_one_positive_is_standard_cross_entropy() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.rand(8, 33, generator=g) * 2 - 1
    pos = torch.zeros(8, 33, dtype=torch.bool)
    pos[:, 0] = True
    expected = F.cross_entropy(logits / 0.07, torch.zeros(8, dtype=torch.long))
    assert float(multi_positive_infonce(logits, pos, 0.07)) == pytest.approx(float(expected), rel=1e-6)


def test_infonce_hand_computed_two_positives() -> None:
    # One row, logits [ln 2, ln 1, ln 1] with T = 1: softmax = [1/2, 1/4, 1/4].
    logits = torch.tensor([[math.log(2.0), 0.0, 0.0]])
    one = torch.tensor([[True, False, False]])
    two = torch.tensor([[True, True, False]])
    assert float(multi_positive_infonce(logits, one, 1.0)) == pytest.approx(math.log(2.0))
    # Mean of -log(1/2) and -log(1/4) = 1.5 ln 2: a weaker positive raises the loss.
    assert float(multi_positive_infonce(logits, two, 1.0)) == pytest.approx(1.5 * math.log(2.0))


def test_infonce_extra_positive_on_hardest_negative_lowers_loss() -> None:
    logits = torch.tensor([[0.5, 0.9, -0.2, 0.1]])
    base = torch.tensor([[True, False, False, False]])
    extra = torch.tensor([[True, True, False, False]])
    assert multi_positive_infonce(logits, extra, 0.2) < multi_positive_infonce(logits, base, 0.2)


def test_infonce_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="temperature"):
        multi_positive_infonce(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool), 0.0)
    with pytest.raises(ValueError, match="shape"):
        multi_positive_infonce(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool), 0.2)


@pytest.mark.parametrize("seed", [0, 1])
def test_cosine_matches_reference(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    p, z = torch.randn(5, 8, generator=g), torch.randn(7, 8, generator=g)
    pos = torch.rand(5, 7, generator=g) < 0.4
    pos[0, 0] = True
    assert float(multi_positive_cosine(p, z, pos)) == pytest.approx(ref_cosine(p, z, pos), rel=1e-5)


def test_cosine_identity_mask_is_standard_byol_and_simsiam() -> None:
    g = torch.Generator().manual_seed(5)
    p, z = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
    eye = torch.eye(6, dtype=torch.bool)
    byol = 2 - 2 * F.cosine_similarity(p, z, dim=1).mean()
    simsiam = -F.cosine_similarity(p, z.detach(), dim=1).mean()
    assert float(2 - 2 * multi_positive_cosine(p, z, eye)) == pytest.approx(float(byol), rel=1e-6)
    assert float(-multi_positive_cosine(p, z, eye)) == pytest.approx(float(simsiam), rel=1e-6)


def test_cosine_hand_computed_gaze_pair() -> None:
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    eye = torch.eye(2, dtype=torch.bool)
    # identity: cos(p0,z0)=1, cos(p1,z1)=1/sqrt2 -> mean (1 + 0.7071)/2
    assert float(multi_positive_cosine(p, z, eye)) == pytest.approx((1 + 2**-0.5) / 2, rel=1e-6)
    # adding gaze pair (0, 1): cos(p0, z1) = 1/sqrt2 -> mean over 3 pairs
    both = eye | torch.tensor([[False, True], [False, False]])
    assert float(multi_positive_cosine(p, z, both)) == pytest.approx((1 + 2 * 2**-0.5) / 3, rel=1e-6)


def test_cosine_gradient_flows_only_to_predictions_positives() -> None:
    p = torch.randn(3, 4, requires_grad=True)
    z = torch.randn(3, 4)
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[0, 0] = True
    multi_positive_cosine(p, z, mask).backward()
    assert p.grad is not None
    assert p.grad[0].abs().sum() > 0 and p.grad[1:].abs().sum() == 0


def _simclr_masks(b: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = 2 * b
    selfm = torch.eye(n, dtype=torch.bool)
    other = torch.zeros(n, n, dtype=torch.bool)
    i = torch.arange(b)
    other[i, i + b] = True
    other[i + b, i] = True
    return other, selfm


def test_ntxent_one_positive_is_simclr() -> None:
    g = torch.Generator().manual_seed(7)
    z = torch.randn(8, 16, generator=g)  # 4 images x 2 views
    other, selfm = _simclr_masks(4)
    # Standard NT-Xent: cross-entropy over similarities with self removed, target = other view.
    zn = F.normalize(z, dim=1)
    logits = (zn @ zn.T / 0.5).masked_fill(selfm, float("-inf"))
    target = torch.cat([torch.arange(4, 8), torch.arange(0, 4)])
    expected = F.cross_entropy(logits, target)
    got = multi_positive_ntxent(z, z, other, selfm, 0.5)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_ntxent_matches_reference_with_gaze(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(10, 8, generator=g)
    other, selfm = _simclr_masks(5)
    gaze = torch.zeros(10, 10, dtype=torch.bool)
    for a, b in [(0, 1), (2, 4)]:  # gaze pairs between images -> all four view combinations
        for va in (0, 5):
            for vb in (0, 5):
                gaze[a + va, b + vb] = gaze[b + vb, a + va] = True
    pos = other | gaze
    got = float(multi_positive_ntxent(z, z, pos, selfm, 0.3))
    assert got == pytest.approx(ref_ntxent(z, z, pos, selfm, 0.3), rel=1e-5)
    assert got != pytest.approx(float(multi_positive_ntxent(z, z, other, selfm, 0.3)), rel=1e-3)
