"""A data set's own image files: original sizes, and cases created from them on import.

MIMIC-CXR keeps images as ``files/pXX/p<subject>/s<study>/<dicom_id>.dcm`` (MIMIC-CXR-JPG: the
same with ``.jpg``); the file name without extension is the external id the gaze files use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from PIL import Image
from sqlalchemy.orm import Session

from server.cases.service import create_case
from server.exceptions import DomainError
from server.interchange.cases import CaseImage
from server.models import Dataset
from server.storage import BlobStore

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".dcm", ".dicom", ".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class CaseSource:
    """Where and how new cases are stored (the upload path's settings)."""

    blobs: BlobStore
    max_pixels: int
    uid_salt: bytes


class ImageFolder:
    """The image files under a folder, by file stem (DICOMs preferred over JPEG/PNG)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, Path] = {}
        for path in sorted(root.rglob("*")):
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES and path.is_file():
                known = self.files.get(path.stem)
                if known is None or (
                    known.suffix.lower() not in (".dcm", ".dicom") and suffix in (".dcm", ".dicom")
                ):
                    self.files[path.stem] = path

    def original_size(self, external_id: str) -> tuple[int, int] | None:
        """(width, height) of the image file, from the DICOM header or the image header."""
        path = self.files.get(external_id)
        if path is None:
            return None
        try:
            if path.suffix.lower() in (".dcm", ".dicom"):
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                return int(ds.Columns), int(ds.Rows)
            with Image.open(path) as image:
                return image.size
        except (OSError, ValueError, AttributeError) as exc:
            logger.warning("cannot read the size of %s: %s", path, exc)
            return None

    def creator(
        self, session: Session, dataset: Dataset, source: CaseSource, failures: dict[str, str]
    ) -> Callable[[str], CaseImage | None]:
        """A function creating the case for an external id from its file (through the upload path:
        decode, de-identify, store); failures are recorded by id."""

        def create(external_id: str) -> CaseImage | None:
            path = self.files.get(external_id)
            if path is None:
                return None
            try:
                case = create_case(
                    session,
                    source.blobs,
                    dataset=dataset,
                    data=path.read_bytes(),
                    max_pixels=source.max_pixels,
                    uid_salt=source.uid_salt,
                    uploaded_by=None,
                    external_id=external_id,
                    title=external_id,
                )
            except DomainError as exc:
                failures[external_id] = f"{path}: {exc.detail}"
                return None
            image = case.image
            assert image is not None
            original = (image.width, image.height) if image.has_dicom else self.original_size(external_id)
            return CaseImage(
                case.id,
                image.width,
                image.height,
                image.window_center,
                image.window_width,
                image.bits_stored,
                image.has_dicom,
                original,
            )

        return create
