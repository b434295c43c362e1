"""The operator's lists at the command line: `people`, `drafts list`, `token list`, `panel
list`. Each answers from the real database as a table or, with --json, as one JSON document
holding the same facts; names from people.csv (rich markup, terminal escape sequences,
bidirectional overrides) are printed as typed, never acted on; a token is never printed."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine, insert, select, update
from typer.testing import CliRunner, Result

from service.access.people import PersonLine
from service.access.sessions import SessionLifetime, open_session
from service.access.tokens import TokenLine, token_hash
from service.calibration.panels import PanelLine, place
from service.cli import app
from service.cli_lists import STATUSES
from service.cli_output import (
    DRAFT_COLUMNS,
    PANEL_COLUMNS,
    PEOPLE_COLUMNS,
    TOKEN_COLUMNS,
    Column,
)
from service.db.models import ApiToken, Draft, DraftCheck, FlagAcknowledgement, Person
from service.drafting.store import DRAFT_STATUSES, DraftLine
from service.ingest.run import Ingestor, ingest_path
from service.settings import get_settings
from tests.api_org import ApiOrg

runner = CliRunner()
MARKUP = "[/] [link=https://evil.example]click[/link] [bold red]x[/]"
ESCAPES = "\x1b]8;;https://evil.example\x1b\\here\x1b]8;;\x1b\\ \x1b[2J\x1b[31m \u202eevil \x9b31m"
HOSTILE_NAME = f"Mal {MARKUP} {ESCAPES} Lee"
HOSTILE_DEPARTMENT = "[bold]Ops[/bold]\x1b[5m"


@pytest.fixture(autouse=True)
def _cli_database(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_MODEL", "hashing-384")
    get_settings.cache_clear()


@pytest.fixture
def org(api_org: ApiOrg, ingestor: Ingestor, tmp_path: Path) -> ApiOrg:
    """The API tests' company (a token per person, Hal in HR, Pat on the L3 panel, three
    drafts) and Mal, Bo's report, whose name and department came in hostile."""
    people = tmp_path / "mal" / "people.csv"
    people.parent.mkdir()
    people.write_text(
        "employee_id,name,email,manager_id,level,job_family,department,location,hire_date\n"
        f'E666,"{HOSTILE_NAME}",mal.lee@example.com,E002,L3,sales,"{HOSTILE_DEPARTMENT}",'
        "Remote,2024-01-02\n",
        encoding="utf-8",
    )
    (summary,) = ingest_path(ingestor, people)
    assert summary.inserted == 1, summary
    with ingestor.engine.connect() as conn:
        api_org.ids["mal"] = conn.execute(
            select(Person.id).where(Person.employee_id == "E666")
        ).scalar_one()
    return api_org


def invoke(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def listing(*args: str) -> dict[str, Any]:
    """The command's --json answer: exactly one JSON document on stdout."""
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def items(*args: str) -> list[dict[str, Any]]:
    found = listing(*args)["items"]
    assert isinstance(found, list)
    return found


def by(key: str, rows: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """The rows by the value of one of their fields (an id or an employee id)."""
    return {row[key]: row for row in rows}


# ---------------------------------------------------------------------------- people


def test_people_lists_everyone_with_their_roles_manager_and_whether_they_can_act(
    org: ApiOrg, engine: Engine
) -> None:
    with engine.begin() as conn:  # Dee's token revoked: nothing left to act with
        conn.execute(
            update(ApiToken)
            .where(ApiToken.person_id == org.ids["dee"])
            .values(revoked_at=datetime.now(UTC))
        )

    document = listing("people")
    people = by("employee_id", document["items"])

    assert document["total"] == 9 and len(people) == 9
    assert people["E003"] == {
        "employee_id": "E003",
        "name": "Cy Diaz",
        "email": "cy.diaz@example.com",
        "roles": ["employee"],
        "manager": "E002",
        "level": "L3",
        "department": "Payments",
        "active": True,
    }
    assert people["E002"]["roles"] == ["employee", "manager"]
    assert people["E001"]["roles"] == ["employee", "manager"] and people["E001"]["manager"] is None
    assert people["E007"]["roles"] == ["employee", "hr_admin"]
    assert people["E008"]["roles"] == ["employee", "calibration_panel"]
    assert people["E004"]["active"] is False  # revoked token
    assert people["E666"]["active"] is False  # never given one


def test_a_page_session_makes_a_person_active_until_it_ends(org: ApiOrg, engine: Engine) -> None:
    lifetime = SessionLifetime(idle=timedelta(minutes=30), absolute=timedelta(hours=8))
    with engine.begin() as conn:
        open_session(conn, org.ids["mal"], lifetime=lifetime)

    assert by("employee_id", items("people"))["E666"]["active"] is True


def test_people_search_matches_name_email_or_id_in_any_case_and_wildcards_are_text(
    org: ApiOrg,
) -> None:
    def found(search: str) -> list[str]:
        return sorted(row["employee_id"] for row in items("people", "--search", search))

    assert found("CHEN") == ["E002"]  # name, any case
    assert found("hal.berg@") == ["E007"]  # email
    assert found("e66") == ["E666"]  # employee id
    assert found("[bold red]") == ["E666"]  # markup is text to search for, too
    assert found("%") == [] and found("_") == []  # LIKE wildcards match only themselves
    assert found("nobody") == []


def test_people_pages_say_where_they_are_and_how_to_get_the_next(org: ApiOrg) -> None:
    document = listing("people", "--limit", "3", "--offset", "3")
    text = invoke("people", "--limit", "3", "--offset", "3")

    assert (document["total"], document["offset"], document["limit"]) == (9, 3, 3)
    assert len(document["items"]) == 3
    assert "4 to 6 of 9; next page: --offset 6" in text.stdout
    names = [row["name"] for row in items("people")]
    assert names == sorted(names)  # by name, so pages are stable


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["people", "--limit", "0"], "error: --limit: 0 is not a page size; give 1 to 500"),
        (["people", "--limit", "501"], "error: --limit: 501 is not a page size"),
        (["people", "--offset", "-1"], "error: --offset: -1 is not a position"),
        (["people", "--search", "x" * 201], "error: --search: 201 characters; give at most 200"),
        (["people", "--search", "a\x00b"], "error: --search: a NUL character cannot be"),
        (["drafts", "list", "--status", "done"], "error: --status: 'done' is not a status"),
        (["drafts", "list", "--kind", "memo"], "error: --kind: unknown draft kind 'memo'"),
        (["drafts", "list", "--cycle", "2026-H9"], "error: '2026-H9' is not a period"),
        (["panel", "list", "--cycle", "H1"], "error: 'H1' is not a period"),
    ],
)
def test_a_bad_list_option_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = invoke(*args)

    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), result.output


def test_the_statuses_the_cli_accepts_are_the_stored_ones() -> None:
    assert STATUSES == DRAFT_STATUSES


# ---------------------------------------------------------------------- hostile names


def test_a_hostile_name_is_printed_as_typed_and_no_escape_sequence_reaches_the_terminal(
    org: ApiOrg,
) -> None:
    result = invoke("people", "--search", "Mal")
    drafts = invoke("drafts", "list")  # no draft of Mal's: the table still prints

    assert result.exit_code == 0 and drafts.exit_code == 0, result.output
    text = result.stdout
    assert "[bold red]x[/]" in text and "[link=https://evil.example]click[/link]" in text
    assert "[bold]Ops[/bold]" in text
    for control in ("\x1b", "\u202e", "\x9b"):
        assert control not in text
    assert "\\x1b]8;;https://evil.example" in text and "\\u202e" in text and "\\x9b" in text


def test_a_hostile_name_round_trips_through_json_without_raw_control_characters(
    org: ApiOrg,
) -> None:
    result = invoke("people", "--search", "Mal", "--json")

    assert result.exit_code == 0, result.output
    (mal,) = json.loads(result.stdout)["items"]
    assert mal["name"] == HOSTILE_NAME and mal["department"] == HOSTILE_DEPARTMENT
    for control in ("\x1b", "\u202e", "\x9b"):
        assert control not in result.stdout
    assert "\\u001b" in result.stdout and "\\u202e" in result.stdout


def test_a_panel_member_with_a_hostile_name_is_listed_as_typed(org: ApiOrg, engine: Engine) -> None:
    from service.calibration.panels import add_member

    with engine.begin() as conn:
        add_member(conn, org.panel_id, org.ids["mal"], actor="test")

    text = invoke("panel", "list").stdout
    (panel,) = items("panel", "list")

    assert "[bold red]x[/]" in text and "\x1b" not in text
    assert [m["name"] for m in panel["members"]] == [HOSTILE_NAME, "Pat Singh"]


# ---------------------------------------------------------------------------- drafts


def _check(engine: Engine, draft_id: int, version: int, keys: Sequence[str]) -> int:
    """A stored bias check of the draft's version with these flags."""
    flags = [
        {"key": key, "measure": "agentic", "phrase": "helpful", "section": 0, "sentence": 0}
        for key in keys
    ]
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(DraftCheck)
                .values(draft_id=draft_id, version=version, checked_by="t", profile={}, flags=flags)
                .returning(DraftCheck.id)
            ).scalar_one()
        )


def test_drafts_list_shows_each_draft_with_its_version_share_and_open_flags(
    org: ApiOrg, engine: Engine
) -> None:
    checked = _check(engine, org.drafts["cy_self"], 1, ["F1", "F2", "F3"])
    with engine.begin() as conn:
        conn.execute(
            insert(FlagAcknowledgement).values(
                check_id=checked, flag="F2", acknowledged_by="bo", reason="fair"
            )
        )
    _check(engine, org.drafts["fay_self"], 0, ["F1"])  # of a version no longer current

    drafts = by("id", items("drafts", "list"))

    assert set(drafts) == set(org.drafts.values())
    cy_self = drafts[org.drafts["cy_self"]]
    assert cy_self["subject"] == "Cy Diaz" and cy_self["employee_id"] == "E003"
    assert (cy_self["kind"], cy_self["period"], cy_self["version"]) == (
        "self_reflection",
        "2026-H1",
        1,
    )
    assert cy_self["open_flags"] == 2  # three flagged, one kept with a reason
    assert 0 <= cy_self["supported_share"] <= 1
    assert drafts[org.drafts["fay_self"]]["open_flags"] is None  # not checked since
    assert drafts[org.drafts["cy_feedback"]]["open_flags"] is None
    assert "not checked" in invoke("drafts", "list").stdout


def test_drafts_list_filters_by_person_cycle_kind_and_status(org: ApiOrg, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Draft).where(Draft.id == org.drafts["fay_self"]).values(status="checked")
        )

    def ids(*args: str) -> set[int]:
        return {row["id"] for row in items("drafts", "list", *args)}

    d = org.drafts
    assert ids("--person", "cy.diaz@example.com") == {d["cy_self"], d["cy_feedback"]}
    assert ids("--person", "E006") == {d["fay_self"]}
    assert ids("--kind", "self_reflection") == {d["cy_self"], d["fay_self"]}
    assert ids("--status", "checked") == {d["fay_self"]}
    assert ids("--cycle", "2026-H1") == set(d.values())
    assert ids("--cycle", "2025-H1") == set()
    assert ids("--person", "E003", "--kind", "manager_feedback") == {d["cy_feedback"]}


def test_drafts_of_an_unknown_person_are_a_one_line_error(org: ApiOrg) -> None:
    result = invoke("drafts", "list", "--person", "nobody@example.com")

    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: no person with employee_id or email 'nobody@example.com'"
    )


# ---------------------------------------------------------------------------- tokens


def test_token_list_shows_state_and_dates_and_never_the_token(org: ApiOrg, engine: Engine) -> None:
    made = invoke("token", "create", "--person", "E003", "--label", "laptop")
    secret = made.stdout.strip().splitlines()[-1]
    new_id = int(made.stdout.split()[1])  # "token 9 for E003, expires ...:"
    with engine.connect() as conn:
        bo_token = conn.execute(
            select(ApiToken.id).where(ApiToken.person_id == org.ids["bo"])
        ).scalar_one()
    invoke("token", "revoke", str(bo_token))
    with engine.begin() as conn:
        conn.execute(
            update(ApiToken)
            .where(ApiToken.person_id == org.ids["fay"])
            .values(expires_at=datetime.now(UTC) - timedelta(days=1))
        )

    text = invoke("token", "list").stdout
    document = listing("token", "list")
    tokens = by("id", document["items"])

    assert secret.startswith("fd_") and secret not in text + json.dumps(document)
    assert token_hash(secret) not in text + json.dumps(document)
    assert document["total"] == 9  # the fixture's eight, and Cy's laptop
    laptop = tokens[new_id]
    assert (laptop["owner"], laptop["label"], laptop["state"]) == (
        "cy.diaz@example.com",
        "laptop",
        "live",
    )
    assert laptop["created_by"] == "cli:admin" and laptop["revoked_at"] is None
    assert tokens[bo_token]["state"] == "revoked" and tokens[bo_token]["revoked_at"]
    fay = next(t for t in tokens.values() if t["owner"] == "fay.moreau@example.com")
    assert fay["state"] == "expired"
    assert list(tokens) == sorted(tokens, reverse=True)  # newest first


def test_token_list_of_one_person_and_when_a_token_was_last_used(
    org: ApiOrg, engine: Engine
) -> None:
    lifetime = SessionLifetime(idle=timedelta(minutes=30), absolute=timedelta(hours=8))
    with engine.begin() as conn:
        token_id = conn.execute(
            select(ApiToken.id).where(ApiToken.person_id == org.ids["cy"])
        ).scalar_one()
        open_session(conn, org.ids["cy"], lifetime=lifetime, token_id=token_id)

    (cy,) = items("token", "list", "--person", "cy.diaz@example.com")
    others = items("token", "list", "--person", "E002")

    assert cy["id"] == token_id and cy["last_used_at"] is not None
    assert [t["last_used_at"] for t in others] == [None]


# ---------------------------------------------------------------------------- panels


def test_panel_list_shows_the_cohort_its_members_and_how_many_are_placed(
    org: ApiOrg, engine: Engine
) -> None:
    with engine.begin() as conn:
        place(conn, org.panel_id, org.ids["cy"], 2, 3, actor="pat")

    (panel,) = items("panel", "list")
    same_cycle = items("panel", "list", "--cycle", "2026-H1")
    other_cycle = items("panel", "list", "--cycle", "2025-H1")

    assert (panel["id"], panel["cycle"], panel["level"], panel["job_family"]) == (
        org.panel_id,
        "2026-H1",
        "L3",
        "engineering",
    )
    assert panel["members"] == [{"employee_id": "E008", "name": "Pat Singh"}]
    assert (panel["cohort"], panel["placed"]) == (2, 1)  # Cy and Fay; Cy placed
    assert same_cycle == [panel] and other_cycle == []


# ---------------------------------------------------------------- text and JSON agree


@pytest.mark.parametrize(
    ("columns", "model"),
    [
        (PEOPLE_COLUMNS, PersonLine),
        (DRAFT_COLUMNS, DraftLine),
        (TOKEN_COLUMNS, TokenLine),
        (PANEL_COLUMNS, PanelLine),
    ],
)
def test_every_column_of_a_table_is_a_field_of_its_json_in_order_and_back(
    columns: "Sequence[Column[Any]]", model: type[BaseModel]
) -> None:
    headers = [column.header.replace(" ", "_") for column in columns]
    fields = list(model.model_fields)

    assert len(headers) == len(fields)
    for header, field in zip(headers, fields, strict=True):
        assert field.startswith(header), (header, field)


def test_a_text_row_shows_the_values_its_json_item_holds(org: ApiOrg) -> None:
    text = invoke("people", "--search", "Cy Diaz").stdout
    (cy,) = items("people", "--search", "Cy Diaz")

    row = next(line for line in text.splitlines() if "E003" in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells == [
        cy["employee_id"],
        cy["name"],
        cy["email"],
        ", ".join(cy["roles"]),
        cy["manager"],
        cy["level"],
        cy["department"],
        "yes",
    ]
