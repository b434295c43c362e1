"""Measured outcomes per chunk (`retrieval.outcomes.outcome_count`), counted once when a
chunk is written instead of at every search (a search counted them in every candidate's
text). Existing chunks are counted here, in batches of 5,000 by id, with today's patterns.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from retrieval.outcomes import MAX_OUTCOMES, outcome_count

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    op.add_column("chunks", sa.Column("outcomes", sa.SmallInteger(), nullable=True))
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(
            sa.text("SELECT id, text FROM chunks WHERE id > :after ORDER BY id LIMIT :n"),
            {"after": after, "n": BATCH},
        ).all()
        if not rows:
            return
        connection.execute(
            sa.text("UPDATE chunks SET outcomes = :outcomes WHERE id = :id"),
            [{"id": r.id, "outcomes": min(outcome_count(r.text), MAX_OUTCOMES)} for r in rows],
        )
        after = rows[-1].id


def downgrade() -> None:
    op.drop_column("chunks", "outcomes")
