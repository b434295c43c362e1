"""Connectors and people's history (issue 17): each connector's cursor and full pass
(connector_state, and the records a full pass has seen so far: connector_seen),
its runs (connector_runs), the identities sources name and whom they are matched to
(external_identities), people's per-source opt-outs (source_opt_outs); leavers kept but
inactive (people.active, people.left_on); one person an email whatever its case, and the
single sign-on subject a person is bound to (people.sso_subject); who managed whom when
(manager_history), written
by a trigger on people so every way people change (people.csv, HRIS exports, SCIM) keeps it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A person's first manager opens a spell; a change closes the open one and opens the next.
MANAGER_HISTORY_FUNCTION = """
CREATE FUNCTION record_manager_spell() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.manager_id IS NOT DISTINCT FROM OLD.manager_id THEN
            RETURN NEW;
        END IF;
        UPDATE manager_history SET ended_at = now()
        WHERE person_id = NEW.id AND ended_at IS NULL;
    END IF;
    INSERT INTO manager_history (person_id, manager_id) VALUES (NEW.id, NEW.manager_id);
    RETURN NEW;
END;
$$
"""
MANAGER_HISTORY_TRIGGER = """
CREATE TRIGGER people_manager_history
AFTER INSERT OR UPDATE OF manager_id ON people
FOR EACH ROW EXECUTE FUNCTION record_manager_spell()
"""


def _when(column: str) -> sa.Column[object]:
    return sa.Column(
        column, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _people(table: str, column: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["people.id"], name=op.f(f"fk_{table}_{column}_people"), ondelete=ondelete
    )


def upgrade() -> None:
    op.add_column(
        "people", sa.Column("active", sa.Boolean(), server_default="true", nullable=False)
    )
    op.add_column("people", sa.Column("left_on", sa.Date(), nullable=True))
    # The provider's `sub` a person first signed in with (service/access/sso.py): a later
    # sign-in under another subject is refused, so an email moved to another account at
    # the provider (or by a SCIM client) does not move the person with it.
    op.add_column("people", sa.Column("sso_subject", sa.String(255), nullable=True))
    op.create_unique_constraint(op.f("uq_people_sso_subject"), "people", ["sso_subject"])
    # One person an address, whatever its case: people.csv always stored it lower-case,
    # SCIM and the sign-in compare without case.
    op.execute("UPDATE people SET email = lower(email) WHERE email <> lower(email)")
    op.create_index("uq_people_email_lower", "people", [sa.text("lower(email)")], unique=True)
    _manager_history()
    op.create_table(
        "connector_state",
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("cursor", JSONB(), server_default="{}", nullable=False),
        sa.Column("full_next", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("pass_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pass_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_by", sa.Text(), nullable=True),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("connector", name=op.f("pk_connector_state")),
    )
    op.create_table(
        "connector_seen",
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("connector", "external_id", name=op.f("pk_connector_seen")),
    )
    _connector_runs()
    _external_identities()
    op.create_table(
        "source_opt_outs",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        _when("created_at"),
        _people("source_opt_outs", "person_id", "CASCADE"),
        sa.PrimaryKeyConstraint("person_id", "source", name=op.f("pk_source_opt_outs")),
    )


def _manager_history() -> None:
    op.create_table(
        "manager_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        _when("started_at"),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        _people("manager_history", "person_id", "CASCADE"),
        _people("manager_history", "manager_id", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manager_history")),
    )
    op.create_index(
        "ix_manager_history_person_id_started_at", "manager_history", ["person_id", "started_at"]
    )
    op.execute(
        "INSERT INTO manager_history (person_id, manager_id, started_at) "
        "SELECT id, manager_id, created_at FROM people"
    )
    op.execute(MANAGER_HISTORY_FUNCTION)
    op.execute(MANAGER_HISTORY_TRIGGER)


def _connector_runs() -> None:
    counts = (
        "fetched",
        "inserted",
        "updated",
        "unchanged",
        "deleted",
        "skipped",
        "chunks_embedded",
        "rate_limit_waits",
    )
    op.create_table(
        "connector_runs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("full", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), server_default="running", nullable=False),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in counts),
        sa.Column("skip_reasons", JSONB(), server_default="{}", nullable=False),
        sa.Column("waited_s", sa.Float(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _when("started_at"),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'paused', 'failed')",
            name=op.f("ck_connector_runs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_runs")),
    )
    op.create_index(
        "ix_connector_runs_connector_started_at", "connector_runs", ["connector", "started_at"]
    )


def _external_identities() -> None:
    op.create_table(
        "external_identities",
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(256), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("matched_by", sa.String(16), nullable=True),
        sa.Column("records_waiting", sa.Integer(), server_default="0", nullable=False),
        _when("first_seen"),
        _when("last_seen"),
        sa.CheckConstraint(
            "matched_by IN ('email', 'csv', 'hand', 'refused')",
            name=op.f("ck_external_identities_matched_by"),
        ),
        _people("external_identities", "person_id", "SET NULL"),
        sa.PrimaryKeyConstraint("system", "external_id", name=op.f("pk_external_identities")),
    )
    op.create_index(op.f("ix_external_identities_person_id"), "external_identities", ["person_id"])


def downgrade() -> None:
    op.drop_table("source_opt_outs")
    op.drop_table("external_identities")
    op.drop_table("connector_runs")
    op.drop_table("connector_seen")
    op.drop_table("connector_state")
    op.execute("DROP TRIGGER people_manager_history ON people")
    op.execute("DROP FUNCTION record_manager_spell()")
    op.drop_table("manager_history")
    op.drop_index("uq_people_email_lower", table_name="people")
    op.drop_constraint(op.f("uq_people_sso_subject"), "people", type_="unique")
    op.drop_column("people", "sso_subject")
    op.drop_column("people", "left_on")
    op.drop_column("people", "active")
