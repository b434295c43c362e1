"""The bias check: draft checks, flag acknowledgements, cycle reports, rating finalisation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created_at() -> sa.Column[datetime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.add_column("ratings", sa.Column("finalised_by", sa.Text(), nullable=True))
    op.add_column("ratings", sa.Column("finalised_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "draft_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("checked_by", sa.Text(), nullable=False),
        sa.Column("profile", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("flags", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["drafts.id"],
            name=op.f("fk_draft_checks_draft_id_drafts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draft_checks")),
    )
    op.create_index(
        "ix_draft_checks_draft_id_version", "draft_checks", ["draft_id", "version"], unique=False
    )
    op.create_table(
        "flag_acknowledgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.Integer(), nullable=False),
        sa.Column("flag", sa.String(length=16), nullable=False),
        sa.Column("acknowledged_by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _created_at(),
        sa.CheckConstraint(
            "length(btrim(reason)) > 0", name=op.f("ck_flag_acknowledgements_reason")
        ),
        sa.ForeignKeyConstraint(
            ["check_id"],
            ["draft_checks.id"],
            name=op.f("fk_flag_acknowledgements_check_id_draft_checks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_acknowledgements")),
        sa.UniqueConstraint(
            "check_id", "flag", name=op.f("uq_flag_acknowledgements_check_id_flag")
        ),
    )
    op.create_table(
        "bias_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("data_seen", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bias_reports")),
        sa.UniqueConstraint("cycle", "version", name=op.f("uq_bias_reports_cycle_version")),
    )


def downgrade() -> None:
    op.drop_table("bias_reports")
    op.drop_table("flag_acknowledgements")
    op.drop_index("ix_draft_checks_draft_id_version", table_name="draft_checks")
    op.drop_table("draft_checks")
    op.drop_column("ratings", "finalised_at")
    op.drop_column("ratings", "finalised_by")
