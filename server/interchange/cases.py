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
    #: Bits per stored pixel (8 for JPEG/PNG uploads, up to 16 for DICOM).
    bits_stored: int = 12
    #: Whether the stored image was decoded from a DICOM (then it has the DICOM's pixel size).
    from_dicom: bool = False
    #: (width, height) of the original image the data set's pixel coordinates refer to, when known.
    original: tuple[int, int] | None = None


#: External id (e.g. a DICOM_ID) -> the case's image, or None when the dataset has no such case.
CaseLookup = Callable[[str], CaseImage | None]
