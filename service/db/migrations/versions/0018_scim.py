"""SCIM 2.0 provisioning (issue 17): the identity provider's view of each person it
provisions (scim_users: its userName, externalId and the attributes it sent, within the
schema fairdraft publishes; a SCIM DELETE hides the user from SCIM and deactivates the
person, whose row, reviews and evidence stay), and its groups with their members
(scim_groups, scim_group_members).

A person's SCIM id is their people.id as text: stable, and every person (from people.csv
too) is a SCIM User, so an identity provider can match the people already there.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(column: str, *, nullable: bool = False) -> sa.Column[object]:
    default = None if nullable else sa.text("now()")
    return sa.Column(column, sa.DateTime(timezone=True), server_default=default, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "scim_users",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("resource", JSONB(), server_default="{}", nullable=False),
        _when("deleted_at", nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_scim_users_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_scim_users")),
    )
    # userName is unique without regard to case (RFC 7643 §4.1.1: caseExact false).
    op.create_index(
        "ux_scim_users_user_name",
        "scim_users",
        [sa.text("lower(user_name)")],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index("ix_scim_users_external_id", "scim_users", ["external_id"])
    op.create_table(
        "scim_groups",
        sa.Column(
            "id", UUID(as_uuid=True), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("resource", JSONB(), server_default="{}", nullable=False),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_groups")),
    )
    op.create_index("ix_scim_groups_display_name", "scim_groups", [sa.text("lower(display_name)")])
    op.create_table(
        "scim_group_members",
        sa.Column("group_id", UUID(as_uuid=True), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["scim_groups.id"],
            name=op.f("fk_scim_group_members_group_id_scim_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_scim_group_members_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "person_id", name=op.f("pk_scim_group_members")),
    )
    op.create_index("ix_scim_group_members_person_id", "scim_group_members", ["person_id"])


def downgrade() -> None:
    op.drop_table("scim_group_members")
    op.drop_table("scim_groups")
    op.drop_table("scim_users")
