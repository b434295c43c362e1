"""What each record says about its person's results (`evidence_features.RecordCues`),
found once at ingest so the cycle report reads small JSON instead of scanning every
record's text. NULL for records ingested before this revision: the report computes those
the first time it reads them and stores them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("records", sa.Column("cues", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("records", "cues")
