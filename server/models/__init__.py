"""All ORM models; importing this package registers every table on ``Base.metadata``."""

from server.models.base import Base, utcnow
from server.models.cases import Annotation, Assignment, Case, Dataset, ImageKind, StoredImage
from server.models.learning import AuditLog, Job, JobState, ModelVersion, Pair
from server.models.operations import CaseEmbedding, MinedSession, WorkerHeartbeat
from server.models.reading import (
    DiagnosisLabel,
    GazeChunk,
    ReadingSession,
    SessionEvent,
    SessionFeatures,
    SessionStatus,
)
from server.models.users import Role, User

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
    "Pair",
    "ReadingSession",
    "Role",
    "SessionEvent",
    "SessionFeatures",
    "SessionStatus",
    "StoredImage",
    "User",
    "WorkerHeartbeat",
    "utcnow",
]
