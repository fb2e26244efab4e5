"""Worker bookkeeping: live workers, mined sessions, case embeddings, the one-retrain-per-dataset rule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, created_at_column
from server.models.learning import Job

#: States in which a job holds its dataset's retrain slot.
ACTIVE_RETRAIN_WHERE = text("kind = 'retrain' AND state IN ('queued', 'running')")

# At most one queued or running retrain per dataset, enforced by the database itself so that two
# simultaneous triggers (on any number of web processes) cannot both insert a job: the loser gets an
# IntegrityError and answers 409 with the winner. Partial unique indexes exist on SQLite and PostgreSQL.
Index(
    "uq_jobs_active_retrain",
    Job.dataset_id,
    unique=True,
    sqlite_where=ACTIVE_RETRAIN_WHERE,
    postgresql_where=ACTIVE_RETRAIN_WHERE,
)


class WorkerHeartbeat(Base):
    """One running (or recently running) worker process and the job it is on."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(256), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = created_at_column()
    heartbeat_at: Mapped[datetime] = created_at_column()
    current_job_id: Mapped[int | None] = mapped_column(Integer)
    #: Capabilities reported at start (GPU count, kinds handled).
    info: Mapped[dict[str, Any]] = mapped_column(default=dict, nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MinedSession(Base):
    """A session whose gaze has been compared against the rest of its dataset for ``metric``."""

    __tablename__ = "pair_mined_sessions"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("reading_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    mined_at: Mapped[datetime] = created_at_column()


class CaseEmbedding(Base):
    """A case's image embedding under one model version (float32, L2-normalised)."""

    __tablename__ = "case_embeddings"
    __table_args__ = (UniqueConstraint("model_version_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    #: ``dim`` little-endian float32 values.
    vector: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    computed_at: Mapped[datetime] = created_at_column()
