"""Dashboard API (admins only): gaze and pair statistics, and the retraining form's check.

Handlers parse, call ``server.dashboard.service`` / ``server.dashboard.training`` and return the
result; no state is changed here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server.apitypes import Id
from server.auth.scopes import require_scope
from server.dashboard import service
from server.dashboard.schemas import GazeStats, PairStats
from server.dashboard.training import RetrainForm, RetrainPlan, plan_retrain
from server.deps import AdminUser, SessionDep

router = APIRouter(prefix="/api", tags=["dashboard"])


@router.get("/stats/gaze", response_model=GazeStats, dependencies=[require_scope("read")])
def gaze_stats(
    session: SessionDep,
    _admin: AdminUser,
    dataset_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> GazeStats:
    """Sessions per reader and case, gaze source types and the calibration accuracy distribution."""
    return service.gaze_stats(session, dataset_id, limit=limit)


@router.get("/stats/pairs", response_model=PairStats, dependencies=[require_scope("read")])
def pair_stats(
    session: SessionDep,
    _admin: AdminUser,
    dataset_id: Id,
    metric: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> PairStats:
    """The dataset's pair graph: similarity histogram, positives per case, coverage."""
    return service.pair_stats(session, dataset_id, metric, limit=limit)


@router.post("/dashboard/retrain-plan", response_model=RetrainPlan, dependencies=[require_scope("read")])
def retrain_plan(form: RetrainForm, session: SessionDep, _admin: AdminUser) -> RetrainPlan:
    """Check the training form; returns the ``retrain`` job body for ``POST /api/jobs`` (queues nothing)."""
    return plan_retrain(session, form)
