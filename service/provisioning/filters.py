"""The SCIM filters identity providers send, read into terms the queries turn into SQL.

Okta asks `userName eq "..."`; Entra ID `userName eq`, `externalId eq`,
`emails[type eq "work"].value eq`, and for groups `displayName eq`, `id eq "..." and
members[value eq "..."]`. Those, joined by `and`, are what fairdraft answers. Anything
else (other operators, `or`, `not`, attributes outside this list) is refused with 400
invalidFilter rather than evaluated on every row or answered wrong.
"""

from dataclasses import dataclass

from scim2_models import SCIMException, ScimFilter
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    ValuePath,
)

from service.provisioning.errors import ScimInvalid
from service.provisioning.resources import ENTERPRISE_URN, GROUP_URN, USER_URN

USER_ATTRIBUTES = frozenset(
    {"id", "username", "externalid", "displayname", "emails.value", "employeenumber"}
)
GROUP_ATTRIBUTES = frozenset({"id", "displayname", "externalid", "members.value"})
MAX_FILTER_CHARS = 1000


@dataclass(frozen=True)
class Term:
    """`attribute eq value`: the attribute lowercased, dotted for a sub-attribute."""

    attribute: str
    value: str


def parse_filter(text: str | None, allowed: frozenset[str]) -> list[Term]:
    """The terms of `text`, all of which must hold; [] for no filter."""
    if text is None or not text.strip():
        return []
    if len(text) > MAX_FILTER_CHARS:
        raise _refused(f"the filter is over {MAX_FILTER_CHARS} characters")
    try:
        node = ScimFilter(text).ast
    except (SCIMException, ValueError) as exc:
        raise _refused(f"the filter {text!r} cannot be parsed: {exc}") from None
    return list(_terms(node, allowed, text))


def _terms(node: FilterNode, allowed: frozenset[str], text: str) -> list[Term]:
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_:
        return [term for part in node.terms for term in _terms(part, allowed, text)]
    if isinstance(node, Comparison):
        return [_term(node.attr_path, node, allowed, text)]
    if isinstance(node, ValuePath) and node.sub_attr is None:
        return _value_path(node, allowed, text)
    raise _refused(f"the filter {text!r} is not one fairdraft answers: {_SUPPORTED}")


def _value_path(node: ValuePath, allowed: frozenset[str], text: str) -> list[Term]:
    """`emails[type eq "work" and value eq "x"]` (Entra writes the first `emails[type eq
    "work"].value eq "x"`, parsed the same way): the value term counts, the type is any."""
    inner = node.val_filter
    parts = inner.terms if isinstance(inner, LogicalExpr) and inner.op == "and" else (inner,)
    found: list[Term] = []
    for part in parts:
        if not isinstance(part, Comparison) or part.op != CompareOperator.eq:
            raise _refused(f"the filter {text!r} is not one fairdraft answers: {_SUPPORTED}")
        name = part.attr_path.attr.lower()
        if name == "type":
            continue
        path = AttrPath(attr=node.attr_path.attr, sub_attr=part.attr_path.attr)
        found.append(_term(path, part, allowed, text))
    if not found:
        raise _refused(f"the filter {text!r} names no value to match")
    return found


def _term(path: AttrPath, node: Comparison, allowed: frozenset[str], text: str) -> Term:
    if node.op != CompareOperator.eq or not isinstance(node.value, str):
        raise _refused(f"the filter {text!r} is not one fairdraft answers: {_SUPPORTED}")
    if path.uri not in (None, USER_URN, GROUP_URN, ENTERPRISE_URN):
        raise _refused(f"the filter {text!r} names a schema fairdraft does not publish")
    name = path.attr.lower() + (f".{path.sub_attr.lower()}" if path.sub_attr else "")
    if name not in allowed:
        raise _refused(f"the filter {text!r} is not one fairdraft answers: {_SUPPORTED}")
    return Term(attribute=name, value=node.value)


_SUPPORTED = "eq on userName, externalId, id, displayName, emails.value or members.value"


def _refused(message: str) -> ScimInvalid:
    return ScimInvalid(message, scim_type="invalidFilter", field="filter")
