"""Job kinds: the spec union, the API's kind names, the worker's handlers and lanes agree."""

from __future__ import annotations

from typing import get_args, get_type_hints

import pytest
from pydantic import ValidationError

from server.db import Database
from server.jobs import queue
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
from server.models import Job, JobState
from server.settings import Settings
from server.worker.handlers import HANDLERS
from server.worker.runner import Worker


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


def test_each_handler_takes_the_spec_of_its_kind() -> None:
    for kind, handler in HANDLERS.items():
        hints = get_type_hints(handler)
        spec_type = [t for name, t in hints.items() if name not in ("ctx", "return")]
        assert spec_type == [SPECS[kind]], kind


def test_stored_params_that_do_not_fit_fail_the_job_for_good(db: Database, settings: Settings) -> None:
    job = queue.submit(db, EmbedSpec(model_id=1))
    with db.session() as session:
        row = session.get(Job, job.id)
        assert row is not None
        row.params = {"model_id": "three", "extra": 1}  # e.g. a row written before a spec changed
    assert Worker(settings, db=db).run_job(job.id)
    with db.session() as session:
        final = session.get(Job, job.id)
        assert final is not None
        assert final.state == JobState.failed and final.attempts == 1
        assert final.error is not None and final.error.startswith("invalid embed parameters: ")
