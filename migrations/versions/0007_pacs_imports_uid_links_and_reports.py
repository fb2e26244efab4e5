"""pacs imports, uid links and reports

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:04:03.474140
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pacs_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("sop_key", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_pacs_imports_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_pacs_imports_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_pacs_imports_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pacs_imports")),
        sa.UniqueConstraint("case_id", name=op.f("uq_pacs_imports_case_id")),
        sa.UniqueConstraint("dataset_id", "sop_key", name=op.f("uq_pacs_imports_dataset_id_sop_key")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("pacs_imports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pacs_imports_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pacs_imports_job_id"), ["job_id"], unique=False)

    op.create_table(
        "pacs_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("sr_series_uid", sa.String(length=64), nullable=False),
        sa.Column("sr_sop_uid", sa.String(length=64), nullable=False),
        sa.Column("destination_url", sa.String(length=512), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_pacs_reports_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_pacs_reports_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pacs_reports")),
        sa.UniqueConstraint("case_id", "digest", name=op.f("uq_pacs_reports_case_id_digest")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("pacs_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pacs_reports_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pacs_reports_job_id"), ["job_id"], unique=False)

    op.create_table(
        "pacs_uid_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("source_url", sa.String(length=512), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("original_study_uid", sa.String(length=64), nullable=False),
        sa.Column("original_series_uid", sa.String(length=64), nullable=False),
        sa.Column("original_sop_uid", sa.String(length=64), nullable=False),
        sa.Column("deid_study_uid", sa.String(length=64), nullable=False),
        sa.Column("deid_series_uid", sa.String(length=64), nullable=False),
        sa.Column("deid_sop_uid", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_pacs_uid_links_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pacs_uid_links")),
        sa.UniqueConstraint("case_id", name=op.f("uq_pacs_uid_links_case_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("pacs_uid_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pacs_uid_links_deid_sop_uid"), ["deid_sop_uid"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_pacs_uid_links_original_study_uid"), ["original_study_uid"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pacs_uid_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pacs_uid_links_original_study_uid"))
        batch_op.drop_index(batch_op.f("ix_pacs_uid_links_deid_sop_uid"))

    op.drop_table("pacs_uid_links")
    with op.batch_alter_table("pacs_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pacs_reports_job_id"))
        batch_op.drop_index(batch_op.f("ix_pacs_reports_case_id"))

    op.drop_table("pacs_reports")
    with op.batch_alter_table("pacs_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pacs_imports_job_id"))
        batch_op.drop_index(batch_op.f("ix_pacs_imports_dataset_id"))

    op.drop_table("pacs_imports")
