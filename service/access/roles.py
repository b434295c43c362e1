"""Granting and revoking the HR admin role: the one role the reporting tree cannot tell."""

from sqlalchemy import Connection, delete
from sqlalchemy.dialects.postgresql import insert

from service.audit import audit
from service.db.models import PersonRole

HR_ADMIN = "hr_admin"


def grant_hr_admin(connection: Connection, person_id: int, *, actor: str) -> None:
    """Idempotent; audited each time it is asked for."""
    connection.execute(
        insert(PersonRole)
        .values(person_id=person_id, role=HR_ADMIN, granted_by=actor)
        .on_conflict_do_nothing()
    )
    audit(
        connection,
        actor=actor,
        action="role.granted",
        entity="person",
        entity_id=str(person_id),
        after={"role": HR_ADMIN},
    )


def revoke_hr_admin(connection: Connection, person_id: int, *, actor: str) -> None:
    connection.execute(
        delete(PersonRole).where(PersonRole.person_id == person_id, PersonRole.role == HR_ADMIN)
    )
    audit(
        connection,
        actor=actor,
        action="role.revoked",
        entity="person",
        entity_id=str(person_id),
        before={"role": HR_ADMIN},
    )
