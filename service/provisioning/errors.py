"""The errors provisioning raises: domain errors that also carry the SCIM `scimType`
(RFC 7644 §3.12) the SCIM router answers with."""

from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from scim2_models import Error, PatchOp, Resource, SCIMException

from domain.errors import Conflict, Invalid, NotFound

R = TypeVar("R", bound=Resource[Any])


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


def from_scim_exception(
    exc: SCIMException, where: str | None = None
) -> ScimInvalid | ScimConflict | ScimNotFound:
    """scim2-models' own refusal (a patch path it cannot resolve, a value of the wrong
    type) as one of ours, its scimType kept. A value pydantic refused while a patch was
    applied comes with pydantic's whole report as its detail (model names, a URL): that
    is composed anew as "<path>: <reason>", `where` being the operation's path."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        return _composed(cause, where, exc.to_error().scim_type)
    error = exc.to_error()
    detail = error.detail or "the request is not valid SCIM"
    if error.status == 404:
        return ScimNotFound(detail)
    if error.status == 409:
        return ScimConflict(detail)
    return ScimInvalid(detail, scim_type=error.scim_type or "invalidValue")


def from_validation_error(exc: ValidationError) -> ScimInvalid:
    """A body scim2-models refused, with the first attribute at fault named."""
    return _composed(exc, None, None)


def apply_patch(patch: PatchOp[R], resource: R) -> None:
    """Apply a PATCH's operations to `resource` one by one, so that a refused value is
    told by the path of the operation that sent it (the caller discards `resource` on a
    refusal: the request changes nothing)."""
    for operation in patch.operations or []:
        try:
            patch.model_copy(update={"operations": [operation]}).patch(resource)
        except SCIMException as exc:
            raise from_scim_exception(exc, _operation_path(operation)) from None


def _operation_path(operation: Any) -> str | None:
    """The operation's path; for a path-less one whose value sets one attribute, that
    attribute's name."""
    if operation.path:
        return str(operation.path)
    value = operation.value
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value)))
    return None


# pydantic's error types, said in SCIM's words (RFC 7643 2.3 data types); any other
# type keeps pydantic's one-line message, which names no model and no URL.
_REASONS = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "list_type": "must be a list of values",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "missing": "is required",
}


def _composed(exc: ValidationError, where: str | None, scim_type: str | None) -> ScimInvalid:
    """ "<path>: <reason>" for the first error of `exc`: the path the client wrote (else
    the attribute pydantic names, in SCIM's camelCase), the reason in one line."""
    errors: list[ErrorDetails] = exc.errors()
    first: dict[str, Any] = dict(errors[0]) if errors else {}
    error = Error.from_validation_error(first) if first else None
    path = where or ".".join(_camel(str(part)) for part in first.get("loc", ())) or "body"
    reason = _REASONS.get(str(first.get("type", "")), str(first.get("msg", "invalid value")))
    scim_type = scim_type or (error.scim_type if error is not None else None) or "invalidValue"
    return ScimInvalid(f"{path}: {reason.splitlines()[0]}", scim_type=scim_type, field=path)


def _camel(name: str) -> str:
    """A field's Python name as SCIM spells it (display_name: displayName); an alias or a
    list index is kept as it is."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
