"""The common form every decoder (PNG/JPEG via Pillow, DICOM via pydicom) hands to ingest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass
class DecodedImage:
    """One decoded grayscale frame before encoding for storage.

    Attributes:
        values: (H, W) numeric array of original stored values (before rescale slope/intercept);
            colour sources are already converted to luma.
        slope: Rescale slope: modality value = values * slope + intercept.
        intercept: Rescale intercept.
        bits_stored: Bits per sample of the source (8 or 16 for PNG/JPEG; BitsStored for DICOM).
        photometric: Photometric interpretation of the source ("MONOCHROME1", "MONOCHROME2", "RGB",
            "YBR_FULL_422", "PALETTE COLOR", ...).
        invert: Whether high values are shown dark (MONOCHROME1).
        tag_window: (center, width) in modality units from the file, if it has a usable one.
        full_range: (lo, hi) stored-value range to show by default when there is no tag window
            (8-bit sources: 0..255, shown unchanged); None selects the percentile window.
        modality: DICOM Modality, None for PNG/JPEG.
        metadata: Non-PHI descriptive items (JSON-serialisable).
        deidentified_dicom: De-identified DICOM file bytes (DICOM sources only).
        deidentified_uids: (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) of
            ``deidentified_dicom`` (DICOM sources only; "" where the file has none).
    """

    values: npt.NDArray[np.generic]
    slope: float = 1.0
    intercept: float = 0.0
    bits_stored: int = 8
    photometric: str = "MONOCHROME2"
    invert: bool = False
    tag_window: tuple[float, float] | None = None
    full_range: tuple[int, int] | None = None
    modality: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    deidentified_dicom: bytes | None = None
    deidentified_uids: tuple[str, str, str] | None = None


# ITU-R BT.601 luma weights: the ones Pillow's RGB -> L conversion uses, so PNG/JPEG and DICOM colour
# sources become gray the same way.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def rgb_to_gray(rgb: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """Luma of an (H, W, 3) RGB array, rounded and kept in the input's dtype.

    Args:
        rgb: (H, W, 3) integer or float array.

    Returns:
        (H, W) array of the same dtype.
    """
    gray = rgb.astype(np.float64) @ LUMA_WEIGHTS
    if np.issubdtype(rgb.dtype, np.integer):
        info = np.iinfo(rgb.dtype.type)  # type: ignore[type-var]
        return np.clip(np.rint(gray), info.min, info.max).astype(rgb.dtype)
    return gray.astype(rgb.dtype)
