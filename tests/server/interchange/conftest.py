"""Fixtures for gaze import/export: a dataset with cases known by external id, readers, files."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from server.db import Database
from server.models import Case, Dataset, StoredImage
from tests.conftest import Users

#: External id -> (width, height) of the cases the tests import into.
CASES = {"dcm-a": (200, 100), "dcm-b": (120, 160), "dcm-c": (64, 64)}
LABELS = ["normal", "abnormal"]


@dataclass
class World:
    db: Database
    users: Users
    dataset: str
    case_ids: dict[str, int]


@pytest.fixture
def world(db: Database, users: Users) -> World:
    with db.session() as session:
        dataset = Dataset(name="cxr", label_set=LABELS)
        session.add(dataset)
        session.flush()
        ids = {}
        for external_id, (width, height) in CASES.items():
            case = Case(dataset_id=dataset.id, external_id=external_id, title=external_id)
            session.add(case)
            session.flush()
            session.add(
                StoredImage(
                    case_id=case.id,
                    format="png",
                    width=width,
                    height=height,
                    bits_stored=12,
                    photometric="MONOCHROME2",
                    value_offset=0.0,
                    value_scale=1.0,
                    window_center=2048.0,
                    window_width=4096.0,
                    sha256="0" * 64,
                    storage_dir=f"images/{case.id}",
                )
            )
            ids[external_id] = case.id
    return World(db=db, users=users, dataset="cxr", case_ids=ids)
