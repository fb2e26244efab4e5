"""Job kinds: the spec union, the API's kind names, the worker's handlers and lanes agree."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from server.jobs.kinds import (
    HEAVY_KINDS,
    IO_KINDS,
    LIGHT_KINDS,
    NEEDS_DATASET,
    SPECS,
    EmbedSpec,
    JobKind,
    PairsSpec,
    RetrainSpec,
    spec_of,
    validate_params,
)
from server.worker.handlers import HANDLERS


def test_every_kind_has_a_spec_a_handler_and_one_lane() -> None:
    kinds = set(get_args(JobKind))
    assert set(SPECS) == kinds == set(HANDLERS)
    assert kinds == LIGHT_KINDS | HEAVY_KINDS | IO_KINDS
    assert len(LIGHT_KINDS) + len(HEAVY_KINDS) + len(IO_KINDS) == len(kinds)
    assert {"session-features", "pairs"} == LIGHT_KINDS and {"pacs-import", "pacs-results"} == IO_KINDS
    assert {"pairs", "retrain", "pacs-import", "pacs-results"} == NEEDS_DATASET


def test_specs_round_trip_through_stored_params() -> None:
    for spec in (
        PairsSpec(metric="dhash", full=True),
        EmbedSpec(model_id=3),
        RetrainSpec(config={"name": "x"}),
    ):
        assert spec_of(spec.kind, spec.params()) == spec
    assert PairsSpec().params() == {"full": False}
    with pytest.raises(ValidationError):
        spec_of("embed", {"model_id": "three"})


def test_validate_params_names_the_field() -> None:
    params, errors = validate_params("export", {"model_id": 1, "format": "pickle"})
    assert [e["loc"] for e in errors] == [["body", "params", "format"]]
    _, errors = validate_params("retrain", {"config": {"train": {"batch_size": 0}}})
    assert ["body", "params", "config", "train", "batch_size"] in [e["loc"] for e in errors]
    params, errors = validate_params("retrain", {})
    assert errors == [] and params["config"]["train"]["batch_size"] > 0
