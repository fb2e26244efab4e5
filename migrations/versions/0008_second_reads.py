"""second reads: the model's probabilities shown after a reader's diagnosis, and the reader's answer

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "second_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("reader_label", sa.String(length=64), nullable=False),
        sa.Column("model_label", sa.String(length=64), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("calibration", sa.String(length=512), nullable=True),
        sa.Column("choice", sa.String(length=16), nullable=True),
        sa.Column("amended_label", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["reading_sessions.id"],
            name=op.f("fk_second_reads_session_id_reading_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_second_reads_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"], ["users.id"], name=op.f("fk_second_reads_reader_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_second_reads_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_second_reads")),
        sa.UniqueConstraint("session_id", name=op.f("uq_second_reads_session_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_second_reads_case_id"), "second_reads", ["case_id"], unique=False)
    op.create_index(op.f("ix_second_reads_reader_id"), "second_reads", ["reader_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_second_reads_reader_id"), table_name="second_reads")
    op.drop_index(op.f("ix_second_reads_case_id"), table_name="second_reads")
    op.drop_table("second_reads")
