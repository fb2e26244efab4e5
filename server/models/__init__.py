"""All ORM models; importing this package registers every table on ``Base.metadata``."""

from server.models.base import Base, autoincrement_key, utcnow
from server.models.cases import Annotation, Assignment, Case, Dataset, ImageKind, StoredImage
from server.models.learning import AuditLog, Job, JobState, ModelVersion, Pair
from server.models.operations import CaseEmbedding, MinedSession, WorkerHeartbeat
from server.models.pacs import PacsImport, PacsReport, PacsUidLink
from server.models.reading import (
    DiagnosisLabel,
    GazeChunk,
    ReadingSession,
    SecondRead,
    SessionEvent,
    SessionFeatures,
    SessionStatus,
)
from server.models.users import Role, User

# Ids are never handed out twice: on SQLite an INTEGER PRIMARY KEY without AUTOINCREMENT reuses
# the highest id after that row is deleted (e.g. a session lost with its server), so a client that
# kept the old id would silently address a different row. PostgreSQL sequences never reuse.
for _table in Base.metadata.tables.values():
    if autoincrement_key(_table):
        _table.dialect_kwargs["sqlite_autoincrement"] = True

__all__ = [
    "Annotation",
    "Assignment",
    "AuditLog",
    "Base",
    "Case",
    "CaseEmbedding",
    "Dataset",
    "DiagnosisLabel",
    "GazeChunk",
    "ImageKind",
    "Job",
    "JobState",
    "MinedSession",
    "ModelVersion",
    "PacsImport",
    "PacsReport",
    "PacsUidLink",
    "Pair",
    "ReadingSession",
    "Role",
    "SecondRead",
    "SessionEvent",
    "SessionFeatures",
    "SessionStatus",
    "StoredImage",
    "User",
    "WorkerHeartbeat",
    "utcnow",
]
