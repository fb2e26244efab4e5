"""never reuse ids: AUTOINCREMENT integer keys on SQLite

SQLite hands the highest id out again after that row is deleted unless the key is declared
AUTOINCREMENT, which only CREATE TABLE can do: each such table is rebuilt in batch mode (rows,
indexes and constraints copied; ``migrations/env.py`` turns foreign-key enforcement off around the
rebuild so dropping the old table cascades nothing). PostgreSQL sequences never reuse a value, so
there is nothing to do there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _integer_key_tables(autoincrement: bool) -> list[str]:
    """Tables whose key is one INTEGER column, with (or without) AUTOINCREMENT today."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    found = []
    for name in inspector.get_table_names():
        if name in ("alembic_version", "sqlite_sequence") or name.startswith("_alembic_tmp"):
            continue
        keys = inspector.get_pk_constraint(name)["constrained_columns"]
        if len(keys) != 1:
            continue
        column = next(c for c in inspector.get_columns(name) if c["name"] == keys[0])
        if not isinstance(column["type"], sa.Integer):
            continue
        fks = [fk for fk in inspector.get_foreign_keys(name) if keys[0] in fk["constrained_columns"]]
        if fks:
            continue  # the key is another table's id (one-to-one), not numbered here
        sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (name,))
        has = "AUTOINCREMENT" in (sql.scalar() or "").upper()
        if has == autoincrement:
            found.append(name)
    return found


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in _integer_key_tables(not autoincrement):
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
