"""Heads for two small real encoders on a labelled snapshot: files, CV report, exports, model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors import safe_open

from tests.trainer.fixtures import CLASSES, build_snapshot
from trainer import api
from trainer.config import TrainConfig
from trainer.diagnosis.fit import fit_heads
from trainer.diagnosis.head import head_beside
from trainer.export import DiagnosisModel, NormalizedEncoder, load_encoder
from trainer.pipeline import prepare_data, save_untrained_encoder

pytestmark = pytest.mark.slow  # ~30 s of CPU: two encoders, CV bootstrap, three exports

CONFIG = {"data": {"image_size": 32, "load_size": 40}, "train": {"seed": 0}}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, Any], Any]:
    root = tmp_path_factory.mktemp("heads")
    snap, _ = build_snapshot(root / "data", 64, size=40)
    prepared = prepare_data(TrainConfig.from_dict(CONFIG), snap)
    encoders = {}
    for seed, name in ((0, "mcgip"), (1, "baseline")):
        cfg = TrainConfig.from_dict({**CONFIG, "train": {"seed": seed}})
        encoders[name] = save_untrained_encoder(cfg, prepared, root / name / "encoder.pt")
    report = fit_heads(encoders, prepared, device=torch.device("cpu"), folds=4, resamples=1000)
    return encoders, report, prepared


def test_fit_heads_writes_calibrated_heads_and_a_cross_validated_report(
    fitted: tuple[dict[str, Path], dict[str, Any], Any],
) -> None:
    encoders, report, _ = fitted
    assert report["status"] == "ok" and report["classes"] == list(CLASSES)
    for name, path in encoders.items():
        head = head_beside(path)
        assert head is not None and head.classes == CLASSES and head.n_features == 512
        cal = report["heads"][name]["calibration"]
        assert cal["temperature"] == head.temperature > 0
        assert cal["n_heldout"] + report["heads"][name]["fit"]["n_train"] == 64
        for key in ("cv_ece_before", "cv_ece_after"):
            assert cal[key]["ci_low"] <= cal[key]["value"] <= cal[key]["ci_high"]
    ev = report["evaluation"]
    assert ev["status"] == "ok" and ev["n_cases"] == 64 and ev["n_folds"] == 4
    # The protocol's repeated CV and corrected t-test (trainer.protocol), not fixed predictions.
    assert ev["n_repeats"] == 10 and "Nadeau-Bengio" in ev["protocol"]["paired"]
    acc = ev["conditions"]["mcgip"]["head.balanced_accuracy"]
    assert acc["ci_low"] <= acc["value"] <= acc["ci_high"]
    diff = ev["differences"]["mcgip"]["head.balanced_accuracy"]
    assert {"value", "ci_low", "ci_high", "p_value"} <= set(diff)
    assert ev["verdict"] in ("better", "worse", "cannot tell")
    json.dumps(report)  # JSON-ready for metrics.json


def test_exports_name_embedding_and_probabilities_and_match_pytorch(
    fitted: tuple[dict[str, Path], dict[str, Any], Any], tmp_path: Path
) -> None:
    encoders, _, _ = fitted
    path = encoders["mcgip"]
    head = head_beside(path)
    assert head is not None
    encoder, info = load_encoder(path)
    model = DiagnosisModel(NormalizedEncoder(encoder, **info["normalize"]), head).eval()
    x = torch.rand(5, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        emb, probs = model(x)
    # The graph's probabilities are the head's on the graph's embedding.
    np.testing.assert_allclose(probs.numpy(), head.probabilities(emb.numpy()), atol=1e-5)

    onnx_path = api.export_model(path, "onnx", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["embedding", "probabilities"]
    got_emb, got_probs = session.run(["embedding", "probabilities"], {"image": x.numpy()})
    assert np.abs(got_probs - probs.numpy()).max() <= 1e-5
    assert np.abs(got_emb - emb.numpy()).max() <= 1e-4 * max(1.0, float(emb.abs().max()))
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["mcgip.classes"]) == list(CLASSES)
    assert json.loads(meta["mcgip.preprocessing"])["size"] == 32
    assert float(meta["mcgip.temperature"]) == pytest.approx(head.temperature)

    ts = api.export_model(path, "torchscript", tmp_path / "m.pt")
    extra = {"mcgip.json": ""}
    module = torch.jit.load(str(ts), _extra_files=extra)
    with torch.no_grad():
        ts_emb, ts_probs = module(x)
    assert torch.allclose(ts_probs, probs, atol=1e-6)
    assert json.loads(json.loads(extra["mcgip.json"])["mcgip.classes"]) == list(CLASSES)

    st = api.export_model(path, "safetensors", tmp_path / "m.safetensors")
    with safe_open(str(st), framework="pt") as fh:
        assert fh.metadata()["mcgip.classes"] == json.dumps(list(CLASSES))
        np.testing.assert_allclose(fh.get_tensor("head.weight").numpy(), head.weight, rtol=1e-6)


def test_model_card_json_and_markdown(
    fitted: tuple[dict[str, Path], dict[str, Any], Any], tmp_path: Path
) -> None:
    encoders, report, _ = fitted
    card_path = api.export_model(encoders["mcgip"], "card", tmp_path / "card.json")
    card = json.loads(card_path.read_text())
    assert card["clinical_use"] == "NOT FOR CLINICAL USE"
    assert card["diagnosis"]["available"] and card["diagnosis"]["labels"] == list(CLASSES)
    assert card["intended_use"] and any("Not for clinical use" in x for x in card["limitations"])
    assert "temperature-scaled" in card["diagnosis"]["calibration_note"]
    md = api.export_model(encoders["mcgip"], "card-md", tmp_path / "card.md").read_text()
    assert "NOT FOR CLINICAL USE" in md and "## Limitations" in md and "## Diagnosis head" in md
    # With the training report the card carries the CV metrics with CIs against the baseline.
    from trainer.diagnosis.card import card_markdown, diagnosis_section
    from trainer.diagnosis.head import head_beside as beside

    section = diagnosis_section(beside(encoders["mcgip"]), report, run="mcgip")
    ev = section["diagnosis"]["evaluation"]
    assert (
        ev["conditions"]["baseline"]["head.accuracy"]["ci_high"]
        >= ev["conditions"]["baseline"]["head.accuracy"]["value"]
    )
    text = card_markdown({**card, **section})
    assert "head.balanced_accuracy" in text and "mcgip - baseline" in text and "Verdict" in text


def test_no_head_without_two_labelled_training_classes(tmp_path: Path) -> None:
    snap, _ = build_snapshot(tmp_path / "data", 8, size=40)
    from dataclasses import replace

    only = replace(snap, cases=tuple(replace(c, label="normal" if c.label else None) for c in snap.cases))
    prepared = prepare_data(TrainConfig.from_dict(CONFIG), only)
    enc = save_untrained_encoder(TrainConfig.from_dict(CONFIG), prepared, tmp_path / "e" / "encoder.pt")
    report = fit_heads({"mcgip": enc}, prepared, device=torch.device("cpu"))
    assert report["status"] == "insufficient_labels" and "at least two classes" in report["problems"][0]
    assert head_beside(enc) is None
    onnx = api.export_model(enc, "onnx", tmp_path / "e.onnx")
    names = [
        o.name for o in ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).get_outputs()
    ]
    assert names == ["embedding"]
