"""typed dataset settings: store every dataset's settings in their validated, complete form

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:40:00.000000

Rows are read through ``DatasetSettings`` (defaults filled in, tuples as lists). A top-level key that
does not validate (unknown, or a bad value) is dropped, with a warning naming it, so the dataset
falls back to that setting's default instead of failing every job that reads it. Idempotent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.datasets.settings import DatasetSettings

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_datasets = sa.table("datasets", sa.column("id", sa.Integer), sa.column("settings", sa.JSON))


def upgrade() -> None:
    conn = op.get_bind()
    for dataset_id, raw in conn.execute(sa.select(_datasets.c.id, _datasets.c.settings)).all():
        normalised = DatasetSettings.stored(raw, dataset_id=dataset_id).to_json()
        if normalised != raw:
            conn.execute(_datasets.update().where(_datasets.c.id == dataset_id).values(settings=normalised))


def downgrade() -> None:
    # The complete form means the same as the sparse one it replaced: nothing to undo.
    pass
