"""Reading sessions, the gaze they record and the diagnoses readers give."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, created_at_column


class SessionStatus(enum.StrEnum):
    open = "open"
    finished = "finished"
    aborted = "aborted"
    #: Left open without gaze or activity for longer than the dataset's idle limit (set by the worker).
    abandoned = "abandoned"


class ReadingSession(Base):
    __tablename__ = "reading_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: Gaze source: mouse, replay, webcam, tracker, import, simulated.
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    #: Source details: calibration/validation accuracy, tracker model, import provenance, ...
    source_info: Mapped[dict[str, Any]] = mapped_column(default=dict, nullable=False)
    status: Mapped[SessionStatus] = mapped_column(
        Enum(SessionStatus, native_enum=False, length=16), default=SessionStatus.open, nullable=False
    )
    #: Screen and display geometry reported by the client (size, dpr, physical size, distance).
    display_info: Mapped[dict[str, Any]] = mapped_column(default=dict, nullable=False)
    started_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Samples stored so far (sum over chunks), kept in step with chunk inserts.
    sample_count: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    #: Why the quality gate keeps this session out of pair mining (None: it passed or was not checked).
    quality_flag: Mapped[str | None] = mapped_column(String(256))
    #: An admin let a flagged session into pair mining anyway.
    quality_override: Mapped[bool] = mapped_column(default=False, nullable=False)


class GazeChunk(Base):
    """One received frame of samples, stored compactly; unique on (session, seq)."""

    __tablename__ = "gaze_chunks"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("reading_sessions.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    n_samples: Mapped[int] = mapped_column(Integer, nullable=False)
    t_first_ms: Mapped[float] = mapped_column(Float, nullable=False)
    t_last_ms: Mapped[float] = mapped_column(Float, nullable=False)
    #: Layout version of ``data`` (see docs/gaze-protocol.md).
    encoding: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    received_at: Mapped[datetime] = created_at_column()


class DiagnosisLabel(Base):
    """A reader's diagnosis for a case, given in a reading session."""

    __tablename__ = "diagnosis_labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("reading_sessions.id", ondelete="SET NULL"), unique=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64), nullable=False)
    confidence: Mapped[float | None] = mapped_column(Float)
    #: Optional finding box in image pixels: {"x0", "y0", "x1", "y1"}.
    finding_box: Mapped[dict[str, Any] | None] = mapped_column()
    #: Labels as a source data set published them (e.g. REFLACX per-abnormality certainty), when the
    #: diagnosis was imported: {"reflacx": {"certainty": {...}, "threshold": 3, ...}}.
    attributes: Mapped[dict[str, Any] | None] = mapped_column()
    #: Earlier versions of this diagnosis, oldest first: {"label", "confidence", "finding_box", "at"}.
    history: Mapped[list[Any] | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()


class SessionEvent(Base):
    """Something that happened during a reading session, on the session's gaze clock.

    Imported dictation transcripts are stored here (kind ``transcript``: one phrase or word with its
    start and end), so speech lines up with the gaze samples of the same session.
    """

    __tablename__ = "session_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("reading_sessions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    #: Start and end on the samples' ``t_ms`` clock (ms).
    t_ms: Mapped[float] = mapped_column(Float, nullable=False)
    t_end_ms: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text, default="", nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, nullable=False)


class SessionFeatures(Base):
    """Per-session gaze features, computed once from the raw chunks and reused by pair mining."""

    __tablename__ = "session_features"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("reading_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    computed_at: Mapped[datetime] = created_at_column()


class SecondRead(Base):
    """The model's calibrated probabilities shown to a reader after their diagnosis (AI second read),
    and what the reader made of them. The reader's own diagnosis stays in ``DiagnosisLabel``; an
    amendment is kept here, so reader-alone and reader-with-AI can both be scored."""

    __tablename__ = "second_reads"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("reading_sessions.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    #: The reader's submitted diagnosis when the probabilities were shown.
    reader_label: Mapped[str] = mapped_column(String(64), nullable=False)
    model_label: Mapped[str] = mapped_column(String(64), nullable=False)
    probabilities: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    calibration: Mapped[str | None] = mapped_column(String(512))
    #: ``agree`` | ``disagree`` | ``amend``; None until the reader answers.
    choice: Mapped[str | None] = mapped_column(String(16))
    #: The diagnosis after seeing the model (``amend`` only).
    amended_label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
