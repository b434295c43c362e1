"""Okta's and Microsoft Entra ID's provisioning sequences (tests/fixtures/scim/, shaped
from their SCIM documentation) replayed against the app: create, update the manager,
deactivate, groups; asserting the people table, manager_history (written by the trigger of
migration 0017) and the audit trail."""

import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, insert, select, update

from service.app import create_app
from service.db.models import AuditEvent, ManagerSpell, Person, ScimGroupMember
from service.ingest.people import ingest_people
from service.settings import Settings
from tests.scim_server import SCIM_TOKEN

FIXTURES = Path(__file__).parent / "fixtures" / "scim"
SCIM = {"Authorization": f"Bearer {SCIM_TOKEN}", "Content-Type": "application/scim+json"}


@pytest.fixture
def scim(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"scim_token": SecretStr(SCIM_TOKEN)})
    with TestClient(create_app(configured, engine=engine, worker=False)) as client:
        yield client


def replay(client: TestClient, name: str) -> dict[str, Any]:
    """Every step of a fixture, the ids the answers carry filled in; the answers by step."""
    sequence = json.loads((FIXTURES / name).read_text())
    assert sequence["source"].startswith(("Okta", "Microsoft"))
    ids: dict[str, str] = {}
    answers: dict[str, Any] = {}
    for step in sequence["steps"]:
        path = _filled(step["path"], ids)
        body = _filled(step.get("body"), ids)
        content = json.dumps(body) if body is not None else None
        response = client.request(step["method"], f"/scim/v2{path}", content=content, headers=SCIM)
        assert response.status_code == step["expect"], (step["name"], response.text)
        if response.content:
            assert response.headers["content-type"].startswith("application/scim+json")
            answers[step["name"]] = response.json()
        if "save" in step:
            ids[step["save"]] = response.json()["id"]
    answers["ids"] = ids
    return answers


def _filled(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{\{(\w+)\}\}", lambda m: ids[m.group(1)], value)
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    return value


def spells(engine: Engine, person_id: int) -> list[tuple[int | None, bool]]:
    """(manager, still open) of each of the person's manager spells, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(ManagerSpell.manager_id, ManagerSpell.ended_at)
            .where(ManagerSpell.person_id == person_id)
            .order_by(ManagerSpell.id)
        ).all()
    return [(manager, ended is None) for manager, ended in rows]


def person(engine: Engine, person_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(Person.__table__).where(Person.id == person_id)).mappings().one()


def test_okta_creates_moves_groups_and_deactivates_a_person(
    scim: TestClient, engine: Engine
) -> None:
    answers = replay(scim, "okta.json")
    user, manager = int(answers["ids"]["user"]), int(answers["ids"]["manager"])
    assert answers["the manager does not exist yet"]["totalResults"] == 0
    row = person(engine, user)
    assert row["email"] == "test.user@okta.local"
    assert row["name"] == "Another User"
    assert row["department"] == "Payments"
    assert row["manager_id"] == manager
    assert row["employee_id"].startswith("scim-")  # Okta sends no employeeNumber
    assert (row["level"], row["job_family"], row["location"]) == ("unassigned",) * 3
    assert row["active"] is False and row["left_on"] == date.today()
    assert spells(engine, user) == [(None, False), (manager, True)]
    created = answers["create the user"]
    assert created["id"] == str(user) and created["meta"]["location"].endswith(f"/Users/{user}")
    assert "password" not in created and "locale" not in created
    with engine.connect() as conn:
        members = conn.scalars(select(ScimGroupMember.person_id)).all()
        actions = conn.scalars(
            select(AuditEvent.action).where(AuditEvent.entity_id == str(user))
        ).all()
    assert members == [user]
    assert answers["rename the group (replace without a path, id included)"]["displayName"] == (
        "Payments team"
    )
    assert {"scim.user.created", "scim.user.updated", "scim.user.deactivated"} <= set(actions)


def test_entra_creates_moves_disables_and_deletes_but_keeps_the_person(
    scim: TestClient, engine: Engine
) -> None:
    answers = replay(scim, "entra.json")
    user, manager = int(answers["ids"]["user"]), int(answers["ids"]["manager"])
    row = person(engine, user)
    assert row["employee_id"] == "701984"
    assert row["manager_id"] == manager
    assert row["email"] == "updatedemail@testuser.com"  # the work email Entra replaced
    assert row["name"] == "Updated Name"
    assert row["department"] == "Finance"
    assert row["active"] is False and row["left_on"] == date.today()
    assert spells(engine, user) == [(None, False), (manager, True)]
    found = answers["check membership, members excluded from the answer"]
    assert found["totalResults"] == 1 and "members" not in found["Resources"][0]
    with engine.connect() as conn:
        assert conn.scalars(select(ScimGroupMember.person_id)).all() == []
    # Deleted through SCIM: gone from SCIM, kept (inactive) in fairdraft.
    listed = scim.get("/scim/v2/Users", params={"filter": f'id eq "{user}"'}, headers=SCIM)
    assert listed.json()["totalResults"] == 0


def test_entra_answers_what_it_patched(scim: TestClient) -> None:
    answers = replay(scim, "entra.json")
    updated = answers["update multi-valued properties"]
    assert updated["emails"] == [
        {"primary": True, "type": "work", "value": "updatedEmail@testuser.com"}
    ]
    assert updated["name"]["familyName"] == "updatedFamilyName"
    moved = answers[
        'set the manager: its URN path, the bare id as the value, "Replace" capitalised'
    ]
    enterprise = moved["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    assert enterprise["manager"]["value"] == answers["ids"]["manager"]
    disabled = answers['disable the user: active as the string "False"']
    assert disabled["active"] is False


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _create(client: TestClient, name: str, **extra: Any) -> str:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"{name}@example.org",
        "emails": [{"value": f"{name}@example.org", "primary": True}],
        **extra,
    }
    answer = client.post("/scim/v2/Users", json=body, headers=SCIM)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _patch(client: TestClient, user: str, *operations: dict[str, Any]) -> Any:
    body = {"schemas": [PATCH], "Operations": list(operations)}
    answer = client.patch(f"/scim/v2/Users/{user}", json=body, headers=SCIM)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_manager_set_by_a_pathless_key_then_removed_keeps_its_history(
    scim: TestClient, engine: Engine
) -> None:
    boss, worker = _create(scim, "boss"), _create(scim, "worker")
    _patch(scim, worker, {"op": "Add", "value": {f"{ENTERPRISE}:manager": boss}})
    assert person(engine, int(worker))["manager_id"] == int(boss)
    _patch(scim, worker, {"op": "Remove", "path": f"{ENTERPRISE}:manager"})
    assert person(engine, int(worker))["manager_id"] is None
    assert spells(engine, int(worker)) == [(None, False), (int(boss), False), (None, True)]


def test_what_people_changed_since_wins_in_the_answer(scim: TestClient, engine: Engine) -> None:
    """An HRIS import moved the person after the provider wrote: SCIM answers people's
    department, and a provider that never sent a manager does not erase the HRIS's."""
    boss = _create(scim, "boss")
    worker = _create(scim, "worker", **{ENTERPRISE: {"department": "Sales"}})
    with engine.begin() as conn:
        conn.execute(
            update(Person)
            .where(Person.id == int(worker))
            .values(department="Support", manager_id=int(boss))
        )
    shown = scim.get(f"/scim/v2/Users/{worker}", headers=SCIM).json()
    assert shown[ENTERPRISE]["department"] == "Support"
    _patch(scim, worker, {"op": "replace", "path": "displayName", "value": "Wendy Worker"})
    row = person(engine, int(worker))
    assert (row["name"], row["department"], row["manager_id"]) == (
        "Wendy Worker",
        "Support",
        int(boss),
    )


def test_lists_page_by_start_index_and_count(scim: TestClient) -> None:
    ids = [_create(scim, f"user{n}") for n in range(5)]
    page = scim.get("/scim/v2/Users", params={"startIndex": 2, "count": 2}, headers=SCIM).json()
    assert page["totalResults"] == 5 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [r["id"] for r in page["Resources"]] == ids[1:3]
    searched = scim.post(
        "/scim/v2/Users/.search",
        json={"filter": 'userName eq "USER3@example.org"', "attributes": ["userName"]},
        headers=SCIM,
    ).json()
    assert searched["totalResults"] == 1
    assert set(searched["Resources"][0]) == {"schemas", "id", "userName"}


def test_okta_putting_a_person_from_people_csv_keeps_the_hris_manager(
    scim: TestClient, engine: Engine
) -> None:
    """Okta finds a person people.csv brought (userName eq), then PUTs its profile with no
    enterprise extension (manager not mapped in Okta): the HRIS's manager stays."""
    with engine.begin() as conn:
        boss = conn.scalar(
            insert(Person)
            .values(
                employee_id="E1",
                name="Boss",
                email="boss@example.org",
                level="L6",
                job_family="eng",
                department="Core",
                location="Oslo",
            )
            .returning(Person.id)
        )
        worker = conn.scalar(
            insert(Person)
            .values(
                employee_id="E2",
                name="Worker",
                email="worker@example.org",
                level="L3",
                job_family="eng",
                department="Core",
                location="Oslo",
                manager_id=boss,
            )
            .returning(Person.id)
        )
    found = scim.get(
        "/scim/v2/Users", params={"filter": 'userName eq "worker@example.org"'}, headers=SCIM
    ).json()["Resources"][0]
    assert found["id"] == str(worker)
    profile = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": str(worker),
        "userName": "worker@example.org",
        "name": {"givenName": "Wen", "familyName": "Worker"},
        "emails": [{"primary": True, "value": "worker@example.org", "type": "work"}],
        "displayName": "Wen Worker",
        "active": True,
    }
    answer = scim.put(f"/scim/v2/Users/{worker}", json=profile, headers=SCIM)
    assert answer.status_code == 200, answer.text
    row = person(engine, int(worker or 0))
    assert (row["name"], row["manager_id"], row["employee_id"], row["level"]) == (
        "Wen Worker",
        boss,
        "E2",
        "L3",
    )


def test_a_user_deleted_through_scim_leaves_its_groups(scim: TestClient, engine: Engine) -> None:
    member = _create(scim, "member")
    group = scim.post(
        "/scim/v2/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Team",
            "members": [{"value": member}],
        },
        headers=SCIM,
    ).json()["id"]
    assert scim.delete(f"/scim/v2/Users/{member}", headers=SCIM).status_code == 204
    shown = scim.get(f"/scim/v2/Groups/{group}", headers=SCIM).json()
    assert "members" not in shown
    listed = scim.get(
        "/scim/v2/Groups", params={"filter": f'members[value eq "{member}"]'}, headers=SCIM
    ).json()
    assert listed["totalResults"] == 0
    assert person(engine, int(member))["active"] is False


def test_entra_s_manager_as_a_bare_string_in_the_extension_is_read_as_its_value(
    scim: TestClient, engine: Engine
) -> None:
    """Entra sends the extension's manager as the id string, not {"value": id} (issue
    apache/directory-scimple#1242, Microsoft Q&A 188003): on create and in a PATCH value."""
    boss, other = _create(scim, "boss"), _create(scim, "other")
    worker = _create(scim, "worker", **{ENTERPRISE: {"manager": boss, "department": "Ops"}})
    assert person(engine, int(worker))["manager_id"] == int(boss)
    _patch(scim, worker, {"op": "Replace", "value": {ENTERPRISE: {"manager": other}}})
    assert person(engine, int(worker))["manager_id"] == int(other)
    assert spells(engine, int(worker)) == [(int(boss), False), (int(other), True)]


def test_an_email_in_any_case_is_stored_lower_case_and_found_in_any_case(
    scim: TestClient, engine: Engine, tmp_path: Path
) -> None:
    """Okta and Entra send either case; people.csv stores lower case: one address, one
    person, whichever of them writes it."""
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": "Ana.Lima@Example.com",
        "emails": [{"value": "Ana.Lima@Example.com", "type": "work", "primary": True}],
        ENTERPRISE: {"employeeNumber": "E77"},
    }
    created = scim.post("/scim/v2/Users", json=body, headers=SCIM)
    assert created.status_code == 201, created.text
    ana = int(created.json()["id"])
    assert person(engine, ana)["email"] == "ana.lima@example.com"
    for scim_filter in (
        'userName eq "ANA.LIMA@example.COM"',
        'userName eq "ana.lima@example.com"',
        'emails[type eq "work"].value eq "ANA.Lima@EXAMPLE.com"',
        'emails.value eq "ana.lima@example.com"',
    ):
        found = scim.get("/scim/v2/Users", params={"filter": scim_filter}, headers=SCIM).json()
        assert [r["id"] for r in found["Resources"]] == [str(ana)], scim_filter
    # The same address in another case is the same user: a second create is refused.
    other_case = {**body, "userName": "ANA.LIMA@example.com"}
    other_case["emails"] = [{"value": "ana.lima@EXAMPLE.com", "primary": True}]
    again = scim.post("/scim/v2/Users", json=other_case, headers=SCIM)
    assert again.status_code == 409 and again.json()["scimType"] == "uniqueness", again.text

    people_csv = tmp_path / "people.csv"
    people_csv.write_text(
        "employee_id,name,email,manager_id,level,job_family,department,location,hire_date\n"
        "E77,Ana Lima,ana.lima@example.com,,L4,eng,Payments,Lisbon,2024-01-02\n",
        encoding="utf-8",
    )
    summary = ingest_people(engine, people_csv, actor="test", skip_invalid=False, batch_rows=500)
    assert (summary.inserted, summary.updated) == (0, 1)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Person.id, Person.email).where(Person.email.ilike("ana.lima@example.com"))
        ).all()
    assert [(r.id, r.email) for r in rows] == [(ana, "ana.lima@example.com")]
    assert person(engine, ana)["level"] == "L4"
