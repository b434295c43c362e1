"""Review cycle set-up and tasks (issue 16): a cycle's title, status (NULL: no set-up;
draft; started), time zone, participants rule (cut-off date, departments, levels, job
families), the reviews it asks for, the rating scale's labels, its questions per review
kind; its phases with their dates (cycle_phases); everyone's tasks (cycle_tasks).

The CHECKs spell the names domain/phases.py had on this date (a migration keeps the
schema of its day; a later revision changes them when the names grow).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PHASES = (
    "'self_reflection', 'peer_feedback', 'manager_review', 'calibration', 'release', 'sign_off'"
)
TASK_KINDS = (
    "'write_self_reflection', 'nominate_peers', 'approve_nominations', "
    "'write_manager_feedback', 'acknowledge_review'"
)


def _names(column: str) -> sa.Column[list[str]]:
    return sa.Column(column, postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False)


def upgrade() -> None:
    op.add_column("review_cycles", sa.Column("title", sa.Text(), nullable=True))
    op.add_column("review_cycles", sa.Column("status", sa.String(16), nullable=True))
    op.add_column("review_cycles", sa.Column("time_zone", sa.String(64), nullable=True))
    op.add_column("review_cycles", sa.Column("cutoff_on", sa.Date(), nullable=True))
    for column in ("departments", "levels", "job_families", "reviews", "scale_labels"):
        op.add_column("review_cycles", _names(column))
    op.add_column(
        "review_cycles",
        sa.Column("questions", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("review_cycles", sa.Column("copied_from", sa.Integer(), nullable=True))
    op.add_column("review_cycles", sa.Column("set_up_by", sa.Text(), nullable=True))
    op.add_column("review_cycles", sa.Column("started_by", sa.Text(), nullable=True))
    op.add_column(
        "review_cycles", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_foreign_key(
        op.f("fk_review_cycles_copied_from_review_cycles"),
        "review_cycles",
        "review_cycles",
        ["copied_from"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_check_constraint(
        op.f("ck_review_cycles_status"), "review_cycles", "status IN ('draft', 'started')"
    )
    op.create_table(
        "cycle_phases",
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("opens_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.CheckConstraint("opens_on <= due_on", name=op.f("ck_cycle_phases_dates")),
        sa.CheckConstraint(f"phase IN ({PHASES})", name=op.f("ck_cycle_phases_phase")),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["review_cycles.id"],
            name=op.f("fk_cycle_phases_cycle_id_review_cycles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cycle_id", "phase", name=op.f("pk_cycle_phases")),
    )
    op.create_table(
        "cycle_tasks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('open', 'done', 'declined')", name=op.f("ck_cycle_tasks_status")
        ),
        sa.CheckConstraint(f"kind IN ({TASK_KINDS})", name=op.f("ck_cycle_tasks_kind")),
        sa.CheckConstraint(f"phase IN ({PHASES})", name=op.f("ck_cycle_tasks_phase")),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["review_cycles.id"],
            name=op.f("fk_cycle_tasks_cycle_id_review_cycles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["people.id"],
            name=op.f("fk_cycle_tasks_assignee_id_people"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["people.id"],
            name=op.f("fk_cycle_tasks_subject_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycle_tasks")),
        sa.UniqueConstraint(
            "cycle_id",
            "kind",
            "assignee_id",
            "subject_id",
            name=op.f("uq_cycle_tasks_cycle_id_kind_assignee_id_subject_id"),
        ),
    )
    op.create_index(
        op.f("ix_cycle_tasks_assignee_id"), "cycle_tasks", ["assignee_id"], unique=False
    )
    op.create_index(
        "ix_cycle_tasks_cycle_phase", "cycle_tasks", ["cycle_id", "phase", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_table("cycle_tasks")
    op.drop_table("cycle_phases")
    op.drop_constraint(op.f("ck_review_cycles_status"), "review_cycles", type_="check")
    op.drop_constraint(
        op.f("fk_review_cycles_copied_from_review_cycles"), "review_cycles", type_="foreignkey"
    )
    for column in (
        "started_at",
        "started_by",
        "set_up_by",
        "copied_from",
        "questions",
        "scale_labels",
        "reviews",
        "job_families",
        "levels",
        "departments",
        "cutoff_on",
        "time_zone",
        "status",
        "title",
    ):
        op.drop_column("review_cycles", column)
