"""The policy thresholds behind each decision, and the name of the API key that asked for it.

Revision ID: 0003
Revises: 0002

Both columns are nullable: decisions recorded before this revision keep NULL in both (their
thresholds were not recorded; the service had unnamed keys). A column is added only where it does
not exist yet: a database laid out by ``metadata.create_all`` of this code (as a database from
before versioning is stood in for, then stamped at 0001) already has it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns() -> list[sa.Column]:
    return [
        sa.Column("policy", sa.JSON, nullable=True),
        sa.Column("api_key_name", sa.String(100), nullable=True),
    ]


def upgrade() -> None:
    existing = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("decisions")}
    for column in _columns():
        if column.name not in existing:
            op.add_column("decisions", column)


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("decisions") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
