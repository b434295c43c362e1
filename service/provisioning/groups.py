"""SCIM Groups: kept as the provider sent them, with their members (people) in
scim_group_members so a query can ask who is in a group. A member must be a user SCIM
can see (a person's id); a group of groups is refused. Deleting a group deletes it and
its memberships: groups are the provider's, nothing else refers to them.
"""

import uuid
from dataclasses import dataclass

from pydantic import ValidationError
from scim2_models import Context, Group, Meta, PatchOp, SCIMException
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    delete,
    false,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.engine import RowMapping

from service.audit import audit
from service.db.models import Person, ScimGroup, ScimGroupMember, ScimUser
from service.provisioning.errors import (
    ScimInvalid,
    ScimNotFound,
    apply_patch,
    from_scim_exception,
    from_validation_error,
)
from service.provisioning.filters import Term
from service.provisioning.mapping import MAX_NAME, check_strings
from service.provisioning.resources import POLICY
from service.provisioning.users import ACTOR

MAX_MEMBERS = 10_000


@dataclass(frozen=True)
class GroupPage:
    total: int
    start_index: int
    groups: list[Group]


def list_groups(
    connection: Connection, terms: list[Term], start_index: int, count: int
) -> GroupPage:
    condition = and_(true(), *(_condition(term) for term in terms))
    total = connection.scalar(select(func.count()).select_from(ScimGroup).where(condition))
    rows = (
        connection.execute(
            select(ScimGroup.__table__)
            .where(condition)
            .order_by(ScimGroup.created_at, ScimGroup.id)
            .offset(start_index - 1)
            .limit(count)
        )
        .mappings()
        .all()
    )
    members = _memberships(connection, [row["id"] for row in rows])
    return GroupPage(
        total=int(total or 0),
        start_index=start_index,
        groups=[_rendered(row, members.get(row["id"], set())) for row in rows],
    )


def get_group(connection: Connection, scim_id: str) -> Group:
    return _render(connection, _load(connection, scim_id))


def create_group(connection: Connection, payload: object, *, actor: str = ACTOR) -> Group:
    group = _validated(payload, Context.RESOURCE_CREATION_REQUEST)
    group_id = uuid.uuid4()
    resource = _resource(group)
    connection.execute(
        insert(ScimGroup).values(
            id=group_id,
            display_name=_display_name(group),
            external_id=group.external_id,
            resource=resource,
        )
    )
    members = _members(connection, group)
    _set_members(connection, group_id, members)
    audit(
        connection,
        actor=actor,
        action="scim.group.created",
        entity="scim_group",
        entity_id=str(group_id),
        after={"displayName": group.display_name, "members": sorted(members)},
    )
    return get_group(connection, str(group_id))


def replace_group(
    connection: Connection, scim_id: str, payload: object, *, actor: str = ACTOR
) -> Group:
    previous = get_group(connection, scim_id)
    group = _validated(payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    return _write(connection, previous, group, actor)


def patch_group(
    connection: Connection, scim_id: str, payload: object, *, actor: str = ACTOR
) -> Group:
    previous = get_group(connection, scim_id)
    check_strings(payload)
    try:
        with POLICY:
            patch = PatchOp[Group].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
            group = previous.model_copy(deep=True)
            apply_patch(patch, group)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except SCIMException as exc:
        raise from_scim_exception(exc) from None
    return _write(connection, previous, group, actor)


def delete_group(connection: Connection, scim_id: str, *, actor: str = ACTOR) -> None:
    row = _load(connection, scim_id)
    connection.execute(delete(ScimGroup).where(ScimGroup.id == row["id"]))
    audit(
        connection,
        actor=actor,
        action="scim.group.deleted",
        entity="scim_group",
        entity_id=str(row["id"]),
        before={"displayName": row["display_name"]},
    )


def _write(connection: Connection, previous: Group, group: Group, actor: str) -> Group:
    assert previous.id is not None
    group_id = uuid.UUID(previous.id)
    members = _members(connection, group)
    before = sorted(_members(connection, previous))
    connection.execute(
        update(ScimGroup)
        .where(ScimGroup.id == group_id)
        .values(
            display_name=_display_name(group),
            external_id=group.external_id,
            resource=_resource(group),
            updated_at=func.now(),
        )
    )
    _set_members(connection, group_id, members)
    audit(
        connection,
        actor=actor,
        action="scim.group.updated",
        entity="scim_group",
        entity_id=str(group_id),
        before={"displayName": previous.display_name, "members": before},
        after={"displayName": group.display_name, "members": sorted(members)},
    )
    return get_group(connection, str(group_id))


def _validated(payload: object, context: Context) -> Group:
    check_strings(payload)
    if not isinstance(payload, dict):
        raise ScimInvalid("the body is not a JSON object", scim_type="invalidSyntax")
    try:
        with POLICY:
            return Group.model_validate(payload, scim_ctx=context)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except SCIMException as exc:
        raise from_scim_exception(exc) from None


def _display_name(group: Group) -> str:
    name = (group.display_name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise ScimInvalid(
            f"displayName: required, at most {MAX_NAME} characters",
            scim_type="invalidValue",
            field="displayName",
        )
    return name


def _resource(group: Group) -> dict[str, object]:
    resource = group.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for key in ("id", "meta", "externalId"):
        resource.pop(key, None)
    return resource


def _members(connection: Connection, group: Group) -> set[int]:
    """The people in `group`: each member's value must be a user SCIM can see."""
    values = [m.value for m in group.members or []]
    if len(values) > MAX_MEMBERS:
        raise ScimInvalid(
            f"members: at most {MAX_MEMBERS}", scim_type="invalidValue", field="members"
        )
    ids: set[int] = set()
    for value in values:
        if value is None or not value.isascii() or not value.isdigit() or len(value) > 9:
            raise _bad_member(value)
        ids.add(int(value))
    if not ids:
        return ids
    known = set(
        connection.scalars(
            select(Person.id)
            .outerjoin(ScimUser, ScimUser.person_id == Person.id)
            .where(Person.id.in_(ids), ScimUser.deleted_at.is_(None))
        )
    )
    if unknown := ids - known:
        raise _bad_member(str(min(unknown)))
    return ids


def _bad_member(value: str | None) -> ScimInvalid:
    return ScimInvalid(
        f"members: {value!r} is not the id of a user", scim_type="invalidValue", field="members"
    )


def _set_members(connection: Connection, group_id: uuid.UUID, members: set[int]) -> None:
    connection.execute(delete(ScimGroupMember).where(ScimGroupMember.group_id == group_id))
    if members:
        connection.execute(
            insert(ScimGroupMember),
            [{"group_id": group_id, "person_id": person_id} for person_id in sorted(members)],
        )


def _load(connection: Connection, scim_id: str) -> RowMapping:
    try:
        group_id = uuid.UUID(scim_id)
    except ValueError:
        raise ScimNotFound(f"no group {scim_id!r}", field="id") from None
    row = (
        connection.execute(select(ScimGroup.__table__).where(ScimGroup.id == group_id))
        .mappings()
        .first()
    )
    if row is None:
        raise ScimNotFound(f"no group {scim_id!r}", field="id")
    return row


def _render(connection: Connection, row: RowMapping) -> Group:
    return _rendered(row, _memberships(connection, [row["id"]]).get(row["id"], set()))


def _memberships(connection: Connection, group_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """Each group's members (SCIM ids), in one query."""
    found: dict[uuid.UUID, set[str]] = {}
    rows = connection.execute(
        select(ScimGroupMember.group_id, ScimGroupMember.person_id).where(
            ScimGroupMember.group_id.in_(group_ids)
        )
    )
    for group_id, person_id in rows:
        found.setdefault(group_id, set()).add(str(person_id))
    return found


def _rendered(row: RowMapping, current: set[str]) -> Group:
    """The group as sent, its members those still in it (a person deleted through SCIM
    since leaves every group)."""
    with POLICY:
        group = Group.model_validate(row["resource"])
    if group.members:
        group.members = [m for m in group.members if m.value in current] or None
    group.id = str(row["id"])
    group.external_id = row["external_id"]
    group.meta = Meta(
        resource_type="Group", created=row["created_at"], last_modified=row["updated_at"]
    )
    return group


def _condition(term: Term) -> ColumnElement[bool]:
    value = term.value
    match term.attribute:
        case "id":
            try:
                return ScimGroup.id == uuid.UUID(value)
            except ValueError:
                return false()
        case "displayname":
            return func.lower(ScimGroup.display_name) == value.lower()
        case "externalid":
            return ScimGroup.external_id == value
        case "members.value":
            return ScimGroup.id.in_(
                select(ScimGroupMember.group_id).where(
                    ScimGroupMember.person_id
                    == (int(value) if value.isdigit() and len(value) <= 9 else -1)
                )
            )
    return false()
