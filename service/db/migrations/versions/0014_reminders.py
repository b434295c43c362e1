"""Reminders (issue 16): every reminder message with its outcome (reminders: one row per
recipient, rule, task or day, and channel, UNIQUE, so a second run or a second worker can
never claim it again), and each person's choice to mute the non-essential ones
(reminder_preferences).

The CHECKs spell the names domain/reminders.py had on this date.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RULES = "'due_soon', 'overdue', 'digest'"
CHANNELS = "'email', 'slack', 'teams'"
STATUSES = "'pending', 'sending', 'sent', 'failed', 'unsure', 'skipped', 'gave_up'"


def _when(column: str, *, default: bool = False) -> sa.Column[object]:
    return sa.Column(
        column,
        sa.DateTime(timezone=True),
        server_default=sa.text("now()") if default else None,
        nullable=not default,
    )


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("cycle_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _when("next_attempt_at", default=True),
        _when("claimed_at"),
        _when("sent_at"),
        _when("created_at", default=True),
        _when("updated_at", default=True),
        sa.CheckConstraint(f"rule IN ({RULES})", name=op.f("ck_reminders_rule")),
        sa.CheckConstraint(f"channel IN ({CHANNELS})", name=op.f("ck_reminders_channel")),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_reminders_status")),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["people.id"],
            name=op.f("fk_reminders_recipient_id_people"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["cycle_tasks.id"],
            name=op.f("fk_reminders_task_id_cycle_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["review_cycles.id"],
            name=op.f("fk_reminders_cycle_id_review_cycles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
        sa.UniqueConstraint(
            "recipient_id",
            "rule",
            "key",
            "channel",
            name=op.f("uq_reminders_recipient_id_rule_key_channel"),
        ),
    )
    op.create_index(
        op.f("ix_reminders_status_next_attempt_at"),
        "reminders",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(op.f("ix_reminders_task_id"), "reminders", ["task_id"], unique=False)
    op.create_table(
        "reminder_preferences",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("mute_non_essential", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        _when("updated_at", default=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_reminder_preferences_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_reminder_preferences")),
    )


def downgrade() -> None:
    op.drop_table("reminder_preferences")
    op.drop_index(op.f("ix_reminders_task_id"), table_name="reminders")
    op.drop_index(op.f("ix_reminders_status_next_attempt_at"), table_name="reminders")
    op.drop_table("reminders")
