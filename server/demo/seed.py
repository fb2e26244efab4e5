"""``mcgip demo seed``: demo accounts, synthetic cases, worklists and simulated gaze, idempotently."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.cases.service import assign, create_case
from server.demo.gaze import missing_reader_gaze, seed_reader_gaze
from server.models import Case, Dataset, ImageKind, Role, User
from server.settings import Settings
from server.storage import BlobStore
from server.users.service import create_user
from trainer.synthetic.images import CLASSES, generate_dataset

logger = logging.getLogger(__name__)

DEMO_DATASET = "synthetic-mammo-demo"
DEMO_ADMIN = "admin"
DEMO_READERS = ("reader1", "reader2")
CREDENTIALS_FILE = "demo-credentials.json"


@dataclass(frozen=True)
class SeedReport:
    credentials: dict[str, str]
    dataset_id: int
    cases_created: int
    cases_total: int
    sessions_created: int = 0


def _png16(image_u16: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image_u16).save(buf, format="PNG")  # type: ignore[arg-type]
    return buf.getvalue()


def demo_credentials(settings: Settings) -> dict[str, str]:
    """Demo passwords: from the environment, else generated once and kept (mode 600) in the data dir."""
    path = settings.data_dir / CREDENTIALS_FILE
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    creds = {
        DEMO_ADMIN: settings.demo_admin_password or stored.get(DEMO_ADMIN) or secrets.token_urlsafe(9),
    }
    for name in DEMO_READERS:
        creds[name] = settings.demo_reader_password or stored.get(name) or secrets.token_urlsafe(9)
    if creds != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(creds, indent=2))
        os.chmod(path, 0o600)
    return creds


def _ensure_user(session: Session, username: str, password: str, role: Role) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = create_user(session, username=username, password=password, role=role, display_name=username)
    return user


def read_in_demo(index: int) -> bool:
    """Whether the demo readers already read case ``index``: every other case, so that each reader's
    worklist starts with half of it unread (something to read) and half read (pairs to mine)."""
    return index % 2 == 0


def seed_demo(
    session: Session, settings: Settings, *, n_cases: int = 64, size: int = 256, seed: int = 0
) -> SeedReport:
    """Create (or complete) the demo: admin, two readers, a synthetic dataset assigned to both readers,
    and one finished, labelled simulated reading session per reader on every other case.

    Running it again adds only what is missing; when nothing is, it generates no images (a second
    ``make run`` starts in seconds).
    """
    creds = demo_credentials(settings)
    _ensure_user(session, DEMO_ADMIN, creds[DEMO_ADMIN], Role.admin)
    readers = [_ensure_user(session, name, creds[name], Role.reader) for name in DEMO_READERS]

    dataset = session.scalar(select(Dataset).where(Dataset.name == DEMO_DATASET))
    if dataset is None:
        dataset = Dataset(
            name=DEMO_DATASET,
            description="Synthetic radiograph-like images with masses and calcifications (demo).",
            label_set=list(CLASSES),
            image_kind=ImageKind.unstructured,
            settings={},
        )
        session.add(dataset)
        session.flush()

    wanted = [f"synthetic-{index:04d}" for index in range(n_cases)]
    to_read = {external_id for index, external_id in enumerate(wanted) if read_in_demo(index)}
    existing = set(session.scalars(select(Case.external_id).where(Case.dataset_id == dataset.id)))
    if existing.issuperset(wanted) and not missing_reader_gaze(session, readers, dataset.id, to_read):
        total = session.scalar(select(func.count(Case.id)).where(Case.dataset_id == dataset.id)) or 0
        return SeedReport(credentials=creds, dataset_id=dataset.id, cases_created=0, cases_total=int(total))

    blobs = BlobStore(settings.blob_dir)
    created = 0
    synthetic_by_id = {}
    for index, synthetic in enumerate(generate_dataset(n_cases, seed=seed, size=size)):
        external_id = wanted[index]
        synthetic_by_id[external_id] = synthetic
        if external_id in existing:
            continue
        case = create_case(
            session,
            blobs,
            dataset=dataset,
            data=_png16(synthetic.image),
            max_pixels=settings.max_image_pixels,
            uid_salt=settings.uid_salt,
            uploaded_by=None,
            external_id=external_id,
            title=f"Synthetic case {index + 1}",
            reference_label=synthetic.label,
        )
        assign(session, case, readers, priority=index)
        created += 1
    total = session.scalar(select(func.count(Case.id)).where(Case.dataset_id == dataset.id)) or 0
    stored = session.scalars(
        select(Case).where(Case.dataset_id == dataset.id, Case.external_id.in_(sorted(to_read)))
    ).unique()
    pairs = [(case, synthetic_by_id[case.external_id]) for case in stored if case.external_id]
    sessions = seed_reader_gaze(session, readers, sorted(pairs, key=lambda pair: pair[0].id))
    logger.info("demo: %d new cases, %d new simulated reading sessions", created, sessions)
    return SeedReport(
        credentials=creds,
        dataset_id=dataset.id,
        cases_created=created,
        cases_total=int(total),
        sessions_created=sessions,
    )


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / CREDENTIALS_FILE
