"""Release and sign-off (issue 16): a phase's closing (cycle_phases.closed_at, closed_by),
a cycle's releases to its employees, by department or whole (cycle_releases), and each
employee's acknowledgement of their released review with a comment
(review_acknowledgements).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _cycle(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["cycle_id"],
        ["review_cycles.id"],
        name=op.f(f"fk_{table}_cycle_id_review_cycles"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.add_column("cycle_phases", sa.Column("closed_at", sa.DateTime(timezone=True)))
    op.add_column("cycle_phases", sa.Column("closed_by", sa.Text()))
    op.create_table(
        "cycle_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(128), nullable=True),
        sa.Column("released_by", sa.Text(), nullable=False),
        sa.Column(
            "released_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        _cycle("cycle_releases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycle_releases")),
        sa.UniqueConstraint(
            "cycle_id", "department", name=op.f("uq_cycle_releases_cycle_id_department")
        ),
    )
    op.create_index(
        "uq_cycle_releases_whole",
        "cycle_releases",
        ["cycle_id"],
        unique=True,
        postgresql_where=sa.text("department IS NULL"),
    )
    op.create_table(
        "review_acknowledgements",
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column(
            "acknowledged_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("comment_at", sa.DateTime(timezone=True), nullable=True),
        _cycle("review_acknowledgements"),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_review_acknowledgements_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cycle_id", "person_id", name=op.f("pk_review_acknowledgements")),
    )


def downgrade() -> None:
    op.drop_table("review_acknowledgements")
    op.drop_index("uq_cycle_releases_whole", table_name="cycle_releases")
    op.drop_table("cycle_releases")
    op.drop_column("cycle_phases", "closed_by")
    op.drop_column("cycle_phases", "closed_at")
