"""The errors provisioning raises: domain errors that also carry the SCIM `scimType`
(RFC 7644 §3.12) the SCIM router answers with."""

from typing import Any

from pydantic import ValidationError
from scim2_models import Error, SCIMException

from domain.errors import Conflict, Invalid, NotFound


class ScimInvalid(Invalid):
    """A request SCIM calls invalid: a bad filter, syntax, value, path or mutability."""

    def __init__(self, message: str, *, scim_type: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.scim_type = scim_type


class ScimConflict(Conflict):
    """A userName, email or employee number another user already holds."""

    scim_type = "uniqueness"


class ScimNotFound(NotFound):
    """No such user or group (or one deleted through SCIM)."""


def from_scim_exception(exc: SCIMException) -> ScimInvalid | ScimConflict | ScimNotFound:
    """scim2-models' own refusal (a patch path it cannot resolve, a value of the wrong
    type) as one of ours, its scimType kept."""
    error = exc.to_error()
    detail = error.detail or "the request is not valid SCIM"
    if error.status == 404:
        return ScimNotFound(detail)
    if error.status == 409:
        return ScimConflict(detail)
    return ScimInvalid(detail, scim_type=error.scim_type or "invalidValue")


def from_validation_error(exc: ValidationError) -> ScimInvalid:
    """A body scim2-models refused, with the first attribute at fault named."""
    errors: list[Any] = list(exc.errors())
    first: dict[str, Any] = dict(errors[0]) if errors else {}
    error = Error.from_validation_error(first) if first else None
    where = ".".join(str(part) for part in first.get("loc", ()))
    reason = str(first.get("msg", "invalid value"))
    scim_type = (error.scim_type if error is not None else None) or "invalidValue"
    return ScimInvalid(f"{where or 'body'}: {reason}", scim_type=scim_type, field=where or None)
