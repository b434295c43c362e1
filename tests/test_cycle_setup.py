"""Review cycle set-up (issue 16): validation that names the field and the reason, one
cycle per period, starting (everyone's tasks in one statement, exactly once), moving phase
dates, copying to the next period, the CLI, and hostile text kept intact."""

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select, update
from typer.testing import CliRunner

from domain.errors import Conflict, Invalid
from domain.periods import parse_period
from domain.phases import Phase
from service.app import create_app
from service.cli import app as cli_app
from service.cycles.setup import CycleSetupIn, CycleSetupPatch, read_setup_file
from service.cycles.setup_store import (
    copy_cycle,
    create_cycle,
    cycle_setup,
    start_cycle,
    update_setup,
)
from service.cycles.store import create_cycles
from service.db.models import AuditEvent, CycleTask, ReviewCycle
from service.settings import Settings, get_settings
from tests.cycle_org import PERIOD, CycleOrg, build_cycle_org, setup_body
from tests.test_web_escaping import payloads

API = "/api/v1"


@pytest.fixture
def org(engine: Engine) -> CycleOrg:
    return build_cycle_org(engine)


@pytest.fixture
def api(engine: Engine, settings: Settings, org: CycleOrg) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine, worker=False)) as client:
        yield client


def set_up(engine: Engine, **changes: Any) -> None:
    with engine.begin() as conn:
        create_cycle(conn, PERIOD, CycleSetupIn.model_validate(setup_body(**changes)), actor="t")


def start(engine: Engine, name: str = "2026-H1") -> dict[str, int]:
    with engine.begin() as conn:
        return {str(k): v for k, v in start_cycle(conn, name, actor="t").tasks.items()}


def tasks(engine: Engine) -> list[tuple[Any, ...]]:
    """(kind, assignee id, subject id, due day, status) of every task, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                CycleTask.kind,
                CycleTask.assignee_id,
                CycleTask.subject_id,
                CycleTask.due_on,
                CycleTask.status,
            ).order_by(CycleTask.id)
        ).all()
    return [tuple(r) for r in rows]


# --- validation ------------------------------------------------------------------------------


def problem(api: TestClient, org: CycleOrg, body: dict[str, Any]) -> tuple[str, str]:
    """The first (field, reason) of a refused set-up. Sent as ASCII JSON, so that a lone
    surrogate travels as the escape a hostile client would send."""
    response = api.post(
        f"{API}/cycles",
        content=json.dumps({"period": "2026-H1", **body}),
        headers={**org.auth("hana"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    return error["field"], error["reason"]


def test_setup_errors_name_the_field_and_the_reason(api: TestClient, org: CycleOrg) -> None:
    phases = setup_body()["phases"]
    cases: list[tuple[dict[str, Any], str, str]] = [
        (setup_body(time_zone="Mars/Olympus_Mons"), "time_zone", "not an IANA time zone"),
        (setup_body(time_zone="../../etc/passwd"), "time_zone", "not an IANA time zone"),
        (
            setup_body(
                phases={**phases, "peer_feedback": {"opens": "2026-06-30", "due": "2026-07-17"}}
            ),
            "phases.peer_feedback.opens",
            "before self_reflection opens",
        ),
        (
            setup_body(phases={**phases, "release": {"opens": "2026-08-10", "due": "2026-08-01"}}),
            "phases.release.due",
            "after it is due",
        ),
        (
            setup_body(phases={**phases, "sign_off": {"opens": "2026-08-12", "due": "2031-01-01"}}),
            "phases.sign_off.due",
            "outside 2026-01-01..2027-07-01",
        ),
        (
            setup_body(phases={k: v for k, v in phases.items() if k != "calibration"}),
            "phases.calibration",
            "give the dates of calibration",
        ),
        (
            setup_body(scale={"min": 1, "max": 3, "labels": ["Low", "Mid", "High", "Top"]}),
            "scale.labels",
            "4 labels for a scale of 3 points",
        ),
        (
            setup_body(scale={"min": 1, "max": 3, "labels": ["Low", " ", "High"]}),
            "scale.labels.1",
            "must not be blank",
        ),
        (
            setup_body(scale={"min": 1, "max": 3, "labels": ["Low", "low", "High"]}),
            "scale.labels.1",
            "labels two points",
        ),
        (setup_body(reviews=["self_reflection", "360_gossip"]), "reviews.1", "Input should be"),
        (
            setup_body(questions={"self_reflection": ["x" * 301]}),
            "questions.self_reflection.0",
            "at most 300 characters",
        ),
        (
            setup_body(questions={"self_reflection": ["Fine?"], "nonsense": ["Why?"]}),
            "questions.nonsense.[key]",
            "Input should be",
        ),
        (
            setup_body(questions={"self_reflection": [f"Q{i}?" for i in range(11)]}),
            "questions.self_reflection",
            "at most 10 items",
        ),
        (
            setup_body(reviews=["peer_feedback"], questions={"self_reflection": ["Fine?"]}),
            "questions.peer_feedback",
            "give its questions",
        ),
        (setup_body(title="Review\x00"), "title", "U+0000 is not allowed"),
        (setup_body(title="Review\ud800"), "title", "unable to parse raw data as a unicode string"),
        (
            setup_body(participants={"cutoff": "2026-09-01"}),
            "participants.cutoff",
            "last phase's due day",
        ),
        (setup_body(surprise=True), "surprise", "Extra inputs are not permitted"),
    ]
    for body, field, reason in cases:
        got = problem(api, org, body)
        assert got[0] == field and reason in got[1], (body, got)
    listed = api.get(f"{API}/cycles/2026-H1/setup", headers=org.auth("hana"))
    assert listed.status_code == 404  # nothing was stored by any of them


def test_a_bad_period_is_refused_naming_it(api: TestClient, org: CycleOrg) -> None:
    response = api.post(
        f"{API}/cycles", json={"period": "2026-H3", **setup_body()}, headers=org.auth("hana")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "period"


# --- storing ---------------------------------------------------------------------------------


def test_a_setup_is_stored_as_a_draft_and_read_back_with_its_audit(
    api: TestClient, org: CycleOrg, engine: Engine
) -> None:
    body = {"period": "2026-H1", **setup_body(reviews=["self_reflection", "self_reflection"])}
    created = api.post(f"{API}/cycles", json=body, headers=org.auth("hana"))
    assert created.status_code == 201, created.text
    read = api.get(f"{API}/cycles/2026-H1/setup", headers=org.auth("hana")).json()
    assert read == created.json()
    assert read["status"] == "draft" and read["reviews"] == ["self_reflection"]
    assert read["scale"]["labels"][0] == "Below expectations"
    assert list(read["questions"]) == ["self_reflection"]  # the built-in questions
    assert next(iter(read["phases"])) == "self_reflection" and read["tasks"] == {}
    assert read["set_up_by"] == "hana@example.com"
    with engine.connect() as conn:
        event = conn.execute(select(AuditEvent).where(AuditEvent.action == "cycle.set_up")).one()
    assert event.entity_id == "2026-H1" and event.after["title"] == "2026 H1 review"
    again = api.post(f"{API}/cycles", json=body, headers=org.auth("hana"))
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "period"


def test_a_period_whose_cycle_exists_without_a_setup_keeps_one_cycle(
    engine: Engine, org: CycleOrg
) -> None:
    """A ratings import made the cycle: setting it up fills that row."""
    with engine.begin() as conn:
        (existing,) = create_cycles(conn, [PERIOD], actor="t").values()
    set_up(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(ReviewCycle.id, ReviewCycle.status)).all()
    assert [tuple(r) for r in rows] == [(existing, "draft")]


# --- starting --------------------------------------------------------------------------------


def test_starting_creates_exactly_the_expected_tasks(engine: Engine, org: CycleOrg) -> None:
    set_up(engine)
    counts = start(engine)
    assert counts == {
        "write_self_reflection": 6,
        "nominate_peers": 4,  # Mia and Hana have no manager to approve a list
        "approve_nominations": 4,
        "write_manager_feedback": 4,
        "acknowledge_review": 6,
    }
    found = tasks(engine)
    assert len(found) == 24
    ids = org.ids
    people = {"mia", "al", "ned", "bea", "cal", "hana"}
    by_kind: dict[str, set[tuple[str, str]]] = {}
    for kind, assignee, subject, _, status in found:
        by_kind.setdefault(kind, set()).add((org.key_of(assignee), org.key_of(subject)))
        assert status == "open"
    assert by_kind["write_self_reflection"] == {(p, p) for p in people}
    assert by_kind["acknowledge_review"] == {(p, p) for p in people}
    managed = {("mia", "al"), ("al", "ned"), ("mia", "bea"), ("mia", "cal")}
    assert by_kind["write_manager_feedback"] == managed
    assert by_kind["approve_nominations"] == managed
    assert by_kind["nominate_peers"] == {(s, s) for _, s in managed}
    due = {(kind, d) for kind, _, _, d, _ in found}
    assert due == {
        ("write_self_reflection", date(2026, 7, 10)),
        ("nominate_peers", date(2026, 7, 10)),
        ("approve_nominations", date(2026, 7, 10)),
        ("write_manager_feedback", date(2026, 7, 24)),
        ("acknowledge_review", date(2026, 8, 21)),
    }
    assert ids["jo"] not in {a for _, a, _, _, _ in found} | {s for _, _, s, _, _ in found}
    with engine.connect() as conn:
        assert cycle_setup(conn, "2026-H1").status == "started"


def test_starting_runs_a_fixed_number_of_statements(engine: Engine, org: CycleOrg) -> None:
    """The tasks come from one INSERT ... SELECT: no statement per person."""
    set_up(engine)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        start(engine)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    inserts = [s for s in statements if "INSERT INTO cycle_tasks" in s]
    assert len(inserts) == 1 and "SELECT" in inserts[0]
    assert len(statements) <= 6, statements  # lock, insert, status, audit (and a ping)


def test_starting_twice_is_refused_and_creates_nothing_more(engine: Engine, org: CycleOrg) -> None:
    set_up(engine)
    start(engine)
    with pytest.raises(Conflict, match="already started"), engine.begin() as conn:
        start_cycle(conn, "2026-H1", actor="t")
    assert len(tasks(engine)) == 24
    with engine.connect() as conn:
        started = conn.execute(
            select(func.count()).where(AuditEvent.action == "cycle.started")
        ).scalar_one()
    assert started == 1


def test_a_joiner_after_the_cutoff_gets_no_task(engine: Engine, org: CycleOrg) -> None:
    set_up(engine, participants={"cutoff": "2026-07-20"})  # Jo joined on the 15th: now in
    start(engine)
    subjects = {org.key_of(s) for _, _, s, _, _ in tasks(engine)}
    assert "jo" in subjects


def test_the_department_filter_chooses_the_participants(engine: Engine, org: CycleOrg) -> None:
    set_up(engine, participants={"cutoff": "2026-06-30", "departments": ["Risk"]})
    assert start(engine) == {
        "write_self_reflection": 1,
        "nominate_peers": 1,
        "approve_nominations": 1,
        "write_manager_feedback": 1,
        "acknowledge_review": 1,
    }
    assert {(org.key_of(a), org.key_of(s)) for _, a, s, _, _ in tasks(engine)} == {
        ("cal", "cal"),
        ("mia", "cal"),
    }


def test_the_reviews_asked_decide_the_tasks(engine: Engine, org: CycleOrg) -> None:
    phases = setup_body()["phases"]
    set_up(
        engine,
        reviews=["manager_feedback"],
        phases={k: phases[k] for k in ("manager_review", "release", "sign_off")},
    )
    assert start(engine) == {"write_manager_feedback": 4, "acknowledge_review": 6}


# --- changing and copying --------------------------------------------------------------------


def test_moving_a_phase_moves_its_open_tasks_only(engine: Engine, org: CycleOrg) -> None:
    set_up(engine)
    start(engine)
    with engine.begin() as conn:
        conn.execute(
            update(CycleTask)
            .where(CycleTask.subject_id == org.ids["al"], CycleTask.kind == "write_self_reflection")
            .values(status="done", done_at=func.now())
        )
        patch = CycleSetupPatch.model_validate(
            {"phases": {"self_reflection": {"opens": "2026-07-01", "due": "2026-07-12"}}}
        )
        after = update_setup(conn, "2026-H1", patch, actor="t")
    assert after.phases[Phase.SELF_REFLECTION].due == date(2026, 7, 12)
    self_tasks = [
        (org.key_of(s), d) for k, _, s, d, _ in tasks(engine) if k == "write_self_reflection"
    ]
    assert sorted(self_tasks) == sorted(
        [(p, date(2026, 7, 12)) for p in ("mia", "ned", "bea", "cal", "hana")]
        + [("al", date(2026, 7, 10))]
    )
    others = {d for k, _, _, d, _ in tasks(engine) if k == "write_manager_feedback"}
    assert others == {date(2026, 7, 24)}
    with engine.connect() as conn:
        event = conn.execute(
            select(AuditEvent).where(AuditEvent.action == "cycle.setup_changed")
        ).one()
    assert event.after["moved"] == 13  # the phase's 14 tasks (6 + 4 + 4) but Al's done one
    assert event.before["phases"]["self_reflection"]["due"] == "2026-07-10"


def test_a_started_cycle_takes_phase_dates_only(engine: Engine, org: CycleOrg) -> None:
    set_up(engine)
    start(engine)
    patch = CycleSetupPatch.model_validate({"title": "Renamed"})
    with pytest.raises(Conflict, match="only phase dates") as refused, engine.begin() as conn:
        update_setup(conn, "2026-H1", patch, actor="t")
    assert refused.value.field == "title"
    unordered = CycleSetupPatch.model_validate(
        {"phases": {"sign_off": {"opens": "2026-06-01", "due": "2026-06-02"}}}
    )
    with pytest.raises(Invalid) as invalid, engine.begin() as conn:
        update_setup(conn, "2026-H1", unordered, actor="t")
    assert invalid.value.field == "phases.sign_off.opens"


def test_a_draft_takes_any_field_and_checks_the_whole(engine: Engine, org: CycleOrg) -> None:
    set_up(engine)
    with engine.begin() as conn:
        changed = update_setup(
            conn,
            "2026-H1",
            CycleSetupPatch.model_validate(
                {
                    "title": "Mid-year",
                    "scale": {"min": 1, "max": 3, "labels": ["Low", "Mid", "High"]},
                }
            ),
            actor="t",
        )
    assert changed.title == "Mid-year" and changed.scale.max == 3
    assert changed.phases[Phase.SIGN_OFF].due == date(2026, 8, 21)  # untouched


def test_copying_shifts_the_dates_by_the_period_offset(engine: Engine, org: CycleOrg) -> None:
    set_up(engine)
    start(engine)
    with engine.begin() as conn:
        copied = copy_cycle(conn, "2026-H1", parse_period("2026-H2"), actor="t")
    assert copied.status == "draft" and copied.copied_from == "2026-H1"
    assert copied.participants.cutoff == date(2026, 12, 31)  # a month's end stays one
    assert copied.phases[Phase.SELF_REFLECTION].due == date(2027, 1, 10)
    assert copied.phases[Phase.SIGN_OFF].due == date(2027, 2, 21)
    assert copied.scale.labels[-1] == "Exceptional" and copied.tasks == {}
    assert copied.title == "2026 H1 review"  # the period is not in the title: kept
    with pytest.raises(Conflict), engine.begin() as conn:
        copy_cycle(conn, "2026-H1", parse_period("2026-H2"), actor="t")


# --- the command line ------------------------------------------------------------------------

SETUP_TOML = """
title = "2026 H1 review"
time_zone = "UTC"
reviews = ["self_reflection", "manager_feedback"]
questions_file = "questions.toml"

[participants]
cutoff = 2026-06-30

[scale]
min = 1
max = 3
labels = ["Below", "Meets", "Above"]

[phases]
self_reflection = { opens = 2026-07-01, due = 2026-07-10 }
manager_review = { opens = 2026-07-13, due = 2026-07-24 }
release = { opens = 2026-08-10, due = 2026-08-12 }
sign_off = { opens = 2026-08-12, due = 2026-08-21 }
"""
QUESTIONS_TOML = """
[self_reflection]
questions = ["What went well?"]

[manager_feedback]
questions = ["What should they keep doing?", "What should change?"]
"""


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_MODEL", "hashing-384")
    get_settings.cache_clear()
    return CliRunner()


def test_the_cli_creates_shows_and_starts_a_cycle(
    cli_env: CliRunner, org: CycleOrg, tmp_path: Path
) -> None:
    (tmp_path / "setup.toml").write_text(SETUP_TOML, encoding="utf-8")
    (tmp_path / "questions.toml").write_text(QUESTIONS_TOML, encoding="utf-8")
    setup = str(tmp_path / "setup.toml")
    created = cli_env.invoke(cli_app, ["cycle", "create", "--period", "2026-H1", "--setup", setup])
    assert created.exit_code == 0, created.output
    shown = cli_env.invoke(cli_app, ["cycle", "show", "--period", "2026-H1", "--json"])
    assert json.loads(shown.stdout)["questions"]["manager_feedback"][1] == "What should change?"
    started = cli_env.invoke(cli_app, ["cycle", "start", "--period", "2026-H1", "--json"])
    assert json.loads(started.stdout)["tasks"] == {
        "write_self_reflection": 6,
        "write_manager_feedback": 4,
        "acknowledge_review": 6,
    }
    again = cli_env.invoke(cli_app, ["cycle", "start", "--period", "2026-H1"])
    assert again.exit_code == 1 and "already started" in again.output
    move = ["--phase", "sign_off", "--opens", "2026-08-12", "--due", "2026-08-28", "--json"]
    moved = cli_env.invoke(cli_app, ["cycle", "move", "--period", "2026-H1", *move])
    assert json.loads(moved.stdout)["phases"]["sign_off"]["due"] == "2026-08-28", moved.output
    mine = cli_env.invoke(cli_app, ["tasks", "--person", "mia@example.com", "--json"])
    listed = json.loads(mine.stdout)
    acknowledge = [t for t in listed["items"] if t["kind"] == "acknowledge_review"]
    assert [t["due_on"] for t in acknowledge] == ["2026-08-28"]
    assert listed["total"] == 2 + 3  # her own two, feedback for Al, Bea and Cal
    assert {t["subject_name"] for t in listed["items"]} == {
        None,
        "Al Reyes",
        "Bea Ross",
        "Cal Ibsen",
    }


def test_the_cli_names_the_key_of_a_bad_setup_file(
    cli_env: CliRunner, org: CycleOrg, tmp_path: Path
) -> None:
    (tmp_path / "questions.toml").write_text(QUESTIONS_TOML, encoding="utf-8")
    bad = SETUP_TOML.replace('time_zone = "UTC"', 'time_zone = "Nowhere/Town"')
    (tmp_path / "setup.toml").write_text(bad, encoding="utf-8")
    result = cli_env.invoke(
        cli_app, ["cycle", "create", "--period", "2026-H1", "--setup", str(tmp_path / "setup.toml")]
    )
    assert result.exit_code == 2 and "Nowhere/Town" in result.output
    unknown = SETUP_TOML.replace('"manager_feedback"]', '"gossip"]')
    (tmp_path / "setup.toml").write_text(unknown, encoding="utf-8")
    with pytest.raises(Invalid) as refused:
        read_setup_file(tmp_path / "setup.toml")
    assert refused.value.field == "reviews.1"
    (tmp_path / "setup.toml").write_text("title = [", encoding="utf-8")
    with pytest.raises(Invalid, match="not UTF-8 TOML"):
        read_setup_file(tmp_path / "setup.toml")


# --- hostile text ----------------------------------------------------------------------------


def test_hostile_text_in_title_labels_and_questions_comes_back_intact(
    api: TestClient, org: CycleOrg
) -> None:
    planted = [p for p in payloads("cycle") if len(p) <= 80][:5]
    assert len(planted) == 5
    body = setup_body(
        title=planted[0][:200],
        scale={"min": 1, "max": 5, "labels": planted},
        questions={
            kind: [p for p in payloads(kind) if len(p) <= 300][:10]
            for kind in ("self_reflection", "peer_feedback", "manager_feedback", "promotion_packet")
        },
    )
    created = api.post(
        f"{API}/cycles", json={"period": "2026-H1", **body}, headers=org.auth("hana")
    )
    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == "application/json"
    read = api.get(f"{API}/cycles/2026-H1/setup", headers=org.auth("hana")).json()
    assert read["title"] == body["title"] and read["scale"]["labels"] == planted
    assert read["questions"] == body["questions"]
    started = api.post(f"{API}/cycles/2026-H1/start", headers=org.auth("hana"))
    assert started.status_code == 200, started.text
    mine = api.get(f"{API}/me/tasks", headers=org.auth("al")).json()
    assert {t["cycle_title"] for t in mine["items"]} == {body["title"]}
