"""The SCIM schema fairdraft publishes, as scim2-models models, and the discovery
documents (RFC 7643 §5-7).

The User is the core User cut down to what fairdraft keeps (userName, name, displayName,
title, active, emails) with the enterprise extension's employeeNumber, department and
manager: /Schemas says so, so an identity provider (and scim2-tester) sends only those,
and an attribute outside them is ignored, not stored (`POLICY`). emails is required:
fairdraft knows people by their work email.
"""

from typing import Annotated, Any

from pydantic import Field
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    Email,
    ETag,
    Extension,
    Filter,
    Group,
    Name,
    Patch,
    Reference,
    Required,
    Resource,
    ResourceType,
    Schema,
    ScimPolicy,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)

__all__ = ["POLICY", "EnterpriseUser", "Group", "Manager", "User"]

ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

# What the providers send that the strict reading refuses: attributes outside our schema
# (Okta's locale and password, Entra's roles) are ignored; Entra's `remove` with a value
# selecting what to remove, and its `replace` of emails[type eq "work"].value on a user
# with no work email yet, are applied.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


class Manager(ComplexAttribute):
    """The enterprise extension's manager: `value` is the manager's SCIM id. `$ref` is
    optional here (Entra sends only the value)."""

    value: Annotated[str | None, Required.true, CaseExact.true] = None
    ref: Reference["User"] | None = Field(None, serialization_alias="$ref", validation_alias="$ref")


class WorkEmail(Email):
    """An email whose address is required (an entry without one says nothing)."""

    value: Annotated[str | None, Required.true] = None


class EnterpriseUser(Extension):
    """The enterprise extension's attributes fairdraft keeps."""

    __schema__ = URN(ENTERPRISE_URN)

    employee_number: str | None = None
    department: str | None = None
    manager: Manager | None = None


class User(Resource[EnterpriseUser]):
    """The core User's attributes fairdraft keeps."""

    __schema__ = URN(USER_URN)

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    name: Name | None = None
    display_name: str | None = None
    title: str | None = None
    active: bool | None = None
    emails: Annotated[list[WorkEmail] | None, Required.true] = None


def schemas() -> list[Schema]:
    """/Schemas: the User, the enterprise extension and the Group."""
    return [
        _located(User.to_schema()),
        _located(EnterpriseUser.to_schema()),
        _located(Group.to_schema()),
    ]


def _located(schema: Schema) -> Schema:
    schema.meta = None
    return schema


def resource_types() -> list[ResourceType]:
    """/ResourceTypes: User (with the enterprise extension) and Group."""
    return [ResourceType.from_resource(User), ResourceType.from_resource(Group)]


def service_provider_config(max_results: int) -> ServiceProviderConfig:
    """What the server does: PATCH and filters (up to `max_results` a page), no bulk, no
    sorting, no ETags, no password change; a bearer token."""
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=max_results),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="Bearer token",
                description="The token set in FAIRDRAFT_SCIM_TOKEN, as a bearer token.",
                primary=True,
            )
        ],
    )


def dump(model: Any) -> dict[str, Any]:
    """A discovery document as a response body."""
    from scim2_models import Context

    result: dict[str, Any] = model.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return result
