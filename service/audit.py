"""The audit trail: every write that matters leaves who, when, what, before and after."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert

from service.db.models import AuditEvent


def audit_rows(
    connection: Connection,
    *,
    actor: str,
    action: str,
    entity: str,
    changes: Sequence[tuple[str | None, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    """Write one event per (entity_id, before, after) in a single statement."""
    if not changes:
        return
    rows = [
        {
            "actor": actor,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "before": before,
            "after": after,
        }
        for entity_id, before, after in changes
    ]
    connection.execute(insert(AuditEvent), rows)


def audit(
    connection: Connection,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    audit_rows(
        connection, actor=actor, action=action, entity=entity, changes=[(entity_id, before, after)]
    )
