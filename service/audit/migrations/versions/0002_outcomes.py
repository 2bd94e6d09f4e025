"""Outcomes of decided loans, their corrections, and challengers' shadow scores.

Revision ID: 0002
Revises: 0001

The tables are created only where they do not exist yet: a database laid out by
``metadata.create_all`` of this code (as a database from before versioning is stood in for, then
stamped at 0001) already has them, and must upgrade rather than fail.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("defaulted", sa.Boolean, nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("corrections", sa.Integer, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "outcome_corrections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("previous_defaulted", sa.Boolean, nullable=False),
        sa.Column("previous_observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("defaulted", sa.Boolean, nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        if_not_exists=True,
    )
    op.create_index(
        "ix_outcome_corrections_request_id",
        "outcome_corrections",
        ["request_id"],
        if_not_exists=True,
    )
    op.create_table(
        "shadow_scores",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("model_name", sa.String(200), primary_key=True),
        sa.Column("model_version", sa.String(50), primary_key=True),
        sa.Column("alias", sa.String(50), nullable=True),
        sa.Column("probability_of_default", sa.Float, nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("shadow_scores")
    op.drop_index("ix_outcome_corrections_request_id", table_name="outcome_corrections")
    op.drop_table("outcome_corrections")
    op.drop_table("outcomes")
