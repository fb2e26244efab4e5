"""All ORM models; importing this package registers every table on ``Base.metadata``."""

from server.models.base import Base, utcnow
from server.models.cases import Assignment, Case, Dataset, ImageKind, StoredImage
from server.models.learning import AuditLog, Job, JobState, ModelVersion, Pair
from server.models.reading import (
    DiagnosisLabel,
    GazeChunk,
    ReadingSession,
    SessionFeatures,
    SessionStatus,
)
from server.models.users import Role, User

__all__ = [
    "Assignment",
    "AuditLog",
    "Base",
    "Case",
    "Dataset",
    "DiagnosisLabel",
    "GazeChunk",
    "ImageKind",
    "Job",
    "JobState",
    "ModelVersion",
    "Pair",
    "ReadingSession",
    "Role",
    "SessionFeatures",
    "SessionStatus",
    "StoredImage",
    "User",
    "utcnow",
]
