"""Promotion nominations and calibration tasks (issue 16): a manager's nomination of a
report for promotion in a cycle (promotion_nominations), and the task kinds
write_promotion_packet and calibrate_cohort in cycle_tasks' CHECK.

The CHECK spells the names domain/phases.py had on this date.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TASK_KINDS = (
    "'write_self_reflection', 'nominate_peers', 'approve_nominations', "
    "'write_manager_feedback', 'acknowledge_review', 'give_peer_feedback', "
    "'give_upward_feedback'"
)
TASK_KINDS = f"{OLD_TASK_KINDS}, 'write_promotion_packet', 'calibrate_cohort'"


def _task_kinds(names: str) -> None:
    op.drop_constraint(op.f("ck_cycle_tasks_kind"), "cycle_tasks", type_="check")
    op.create_check_constraint(op.f("ck_cycle_tasks_kind"), "cycle_tasks", f"kind IN ({names})")


def _when(column: str) -> sa.Column[object]:
    return sa.Column(
        column, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    _task_kinds(TASK_KINDS)
    op.create_table(
        "promotion_nominations",
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("nominated_by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.CheckConstraint(
            "char_length(reason) <= 1000", name=op.f("ck_promotion_nominations_reason_length")
        ),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["review_cycles.id"],
            name=op.f("fk_promotion_nominations_cycle_id_review_cycles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["people.id"],
            name=op.f("fk_promotion_nominations_subject_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cycle_id", "subject_id", name=op.f("pk_promotion_nominations")),
    )


def downgrade() -> None:
    op.drop_table("promotion_nominations")
    op.execute(
        "DELETE FROM cycle_tasks WHERE kind IN ('write_promotion_packet', 'calibrate_cohort')"
    )
    _task_kinds(OLD_TASK_KINDS)
