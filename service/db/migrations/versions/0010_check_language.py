"""The language profile a check read, with the rules and names it was read with, so the
cycle's report rebuilds it instead of profiling the draft version again.

`draft_checks.language` (JSONB, `service/bias/stored_language.StoredLanguage`):
{"revision", "names", "measures", "flags"}. One column rather than a revision column
beside the flags: the flags mean nothing without the rules that raised them, so they are
written, read and replaced as one value, and a row holds either all of it or nothing.
`measures` repeats the check's `profile` so that the language stands alone: when the
rules change, the report replaces a check's language, never its `profile` or `flags`
(what the gate and the acknowledgements read). NULL for checks made before this
revision: the report profiles those drafts again and fills it in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("draft_checks", sa.Column("language", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("draft_checks", "language")
