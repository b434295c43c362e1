"""SCIM Users: every person is one, their SCIM id their people.id as text.

A person SCIM never touched (from people.csv or an HRIS export) is listed with what
people holds, so an identity provider's `userName eq` finds them and links instead of
creating a second row. A create whose email or employee number is already a person's
(not linked to another SCIM user) links that person. What the provider sent is kept in
scim_users (within the published schema) and answered back; where people changed since
(an HRIS import moved someone's department, say) people wins.

DELETE deactivates, never removes: the person's row, reviews, drafts and evidence stay,
active is false and left_on today; the user is then gone from SCIM (404), and a later
create with the same userName or email brings the same person back.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from scim2_models import Context, Meta, PatchOp, SCIMException
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
from sqlalchemy.exc import IntegrityError

from service.audit import audit
from service.db.models import Person, ScimGroupMember, ScimUser
from service.provisioning.errors import (
    ScimConflict,
    ScimInvalid,
    ScimNotFound,
    apply_patch,
    from_scim_exception,
    from_validation_error,
)
from service.provisioning.filters import Term
from service.provisioning.mapping import Said, check_strings, generated_employee_id, said
from service.provisioning.resources import POLICY, EnterpriseUser, Manager, User, WorkEmail

ACTOR = "scim"
MAX_MANAGER_DEPTH = 1000
_COLUMNS = (
    "email",
    "name",
    "employee_id",
    "department",
    "job_family",
    "level",
    "location",
    "manager_id",
    "active",
    "left_on",
)


@dataclass(frozen=True)
class Defaults:
    """The columns identity providers do not send (FAIRDRAFT_SCIM_DEFAULT_*)."""

    level: str
    job_family: str
    department: str
    location: str


@dataclass(frozen=True)
class Page:
    """One page of a list: the total matched and the users from `start_index` (1-based)."""

    total: int
    start_index: int
    users: list[User]


def list_users(connection: Connection, terms: list[Term], start_index: int, count: int) -> Page:
    """The users matching every term, by id; `count` 0 answers the total alone. Three
    queries whatever the page's size."""
    condition = and_(_visible(), *(_condition(term) for term in terms))
    base = select(Person.id).outerjoin(ScimUser, ScimUser.person_id == Person.id)
    total = connection.scalar(select(func.count()).select_from(base.where(condition).subquery()))
    ids = list(
        connection.scalars(
            base.where(condition).order_by(Person.id).offset(start_index - 1).limit(count)
        )
    )
    people = {
        row["id"]: row
        for row in connection.execute(select(Person.__table__).where(Person.id.in_(ids)))
        .mappings()
        .all()
    }
    rows = {
        row["person_id"]: row
        for row in connection.execute(select(ScimUser.__table__).where(ScimUser.person_id.in_(ids)))
        .mappings()
        .all()
    }
    users = [_render(people[person_id], rows.get(person_id)) for person_id in ids]
    return Page(total=int(total or 0), start_index=start_index, users=users)


def get_user(connection: Connection, scim_id: str) -> User:
    return _render(*_load(connection, _person_id(scim_id)))


def create_user(
    connection: Connection, payload: object, defaults: Defaults, *, actor: str = ACTOR
) -> User:
    """POST /Users: a new person, or a person already there (same email or employee
    number, not linked to another SCIM user) linked and updated."""
    user = _validated(payload, Context.RESOURCE_CREATION_REQUEST)
    says = said(user)
    email = _required_email(says)
    assert user.user_name is not None  # required by the schema
    existing = _existing_person(connection, email, says.employee_id)
    _check_user_name_free(connection, user.user_name, existing)
    with _unique():
        if existing is None:
            person_id = _insert_person(connection, user.user_name, says, defaults, actor)
        else:
            person_id = existing
            _update_person(connection, person_id, says, None, actor, linked=True)
        _store(connection, person_id, user, revive=True)
    return get_user(connection, str(person_id))


def replace_user(
    connection: Connection, scim_id: str, payload: object, *, actor: str = ACTOR
) -> User:
    """PUT /Users/{id}: the whole resource replaced."""
    person_id = _person_id(scim_id)
    person, row = _load(connection, person_id, lock=True)
    user = _validated(payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    return _write(connection, person_id, user, _said_before(person, row), actor)


def patch_user(
    connection: Connection, scim_id: str, payload: object, *, actor: str = ACTOR
) -> User:
    """PATCH /Users/{id}: the operations Okta and Entra send, applied to the user as it
    stands, then written like a PUT."""
    person_id = _person_id(scim_id)
    person, row = _load(connection, person_id, lock=True)
    previous = _render(person, row)
    check_strings(payload)
    try:
        with POLICY:
            patch = PatchOp[User].model_validate(
                _entra_patch(payload), scim_ctx=Context.RESOURCE_PATCH_REQUEST
            )
            user = previous.model_copy(deep=True)
            apply_patch(patch, user)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except SCIMException as exc:
        raise from_scim_exception(exc) from None
    return _write(connection, person_id, user, _said_before(person, row), actor)


def delete_user(connection: Connection, scim_id: str, *, actor: str = ACTOR) -> None:
    """DELETE /Users/{id}: the person deactivated (kept), the SCIM user gone."""
    person_id = _person_id(scim_id)
    person, row = _load(connection, person_id, lock=True)
    if person["active"]:
        connection.execute(
            update(Person).where(Person.id == person_id).values(active=False, left_on=date.today())
        )
    connection.execute(delete(ScimGroupMember).where(ScimGroupMember.person_id == person_id))
    now = datetime.now(UTC)
    if row is None:
        connection.execute(
            insert(ScimUser).values(
                person_id=person_id, user_name=person["email"], resource={}, deleted_at=now
            )
        )
    else:
        connection.execute(
            update(ScimUser).where(ScimUser.person_id == person_id).values(deleted_at=now)
        )
    audit(
        connection,
        actor=actor,
        action="scim.user.deleted",
        entity="person",
        entity_id=str(person_id),
        before={"active": person["active"]},
        after={"active": False, "kept": True},
    )


# --- reading -----------------------------------------------------------------------------


def _person_id(scim_id: str) -> int:
    if not scim_id.isascii() or not scim_id.isdigit() or len(scim_id) > 9:
        raise ScimNotFound(f"no user {scim_id!r}", field="id")
    return int(scim_id)


def _visible() -> ColumnElement[bool]:
    """Every person but those a SCIM DELETE removed from SCIM."""
    return ScimUser.deleted_at.is_(None)


def _condition(term: Term) -> ColumnElement[bool]:
    value = term.value
    match term.attribute:
        case "id":
            return (
                Person.id == int(value)
                if value.isascii() and value.isdigit() and len(value) <= 9
                else false()
            )
        case "username":
            return func.lower(func.coalesce(ScimUser.user_name, Person.email)) == value.lower()
        case "externalid":
            return ScimUser.external_id == value
        case "displayname":
            return func.lower(Person.name) == value.lower()
        case "emails.value":
            return func.lower(Person.email) == value.lower()
        case "employeenumber":
            return Person.employee_id == value
    return true()  # unreachable: filters.parse_filter allows only the names above


def _load(
    connection: Connection, person_id: int, *, lock: bool = False
) -> tuple[RowMapping, RowMapping | None]:
    statement = select(Person.__table__).where(Person.id == person_id)
    person = connection.execute(statement.with_for_update() if lock else statement).mappings()
    found = person.first()
    if found is None:
        raise ScimNotFound(f"no user {person_id}", field="id")
    row = (
        connection.execute(select(ScimUser.__table__).where(ScimUser.person_id == person_id))
        .mappings()
        .first()
    )
    if row is not None and row["deleted_at"] is not None:
        raise ScimNotFound(f"no user {person_id}", field="id")
    return found, row


def _render(person: RowMapping, row: RowMapping | None) -> User:
    """The user as SCIM answers it: what the provider sent, where people agrees; where
    people changed since (or SCIM never wrote this person), people's values."""
    with POLICY:
        user = User.model_validate(row["resource"]) if row is not None else _from_people(person)
    if row is not None:
        _overlay(user, person)
    user.id = str(person["id"])
    user.external_id = row["external_id"] if row is not None else None
    user.meta = Meta(
        resource_type="User",
        created=(row or person)["created_at"],
        last_modified=max(person["updated_at"], (row or person)["updated_at"]),
    )
    return user


def _from_people(person: RowMapping) -> User:
    user = User(
        user_name=person["email"],
        display_name=person["name"],
        active=person["active"],
        emails=[WorkEmail(value=person["email"], type="work", primary=True)],
    )
    user[EnterpriseUser] = EnterpriseUser(
        employee_number=person["employee_id"],
        department=person["department"],
        manager=Manager(value=str(person["manager_id"])) if person["manager_id"] else None,
    )
    return user


def _overlay(user: User, person: RowMapping) -> None:
    """People's values over what the provider sent, for the columns that moved since
    (an HRIS import, say). Only where the provider said something: an attribute it never
    sent, or removed, stays unsaid."""
    if user.active is not None and user.active is not person["active"]:
        user.active = person["active"]
    enterprise = user[EnterpriseUser]
    if enterprise is None:
        return
    if enterprise.department is not None and enterprise.department != person["department"]:
        enterprise.department = person["department"]
    if (
        enterprise.employee_number is not None
        and enterprise.employee_number != person["employee_id"]
    ):
        enterprise.employee_number = person["employee_id"]
    sent = enterprise.manager.value if enterprise.manager else None
    actual = str(person["manager_id"]) if person["manager_id"] is not None else None
    if sent is not None and sent != actual:
        enterprise.manager = Manager(value=actual) if actual is not None else None


# --- writing -----------------------------------------------------------------------------


def _validated(payload: object, context: Context) -> User:
    check_strings(payload)
    if not isinstance(payload, dict):
        raise ScimInvalid("the body is not a JSON object", scim_type="invalidSyntax")
    try:
        with POLICY:
            return User.model_validate(_entra_user(payload), scim_ctx=context)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except SCIMException as exc:
        raise from_scim_exception(exc) from None


def _write(
    connection: Connection, person_id: int, user: User, before: Said | None, actor: str
) -> User:
    """A PUT's or a PATCH's result: the columns it changes, then the provider's view."""
    says = said(user)
    assert user.user_name is not None
    _check_user_name_free(connection, user.user_name, person_id)
    with _unique():
        _update_person(connection, person_id, says, before, actor, linked=False)
        _store(connection, person_id, user, revive=False)
    return get_user(connection, str(person_id))


@contextmanager
def _unique() -> Iterator[None]:
    """Two requests racing for one userName, email or employee number: the checks above
    both pass, the database's unique index stops the second, answered 409 uniqueness (the
    transaction is rolled back by the caller)."""
    try:
        yield
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != "23505":  # unique_violation
            raise
        raise ScimConflict("another user took this userName, email or employeeNumber") from None


def _said_before(person: RowMapping, row: RowMapping | None) -> Said | None:
    """What the provider itself said last (None if it never wrote this person): a manager
    it sent and now leaves out is cleared, one people.csv set and it never sent is not."""
    if row is None:
        return None
    with POLICY:
        return said(User.model_validate(row["resource"]))


def _store(connection: Connection, person_id: int, user: User, *, revive: bool) -> None:
    """The provider's view, without id and meta (ours), in scim_users."""
    resource = user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for key in ("id", "meta", "externalId"):
        resource.pop(key, None)
    values: dict[str, Any] = {
        "user_name": user.user_name,
        "external_id": user.external_id,
        "resource": resource,
        "updated_at": func.now(),
    }
    if revive:
        values["deleted_at"] = None
    found = connection.scalar(select(ScimUser.person_id).where(ScimUser.person_id == person_id))
    if found is None:
        connection.execute(insert(ScimUser).values(person_id=person_id, **values))
    else:
        connection.execute(update(ScimUser).where(ScimUser.person_id == person_id).values(values))


def _required_email(says: Said) -> str:
    if says.email is None:
        raise ScimInvalid(
            "emails: a work email is required (fairdraft knows people by it)",
            scim_type="invalidValue",
            field="emails",
        )
    return says.email


def _existing_person(connection: Connection, email: str, employee_id: str | None) -> int | None:
    """The person a create links to: same email or employee number, and no other live
    SCIM user. One linked to a live SCIM user is a conflict."""
    match = func.lower(Person.email) == email.lower()
    if employee_id is not None:
        match = match | (Person.employee_id == employee_id)
    rows = connection.execute(
        select(Person.id, ScimUser.deleted_at, ScimUser.person_id.label("linked"))
        .outerjoin(ScimUser, ScimUser.person_id == Person.id)
        .where(match)
        .order_by(Person.id)
    ).all()
    if len(rows) > 1:
        raise ScimConflict(
            "the email and the employeeNumber belong to two different people", field="emails"
        )
    if not rows:
        return None
    person_id, deleted_at, linked = rows[0]
    if linked is not None and deleted_at is None:
        raise ScimConflict(f"a user with the email {email!r} exists", field="userName")
    return int(person_id)


def _check_user_name_free(connection: Connection, user_name: str, person_id: int | None) -> None:
    """No other live SCIM user has this userName, and no person SCIM never wrote (whose
    userName is their email) has it as their email: one `userName eq` finds one user."""
    other = person_id if person_id is not None else -1
    taken = connection.scalar(
        select(ScimUser.person_id).where(
            func.lower(ScimUser.user_name) == user_name.lower(),
            ScimUser.deleted_at.is_(None),
            ScimUser.person_id != other,
        )
    )
    shadowed = connection.scalar(
        select(Person.id)
        .outerjoin(ScimUser, ScimUser.person_id == Person.id)
        .where(
            func.lower(Person.email) == user_name.lower(),
            ScimUser.person_id.is_(None),
            Person.id != other,
        )
    )
    if taken is not None or shadowed is not None:
        raise ScimConflict(f"the userName {user_name!r} is taken", field="userName")


def _insert_person(
    connection: Connection, user_name: str, says: Said, defaults: Defaults, actor: str
) -> int:
    assert says.email is not None
    active = says.active is not False
    values: dict[str, Any] = {
        "email": says.email,
        "name": says.name or user_name,
        "employee_id": says.employee_id or generated_employee_id(user_name),
        "department": says.department or defaults.department,
        "job_family": says.job_family or defaults.job_family,
        "level": defaults.level,
        "location": defaults.location,
        # A new person reports to nobody yet, so no loop: the manager need only exist. Set
        # in the insert, so manager_history opens with it (not with a spell of no manager).
        "manager_id": _manager_id(connection, None, says.manager) if says.manager else None,
        "active": active,
        "left_on": None if active else date.today(),
    }
    _check_unique(connection, None, values["email"], values["employee_id"])
    person_id = int(connection.scalar(insert(Person).values(values).returning(Person.id)) or 0)
    audit(
        connection,
        actor=actor,
        action="scim.user.created",
        entity="person",
        entity_id=str(person_id),
        after=_jsonable(values),
    )
    return person_id


def _update_person(
    connection: Connection,
    person_id: int,
    says: Said,
    before_said: Said | None,
    actor: str,
    *,
    linked: bool,
) -> None:
    """The columns `says` gives values for; a manager the provider removed is cleared; an
    attribute it never sent leaves the column as people.csv or HR set it."""
    person = (
        connection.execute(select(Person.__table__).where(Person.id == person_id).with_for_update())
        .mappings()
        .one()
    )
    changes: dict[str, Any] = {}
    for column in ("email", "name", "employee_id", "department", "job_family"):
        value = getattr(says, column)
        if value is not None and value != person[column]:
            changes[column] = value
    if says.manager is not None:
        manager_id = _manager_id(connection, person_id, says.manager)
        if manager_id != person["manager_id"]:
            changes["manager_id"] = manager_id
    elif before_said is not None and before_said.manager is not None and person["manager_id"]:
        changes["manager_id"] = None
    if says.active is not None and says.active != person["active"]:
        changes["active"] = says.active
        changes["left_on"] = None if says.active else date.today()
    if not changes and not linked:
        return
    _check_unique(connection, person_id, changes.get("email"), changes.get("employee_id"))
    if changes:
        connection.execute(update(Person).where(Person.id == person_id).values(changes))
    audit(
        connection,
        actor=actor,
        action="scim.user.linked" if linked else _action(changes),
        entity="person",
        entity_id=str(person_id),
        before=_jsonable({k: person[k] for k in changes}),
        after=_jsonable(changes),
    )


def _action(changes: dict[str, Any]) -> str:
    if changes.get("active") is False:
        return "scim.user.deactivated"
    if changes.get("active") is True:
        return "scim.user.reactivated"
    return "scim.user.updated"


def _check_unique(
    connection: Connection, person_id: int | None, email: str | None, employee_id: str | None
) -> None:
    other = Person.id != (person_id if person_id is not None else -1)
    if email is not None and connection.scalar(
        select(Person.id).where(func.lower(Person.email) == email.lower(), other)
    ):
        raise ScimConflict(f"another person has the email {email!r}", field="emails")
    if employee_id is not None and connection.scalar(
        select(Person.id).where(Person.employee_id == employee_id, other)
    ):
        raise ScimConflict(
            f"another person has the employeeNumber {employee_id!r}", field="employeeNumber"
        )


def _manager_id(connection: Connection, person_id: int | None, scim_id: str) -> int:
    """The manager's person id: a user SCIM can see, not the person, not one of their
    own reports (no loops in the reporting tree). `person_id` None: a person not yet
    created, whom nobody reports to."""
    if not scim_id.isascii() or not scim_id.isdigit() or len(scim_id) > 9:
        raise _bad_manager(scim_id)
    manager_id = int(scim_id)
    if manager_id == person_id:
        raise ScimInvalid(
            "manager: a person cannot manage themselves", scim_type="invalidValue", field="manager"
        )
    known = connection.scalar(
        select(Person.id)
        .outerjoin(ScimUser, ScimUser.person_id == Person.id)
        .where(Person.id == manager_id, _visible())
    )
    if known is None:
        raise _bad_manager(scim_id)
    if person_id is None:
        return manager_id
    current: int | None = manager_id
    for _ in range(MAX_MANAGER_DEPTH):
        current = connection.scalar(select(Person.manager_id).where(Person.id == current))
        if current is None:
            return manager_id
        if current == person_id:
            raise ScimInvalid(
                f"manager: {scim_id} reports to this person (a loop)",
                scim_type="invalidValue",
                field="manager",
            )
    return manager_id


def _bad_manager(scim_id: str) -> ScimInvalid:
    return ScimInvalid(
        f"manager: {scim_id!r} is not the id of a user", scim_type="invalidValue", field="manager"
    )


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


# --- Entra ID's and Okta's departures from RFC 7643 ---------------------------------------

_ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"
_MANAGER_PATH = _ENTERPRISE_URN + ":manager"
_BOOLEANS = {"true": True, "false": False}


def _entra_user(payload: dict[str, Any]) -> dict[str, Any]:
    """`active` as the string "True"/"False", and the enterprise extension's manager as a
    bare id string (both Entra's), read as RFC 7643 has them."""
    result = dict(payload)
    active = result.get("active")
    if isinstance(active, str) and active.lower() in _BOOLEANS:
        result["active"] = _BOOLEANS[active.lower()]
    for key, value in payload.items():
        if key.lower() == _ENTERPRISE_URN and isinstance(value, dict):
            result[key] = _entra_extension(value)
    return result


def _entra_extension(extension: dict[str, Any]) -> dict[str, Any]:
    manager = extension.get("manager")
    if isinstance(manager, str):
        return {**extension, "manager": {"value": manager} if manager else None}
    return extension


def _entra_patch(payload: object) -> object:
    """Entra's PATCH: `op` capitalised ("Replace", read by scim2-models as it is), the
    manager's path with a bare id as the value (read as {"value": id}), `active` as the
    string "False", and a path-less value object whose keys are such paths."""
    if not isinstance(payload, dict):
        return payload
    operations = payload.get("Operations")
    if not isinstance(operations, list):
        return payload
    return {**payload, "Operations": [_entra_operation(op) for op in operations]}


def _entra_operation(operation: object) -> object:
    if not isinstance(operation, dict):
        return operation
    path = operation.get("path")
    value = operation.get("value")
    if isinstance(path, str):
        return {**operation, "value": _entra_value(path, value)}
    if isinstance(value, dict):
        return {**operation, "value": {k: _entra_value(str(k), v) for k, v in value.items()}}
    return operation


def _entra_value(path: str, value: object) -> object:
    lowered = path.lower()
    if lowered == _ENTERPRISE_URN and isinstance(value, dict):
        return _entra_extension(value)
    if lowered == _MANAGER_PATH and isinstance(value, str):
        return {"value": value} if value else None
    if lowered in ("active", "urn:ietf:params:scim:schemas:core:2.0:user:active") and isinstance(
        value, str
    ):
        return _BOOLEANS.get(value.lower(), value)
    return value
