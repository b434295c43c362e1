"""What a SCIM User says about a person's columns, and the checks on it.

- email: the primary email, else the work one, else the first; else the userName when it
  is an email address; lower-cased, as people.csv stores it (Okta and Entra send either
  case, and one address is one person whatever its case). fairdraft knows people by work
  email: a user with none is refused.
- name: displayName, else name.formatted, else givenName familyName, else the userName.
- employee_id: the enterprise extension's employeeNumber; when the provider sends none, one
  is made once from the userName (`scim-` and 16 hex digits) and kept from then on.
- department: the enterprise extension's department; job_family: the title. Where the
  provider sends none, the settings' defaults (FAIRDRAFT_SCIM_DEFAULT_*); level and location
  always come from them for a person SCIM creates (providers send neither).
- manager_id: the enterprise extension's manager.value, the manager's SCIM id.
- active: `active`; false deactivates (the row is kept, left_on is today).
"""

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from service.provisioning.errors import ScimInvalid
from service.provisioning.resources import EnterpriseUser, User

EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
MAX_EMAIL = 320
MAX_NAME = 512
MAX_EMPLOYEE_ID = 64
MAX_DEPARTMENT = 128
MAX_STRING = 2048
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Said:
    """The columns a User resource gives values for; None where it says nothing."""

    email: str | None
    name: str | None
    employee_id: str | None
    department: str | None
    job_family: str | None
    manager: str | None
    active: bool | None


def said(user: User) -> Said:
    """Read and check what `user` says (lengths, an email address's shape)."""
    enterprise: EnterpriseUser | None = user[EnterpriseUser]
    manager = enterprise.manager.value if enterprise and enterprise.manager else None
    result = Said(
        email=_email(user),
        name=_name(user),
        employee_id=_blank_none(enterprise.employee_number if enterprise else None),
        department=_blank_none(enterprise.department if enterprise else None),
        job_family=_blank_none(user.title),
        manager=_blank_none(manager),
        active=user.active,
    )
    _check_length("emails", result.email, MAX_EMAIL)
    _check_length("displayName", result.name, MAX_NAME)
    _check_length("employeeNumber", result.employee_id, MAX_EMPLOYEE_ID)
    _check_length("department", result.department, MAX_DEPARTMENT)
    _check_length("title", result.job_family, MAX_DEPARTMENT)
    return result


def generated_employee_id(user_name: str) -> str:
    """A stable employee id for a user whose provider sends no employeeNumber: the same
    userName always gives the same one, so a re-sent create finds the person again."""
    return "scim-" + hashlib.sha256(user_name.strip().lower().encode()).hexdigest()[:16]


def check_strings(value: Any, where: str = "body") -> None:
    """No control characters (NUL cannot be stored at all) and no string over 2,048
    characters anywhere in a body: refused with the attribute named."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise ScimInvalid(
                f"{where}: control characters are not allowed",
                scim_type="invalidValue",
                field=where,
            )
        if len(value) > MAX_STRING:
            raise ScimInvalid(
                f"{where}: over {MAX_STRING} characters", scim_type="invalidValue", field=where
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            check_strings(str(key), where)
            check_strings(item, f"{where}.{key}" if where != "body" else str(key))
    elif isinstance(value, list):
        for item in value:
            check_strings(item, where)


def _email(user: User) -> str | None:
    emails = [e for e in user.emails or [] if e.value]
    chosen = (
        next((e for e in emails if e.primary), None)
        or next((e for e in emails if (e.type or "").lower() == "work"), None)
        or (emails[0] if emails else None)
    )
    if chosen is not None and chosen.value:
        address = chosen.value.strip()
        if not EMAIL.match(address):
            raise ScimInvalid(
                f"emails: {address!r} is not an email address",
                scim_type="invalidValue",
                field="emails",
            )
        return address.lower()
    if user.user_name and EMAIL.match(user.user_name.strip()):
        return user.user_name.strip().lower()
    return None


def _name(user: User) -> str | None:
    if user.display_name and user.display_name.strip():
        return user.display_name.strip()
    name = user.name
    if name is not None:
        if name.formatted and name.formatted.strip():
            return name.formatted.strip()
        parts = [p.strip() for p in (name.given_name, name.family_name) if p and p.strip()]
        if parts:
            return " ".join(parts)
    return None


def _blank_none(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


def _check_length(attribute: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise ScimInvalid(
            f"{attribute}: over {limit} characters", scim_type="invalidValue", field=attribute
        )
