"""Small datasets written straight to the database and blob store (no upload pipeline needed)."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from server.db import Database
from server.models import Case, Dataset, DiagnosisLabel, Pair, StoredImage, User
from server.storage import BlobStore


@dataclass(frozen=True)
class TinyDataset:
    dataset_id: int
    case_ids: list[int]


def make_dataset(
    db: Database, blobs: BlobStore, reader: User, *, n_cases: int = 8, name: str = "tiny"
) -> TinyDataset:
    """``n_cases`` 48x48 16-bit images, alternating labels a/b from ``reader``.

    Positive pairs (0, 2) and (1, 3), as far as those cases exist.
    """
    rng = np.random.default_rng(0)
    with db.session() as session:
        dataset = Dataset(name=name, label_set=["a", "b"], settings={"metric": "moments", "threshold": 0.9})
        session.add(dataset)
        session.flush()
        case_ids = []
        for i in range(n_cases):
            case = Case(dataset_id=dataset.id, title=f"case {i}", external_id=f"c{i}")
            session.add(case)
            session.flush()
            pixels = (rng.random((48, 48)) * 4000 + (i % 2) * 2000).astype(np.uint16)
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="PNG")
            storage = f"images/{case.id}"
            blobs.write(f"{storage}/pixels16.png", buf.getvalue())
            blobs.write(f"{storage}/display.png", buf.getvalue())
            session.add(
                StoredImage(
                    case_id=case.id,
                    format="png",
                    width=48,
                    height=48,
                    bits_stored=16,
                    photometric="MONOCHROME2",
                    value_offset=0.0,
                    value_scale=1.0,
                    window_center=3000.0,
                    window_width=6000.0,
                    sha256=hashlib.sha256(buf.getvalue()).hexdigest(),
                    storage_dir=storage,
                )
            )
            session.add(DiagnosisLabel(case_id=case.id, reader_id=reader.id, label="ab"[i % 2]))
            case_ids.append(case.id)
        for a, b in ((0, 2), (1, 3))[: n_cases - 2]:
            session.add(
                Pair(
                    dataset_id=dataset.id,
                    metric="moments",
                    case_a_id=case_ids[a],
                    case_b_id=case_ids[b],
                    score=0.95,
                    n_readers=1,
                    is_positive=True,
                )
            )
        return TinyDataset(dataset.id, case_ids)
