"""reading room: skipped assignments, diagnosis history, session quality gate

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("diagnosis_labels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("history", sa.JSON(), nullable=True))
    with op.batch_alter_table("reading_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quality_flag", sa.String(length=256), nullable=True))
        batch_op.add_column(
            sa.Column("quality_override", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("reading_sessions", schema=None) as batch_op:
        batch_op.drop_column("quality_override")
        batch_op.drop_column("quality_flag")
    with op.batch_alter_table("diagnosis_labels", schema=None) as batch_op:
        batch_op.drop_column("history")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("skipped_at")
