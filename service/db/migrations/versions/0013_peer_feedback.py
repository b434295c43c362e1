"""Peer feedback (issue 16, second slice): the peers nominated for a subject in a cycle
(peer_nominations), the feedback requests (peer ones sent on the manager's approval,
upward ones, a report's about their manager, at the start) with their questions, answers,
status and the record a submitted answer became (feedback_requests), and the new task
kinds give_peer_feedback and give_upward_feedback in cycle_tasks' CHECK.

The CHECKs spell the names domain/phases.py had on this date.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TASK_KINDS = (
    "'write_self_reflection', 'nominate_peers', 'approve_nominations', "
    "'write_manager_feedback', 'acknowledge_review'"
)
TASK_KINDS = f"{OLD_TASK_KINDS}, 'give_peer_feedback', 'give_upward_feedback'"


def _people(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["people.id"], name=op.f(f"fk_{table}_{column}_people"), ondelete="CASCADE"
    )


def _cycle(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["cycle_id"],
        ["review_cycles.id"],
        name=op.f(f"fk_{table}_cycle_id_review_cycles"),
        ondelete="CASCADE",
    )


def _when(column: str, *, default: bool = False) -> sa.Column[object]:
    return sa.Column(
        column,
        sa.DateTime(timezone=True),
        server_default=sa.text("now()") if default else None,
        nullable=not default,
    )


def _task_kinds(names: str) -> None:
    op.drop_constraint(op.f("ck_cycle_tasks_kind"), "cycle_tasks", type_="check")
    op.create_check_constraint(op.f("ck_cycle_tasks_kind"), "cycle_tasks", f"kind IN ({names})")


def upgrade() -> None:
    _task_kinds(TASK_KINDS)
    op.create_table(
        "peer_nominations",
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.Text(), nullable=False),
        sa.Column("by_manager", sa.Boolean(), server_default="false", nullable=False),
        _when("created_at", default=True),
        sa.CheckConstraint("subject_id <> peer_id", name=op.f("ck_peer_nominations_not_self")),
        _cycle("peer_nominations"),
        _people("peer_nominations", "subject_id"),
        _people("peer_nominations", "peer_id"),
        sa.PrimaryKeyConstraint(
            "cycle_id", "subject_id", "peer_id", name=op.f("pk_peer_nominations")
        ),
    )
    op.create_index(
        op.f("ix_peer_nominations_peer_id"), "peer_nominations", ["peer_id"], unique=False
    )
    op.create_table(
        "feedback_requests",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), server_default="peer", nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("questions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "answers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        _when("saved_at"),
        _when("closed_at"),
        _when("created_at", default=True),
        sa.CheckConstraint(
            "status IN ('open', 'submitted', 'declined')",
            name=op.f("ck_feedback_requests_status"),
        ),
        sa.CheckConstraint("subject_id <> peer_id", name=op.f("ck_feedback_requests_not_self")),
        sa.CheckConstraint("kind IN ('peer', 'upward')", name=op.f("ck_feedback_requests_kind")),
        _cycle("feedback_requests"),
        _people("feedback_requests", "subject_id"),
        _people("feedback_requests", "peer_id"),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["cycle_tasks.id"],
            name=op.f("fk_feedback_requests_task_id_cycle_tasks"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_feedback_requests_record_id_records"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_requests")),
        sa.UniqueConstraint(
            "cycle_id",
            "kind",
            "subject_id",
            "peer_id",
            name=op.f("uq_feedback_requests_cycle_id_kind_subject_id_peer_id"),
        ),
    )
    op.create_index(
        op.f("ix_feedback_requests_peer_id"), "feedback_requests", ["peer_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("feedback_requests")
    op.drop_table("peer_nominations")
    op.execute(
        "DELETE FROM cycle_tasks WHERE kind IN ('give_peer_feedback', 'give_upward_feedback')"
    )
    _task_kinds(OLD_TASK_KINDS)
