"""Methods: wiring of gaze positives, queue bookkeeping, momentum, baseline = standard loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.config import TrainConfig
from trainer.losses.mask import PairLookup
from trainer.losses.positives import GazePositives
from trainer.models.backbone import build_backbone, rgb_stem_to_gray
from trainer.models.byol import BYOL
from trainer.models.factory import build_method
from trainer.models.moco import MoCo
from trainer.models.momentum import cosine_momentum, ema_update
from trainer.models.simclr import SimCLR

SMALL = {"proj_hidden_dim": 32, "proj_dim": 16}


def _views(b: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 1, 32, 32, generator=g), torch.randn(b, 1, 32, 32, generator=g), torch.arange(b)


def _all_pairs(n: int) -> GazePositives:
    i, j = torch.triu_indices(n, n, 1)
    return GazePositives(PairLookup(torch.stack([i, j], 1), n))


def test_backbone_is_one_channel_without_classifier() -> None:
    net, dim = build_backbone("resnet18")
    assert isinstance(net.conv1, torch.nn.Conv2d) and net.conv1.in_channels == 1 and dim == 512
    assert net(torch.randn(2, 1, 64, 64)).shape == (2, 512)
    with pytest.raises(ValueError, match="backbone"):
        build_backbone("vgg")
    w = torch.randn(64, 3, 7, 7)
    x = torch.randn(1, 1, 9, 9)
    assert torch.allclose(
        F.conv2d(x.expand(1, 3, 9, 9), w), F.conv2d(x, rgb_stem_to_gray(w)), atol=1e-5
    )  # gray replicated to RGB == summed stem


@pytest.mark.parametrize("name", ["moco_v2", "byol", "simsiam", "simclr"])
def test_every_method_trains_with_and_without_gaze(name: str) -> None:
    cfg = TrainConfig.from_dict(
        {"model": {**SMALL, "pred_hidden_dim": 16}, "method": {"name": name, "queue_size": 12}}
    )
    v1, v2, idx = _views()
    counts = []
    for positives in (GazePositives(None), _all_pairs(6)):
        torch.manual_seed(0)
        method = build_method(cfg, positives)
        if name == "moco_v2":  # make queue entries real cases so gaze positives exist there too
            method(v1, v2, idx)
        loss, count = method(v1, v2, idx)
        loss.backward()
        assert torch.isfinite(loss)
        grads = [p.grad for p in method.encoder.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        method.after_step(0.5)
        counts.append(int(count))
    assert counts[0] == 0 and counts[1] > 0


def test_moco_queue_keeps_case_indices_and_wraps() -> None:
    torch.manual_seed(0)
    m = MoCo(
        backbone="resnet18",
        queue_size=10,
        temperature=0.2,
        momentum=0.99,
        symmetric=False,
        positives=GazePositives(None),
        **SMALL,
    )
    assert (m.queue_idx == -1).all()
    v1, v2, _ = _views(4)
    m(v1, v2, torch.tensor([10, 11, 12, 13]))
    m(v1, v2, torch.tensor([20, 21, 22, 23]))
    assert m.queue_idx.tolist() == [10, 11, 12, 13, 20, 21, 22, 23, -1, -1]
    m(v1, v2, torch.tensor([30, 31, 32, 33]))
    assert m.queue_idx.tolist() == [32, 33, 12, 13, 20, 21, 22, 23, 30, 31]
    assert int(m.queue_ptr) == 2
    assert torch.allclose(m.queue.norm(dim=1), torch.ones(10), atol=1e-5)


def test_moco_gaze_queue_positive_changes_loss_exactly_as_multi_positive() -> None:
    torch.manual_seed(0)
    pairs = GazePositives(PairLookup(torch.tensor([[0, 5]]), 8, include_self=False))
    m = MoCo(
        backbone="resnet18",
        queue_size=4,
        temperature=0.2,
        momentum=0.99,
        symmetric=False,
        positives=pairs,
        **SMALL,
    )
    m.eval()  # fixed BN statistics so the manual recomputation matches
    m.queue_idx.copy_(torch.tensor([5, 6, 7, -1]))
    queue = m.queue.clone()
    v1, v2, _ = _views(2)
    idx = torch.tensor([0, 1])
    loss, count = m(v1, v2, idx)
    assert int(count) == 1  # case 0 vs queue slot 0 (case 5)
    with torch.no_grad():
        q = F.normalize(m.projector(m.encoder(v1)), dim=1)
        k = F.normalize(m.key_projector(m.key_encoder(v2)), dim=1)
    logp = F.log_softmax(torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], 1) / 0.2, dim=1)
    expected = -(logp[0, 0] + logp[0, 1] + logp[1, 0]) / 3
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_simclr_baseline_is_standard_ntxent() -> None:
    torch.manual_seed(0)
    m = SimCLR(backbone="resnet18", temperature=0.5, positives=GazePositives(None), **SMALL)
    v1, v2, idx = _views(4)
    loss, count = m(v1, v2, idx)
    z = F.normalize(m.projector(m.encoder(torch.cat([v1, v2]))), dim=1)
    logits = (z @ z.T / 0.5).masked_fill(torch.eye(8, dtype=torch.bool), float("-inf"))
    expected = F.cross_entropy(logits, torch.cat([torch.arange(4, 8), torch.arange(4)]))
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5) and int(count) == 0


def test_byol_baseline_and_gaze_losses() -> None:
    torch.manual_seed(0)
    v1, v2, idx = _views(4)
    for positives, mask in (
        (GazePositives(None), torch.eye(4, dtype=torch.bool)),
        (_all_pairs(4), torch.ones(4, 4, dtype=torch.bool)),
    ):
        torch.manual_seed(0)
        m = BYOL(
            backbone="resnet18",
            pred_hidden_dim=16,
            momentum=0.99,
            momentum_cosine=True,
            positives=positives,
            **SMALL,
        )
        loss, _ = m(v1, v2, idx)
        p1, p2 = (F.normalize(m.predictor(m.projector(m.encoder(v))), dim=1) for v in (v1, v2))
        with torch.no_grad():
            t1, t2 = (F.normalize(m.target_projector(m.target_encoder(v)), dim=1) for v in (v1, v2))
        cos = ((p1 @ t2.T)[mask].mean() + (p2 @ t1.T)[mask].mean()) / 2
        assert float(loss.detach()) == pytest.approx(float(2 - 2 * cos), rel=1e-5)


def test_momentum_update_and_schedule() -> None:
    a, b = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    before = a.weight.detach().clone()
    ema_update(a, b, 0.9)
    assert torch.allclose(a.weight, 0.9 * before + 0.1 * b.weight)
    assert cosine_momentum(0.99, 0.0) == pytest.approx(0.99)
    assert cosine_momentum(0.99, 1.0) == pytest.approx(1.0)
    assert 0.99 < cosine_momentum(0.99, 0.5) < 1.0
