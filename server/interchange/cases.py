"""How parsers learn about the target cases without touching the database themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CaseImage:
    """The stored image of a case, as far as gaze mapping needs it."""

    case_id: int
    width: int
    height: int
    window_center: float
    window_width: float


#: External id (e.g. a DICOM_ID) -> the case's image, or None when the dataset has no such case.
CaseLookup = Callable[[str], CaseImage | None]
