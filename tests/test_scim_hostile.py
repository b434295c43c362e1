"""Hostile and malformed SCIM requests: every one a SCIM error (application/scim+json,
`status`, `scimType` where RFC 7644 §3.12 has one), never a 500, nothing half-written."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, insert, select

from service.app import create_app
from service.db.models import Person, ScimUser
from service.settings import Settings
from tests.scim_server import SCIM_TOKEN

SCIM = {"Authorization": f"Bearer {SCIM_TOKEN}", "Content-Type": "application/scim+json"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def scim(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"scim_token": SecretStr(SCIM_TOKEN)})
    app = create_app(configured, engine=engine, worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def user(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": f"{name}@example.org",
        "emails": [{"value": f"{name}@example.org", "primary": True}],
        **extra,
    }


def refused(answer: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/scim+json")
    body: dict[str, Any] = answer.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def people(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Person)) or 0)


BAD_FILTERS = [
    'userName sw "a"',
    'userName eq "a" or userName eq "b"',
    'not (userName eq "a")',
    'title eq "x"',
    "userName eq",
    "((((",
    'userName eq "a"' + ' and userName eq "a"' * 200,
    'meta.lastModified gt "2020-01-01T00:00:00Z"',
    'emails[type eq "work" or value eq "x"]',
    "userName pr",
    'urn:example:custom:2.0:User:x eq "1"',
    '"; DROP TABLE people; --',
]


@pytest.mark.parametrize("bad", BAD_FILTERS)
def test_a_filter_fairdraft_does_not_answer_is_400_invalid_filter(
    scim: TestClient, bad: str
) -> None:
    refused(scim.get("/scim/v2/Users", params={"filter": bad}, headers=SCIM), 400, "invalidFilter")


def test_bad_list_parameters_are_400_and_odd_ones_are_clamped(scim: TestClient) -> None:
    for params in ({"startIndex": "x"}, {"count": "1e9"}, {"count": "99999999999"}):
        refused(scim.get("/scim/v2/Users", params=params, headers=SCIM), 400, "invalidValue")
    clamped = scim.get("/scim/v2/Users", params={"startIndex": "-5", "count": "-1"}, headers=SCIM)
    assert clamped.status_code == 200
    assert clamped.json()["startIndex"] == 1 and clamped.json()["itemsPerPage"] == 0
    bad_attributes = scim.get("/scim/v2/Users", params={"attributes": "emails[x"}, headers=SCIM)
    assert bad_attributes.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b"null",
        b'"a string"',
        b"[" * 100_000,
        b"[" * 900 + b"]" * 900,
        b'{"userName": ' + b"1" * 5000 + b"}",
        b'{"a": NaN}',
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(scim: TestClient, body: bytes) -> None:
    before_status = scim.post("/scim/v2/Users", content=body, headers=SCIM)
    refused(before_status, 400)


def test_a_huge_body_is_413_in_scim_shape(scim: TestClient, engine: Engine) -> None:
    huge = user("huge", displayName="x" * (2 * 1024 * 1024))
    refused(scim.post("/scim/v2/Users", json=huge, headers=SCIM), 413)
    # Streamed without a declared length: cut off as it arrives, answered the same way.
    chunks = (b"x" * 65536 for _ in range(40))
    refused(scim.post("/scim/v2/Users", content=chunks, headers=SCIM), 413)
    assert people(engine) == 0


def test_markup_in_names_is_kept_as_text_and_answered_as_json(
    scim: TestClient, engine: Engine
) -> None:
    markup = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'
    created = scim.post(
        "/scim/v2/Users",
        json=user("markup", displayName=markup, title="<b>Lead</b>"),
        headers=SCIM,
    )
    assert created.status_code == 201, created.text
    assert created.json()["displayName"] == markup
    with engine.connect() as conn:
        name, family = conn.execute(select(Person.name, Person.job_family)).one()
    assert (name, family) == (markup, "<b>Lead</b>")  # stored as given; pages escape it


@pytest.mark.parametrize(
    ("body", "scim_type", "field_word"),
    [
        (user("nul", displayName="a\x00b"), "invalidValue", "displayName"),
        (user("long", displayName="y" * 3000), "invalidValue", "displayName"),
        ({"schemas": [USER], "userName": "no-email"}, "invalidValue", "email"),
        (user("bad", emails=[{"value": "not an address"}]), "invalidValue", "emails"),
        ({"schemas": [USER], "emails": [{"value": "a@b.org"}]}, None, "userName"),
        (user("wrongtype", active={"x": 1}), None, "active"),
        (user("mgr", **{ENTERPRISE: {"manager": {"value": "999999"}}}), "invalidValue", "manager"),
        (
            user("mgr2", **{ENTERPRISE: {"manager": {"value": "../../etc"}}}),
            "invalidValue",
            "manager",
        ),
        (
            user("emp", **{ENTERPRISE: {"employeeNumber": "e" * 65}}),
            "invalidValue",
            "employeeNumber",
        ),
        ({"schemas": ["urn:example:not:scim"], "userName": "x@y.org"}, None, None),
    ],
)
def test_invalid_users_are_400_with_the_attribute_named_and_nothing_written(
    scim: TestClient,
    engine: Engine,
    body: dict[str, Any],
    scim_type: str | None,
    field_word: str | None,
) -> None:
    answer = refused(scim.post("/scim/v2/Users", json=body, headers=SCIM), 400, scim_type)
    if field_word is not None:
        assert field_word.lower() in answer["detail"].lower(), answer
    assert people(engine) == 0


def test_a_taken_user_name_or_email_is_409_uniqueness(scim: TestClient) -> None:
    assert scim.post("/scim/v2/Users", json=user("ann"), headers=SCIM).status_code == 201
    again = user("ann")
    refused(scim.post("/scim/v2/Users", json=again, headers=SCIM), 409, "uniqueness")
    other = user("bob", userName="ANN@example.org")
    refused(scim.post("/scim/v2/Users", json=other, headers=SCIM), 409, "uniqueness")


def test_a_manager_loop_or_self_management_is_refused(scim: TestClient, engine: Engine) -> None:
    ann = scim.post("/scim/v2/Users", json=user("ann"), headers=SCIM).json()["id"]
    bob = scim.post(
        "/scim/v2/Users",
        json=user("bob", **{ENTERPRISE: {"manager": {"value": ann}}}),
        headers=SCIM,
    ).json()["id"]
    for target, manager in ((ann, bob), (ann, ann)):
        patch = {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": f"{ENTERPRISE}:manager", "value": manager}],
        }
        refused(
            scim.patch(f"/scim/v2/Users/{target}", json=patch, headers=SCIM), 400, "invalidValue"
        )
    with engine.connect() as conn:
        assert conn.scalar(select(Person.manager_id).where(Person.id == int(ann))) is None


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "explode", "path": "displayName", "value": "x"}],
        [{"op": "replace", "path": "no such attribute!", "value": "x"}],
        [{"op": "replace", "path": "emails[type eq", "value": "x"}],
        [{"op": "remove"}],
        "not a list",
        [],
    ],
)
def test_bad_patches_are_400_and_change_nothing(
    scim: TestClient, engine: Engine, operations: Any
) -> None:
    ann = scim.post("/scim/v2/Users", json=user("ann", displayName="Ann"), headers=SCIM)
    patch = {"schemas": [PATCH], "Operations": operations}
    refused(scim.patch(f"/scim/v2/Users/{ann.json()['id']}", json=patch, headers=SCIM), 400)
    with engine.connect() as conn:
        assert conn.scalar(select(Person.name)) == "Ann"


@pytest.mark.parametrize(
    ("operation", "detail"),
    [
        (
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": 5},
            'emails[type eq "work"].value: must be a string',
        ),
        ({"op": "replace", "path": "active", "value": "maybe"}, "active: must be true or false"),
        ({"op": "replace", "value": {"active": "maybe"}}, "active: must be true or false"),
        ({"op": "replace", "path": "name.givenName", "value": [1]}, "name.givenName: must be"),
    ],
)
def test_a_patch_value_of_the_wrong_type_is_told_by_its_path_not_by_pydantic(
    scim: TestClient, engine: Engine, operation: dict[str, Any], detail: str
) -> None:
    ann = scim.post("/scim/v2/Users", json=user("ann", displayName="Ann"), headers=SCIM)
    patch = {"schemas": [PATCH], "Operations": [operation]}
    body = refused(
        scim.patch(f"/scim/v2/Users/{ann.json()['id']}", json=patch, headers=SCIM),
        400,
        "invalidValue",
    )
    assert body["detail"].startswith(detail), body
    for leak in ("validation error", "pydantic", "http", "\n", "WorkEmail", "[type="):
        assert leak not in body["detail"], body
    with engine.connect() as conn:
        assert conn.scalar(select(Person.active)) is True


def test_a_group_patch_value_of_the_wrong_type_is_told_by_its_path(scim: TestClient) -> None:
    group = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Core"}
    created = scim.post("/scim/v2/Groups", json=group, headers=SCIM)
    assert created.status_code == 201, created.text
    patch = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "displayName", "value": 5}],
    }
    body = refused(
        scim.patch(f"/scim/v2/Groups/{created.json()['id']}", json=patch, headers=SCIM), 400
    )
    assert body["detail"] == "displayName: must be a string", body


def test_unknown_ids_paths_and_methods_are_scim_errors(scim: TestClient) -> None:
    for path in (
        "/Users/999999",
        "/Users/abc",
        "/Users/1%00",
        "/Groups/not-a-uuid",
        "/Groups/00000000-0000-0000-0000-000000000000",
        "/Nothing",
        "/Users/1/x",
    ):
        refused(scim.get(f"/scim/v2{path}", headers=SCIM), 404)
    refused(scim.delete("/scim/v2/Schemas", headers=SCIM), 405)
    refused(scim.post("/scim/v2/.search", json={}, headers=SCIM), 501)


def test_a_group_with_a_member_who_is_no_user_is_refused(scim: TestClient) -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "<i>Team</i>",
        "members": [{"value": "424242"}],
    }
    refused(scim.post("/scim/v2/Groups", json=body, headers=SCIM), 400, "invalidValue")
    refused(scim.post("/scim/v2/Groups", json={"schemas": body["schemas"]}, headers=SCIM), 400)


def test_a_person_from_people_csv_is_linked_not_duplicated(
    scim: TestClient, engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(Person).values(
                employee_id="E900",
                name="Hrs Person",
                email="kim@example.org",
                level="L4",
                job_family="eng",
                department="Core",
                location="Oslo",
            )
        )
    created = scim.post("/scim/v2/Users", json=user("kim", displayName="Kim Lee"), headers=SCIM)
    assert created.status_code == 201, created.text
    with engine.connect() as conn:
        row = conn.execute(select(Person.__table__)).mappings().one()
        assert conn.scalar(select(func.count()).select_from(ScimUser)) == 1
    assert (row["name"], row["employee_id"], row["level"], row["department"]) == (
        "Kim Lee",
        "E900",
        "L4",
        "Core",
    )


def test_two_creates_racing_for_one_user_name_give_one_person_and_a_409(engine: Engine) -> None:
    """Both pass the uniqueness checks (neither sees the other's uncommitted row); the
    unique index stops the second, told as 409 uniqueness, not a 500."""
    import threading

    from service.provisioning.errors import ScimConflict
    from service.provisioning.users import Defaults, create_user

    defaults = Defaults("L1", "eng", "Core", "Oslo")
    outcome: list[object] = []
    first = engine.connect()
    transaction = first.begin()
    create_user(first, user("race"), defaults)

    def second() -> None:
        try:
            with engine.begin() as conn:
                create_user(conn, user("race"), defaults)
            outcome.append("created")
        except ScimConflict as exc:
            outcome.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive(), "the second create should wait on the first's row"
    transaction.commit()
    first.close()
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], ScimConflict)
    assert people(engine) == 1


def test_a_database_that_is_down_is_a_scim_503(settings: Settings) -> None:
    from service.db.engine import make_engine

    configured = settings.model_copy(update={"scim_token": SecretStr(SCIM_TOKEN)})
    down = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/nothing")
    with TestClient(create_app(configured, engine=down, worker=False)) as client:
        answer = client.get("/scim/v2/Users", headers=SCIM)
    down.dispose()
    refused(answer, 503)
    assert answer.headers["retry-after"]


def test_a_user_name_that_is_another_persons_email_is_taken(
    scim: TestClient, engine: Engine
) -> None:
    """A person SCIM never wrote answers `userName eq` with their email: a new user may
    not take it as its userName, or one filter would find two users."""
    with engine.begin() as conn:
        conn.execute(
            insert(Person).values(
                employee_id="E901",
                name="Lee",
                email="lee@example.org",
                level="L4",
                job_family="eng",
                department="Core",
                location="Oslo",
            )
        )
    body = user("other", userName="LEE@example.org")
    refused(scim.post("/scim/v2/Users", json=body, headers=SCIM), 409, "uniqueness")
    assert people(engine) == 1
