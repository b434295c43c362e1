"""Promotion nominations and calibration tasks (issue 16): a manager nominates a report in a
cycle asking for promotion packets (the packet writer's task created once, a withdrawal
removing it, the packet's approval completing it and fixing the nomination), HR and
managers read the list; each calibration panel member gets a calibrate_cohort task at the
start or when seated, done when HR closes calibration; the API's scope, the team page's
forms and the my-tasks links."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from domain.errors import Invalid
from domain.kinds import DraftKind
from domain.phases import Phase, TaskKind, TaskStatus
from service.app import create_app
from service.calibration.panels import add_member, create_panel
from service.cycles.promotions import (
    NoPromotions,
    PacketApproved,
    nominate,
    promotions,
    withdraw,
)
from service.cycles.release import close_phase
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.cycles.tasks import task_counts
from service.db.models import AuditEvent, CycleTask, ReviewCycle
from service.settings import Settings
from tests.cycle_org import PERIOD, CycleOrg, build_cycle_org, setup_body
from tests.test_release import draft, report
from tests.test_web_escaping import injected

API = "/api/v1"
CYCLE = PERIOD.name
ORIGIN = {"Origin": "http://testserver"}
HOSTILE = '<img src=x onerror="window.__pwned=1">{{7*191}}'
PACKET = TaskKind.WRITE_PROMOTION_PACKET
CALIBRATE = TaskKind.CALIBRATE_COHORT


def _start(engine: Engine, **changes: Any) -> None:
    with engine.begin() as conn:
        create_cycle(conn, PERIOD, CycleSetupIn.model_validate(setup_body(**changes)), actor="t")
        start_cycle(conn, CYCLE, actor="t")


@pytest.fixture
def org(engine: Engine) -> CycleOrg:
    org = build_cycle_org(engine)
    _start(engine)
    return org


@pytest.fixture
def api(engine: Engine, settings: Settings, org: CycleOrg) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine, worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _tasks(engine: Engine, kind: TaskKind) -> list[tuple[int, int, str]]:
    """(assignee, subject, status) of the kind's tasks, sorted."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(CycleTask.assignee_id, CycleTask.subject_id, CycleTask.status).where(
                CycleTask.kind == kind
            )
        ).all()
    return sorted((r.assignee_id, r.subject_id, r.status) for r in rows)


def _actions(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEvent.action, AuditEvent.entity_id)
            .where(AuditEvent.entity == "promotion")
            .order_by(AuditEvent.id)
        ).all()
    return [(r.action, r.entity_id) for r in rows]


def _nominate(engine: Engine, org: CycleOrg, who: str, reason: str | None = None) -> None:
    with engine.begin() as conn:
        nominate(conn, CYCLE, org.ids[who], reason, actor="mia@example.com")


# --- nominations --------------------------------------------------------------------------


def test_nominating_gives_the_packet_writer_one_task_and_a_repeat_changes_the_reason(
    engine: Engine, org: CycleOrg
) -> None:
    with engine.connect() as conn:
        before = task_counts(conn, _cycle_id(engine))
    assert PACKET not in before  # nobody is nominated at the start
    _nominate(engine, org, "bea", "Led the ledger move")
    _nominate(engine, org, "bea", "Led the ledger move and the on-call rota")
    _nominate(engine, org, "ned")  # Mia, a skip-level: Al, Ned's manager, writes it
    mia, al = org.ids["mia"], org.ids["al"]
    assert _tasks(engine, PACKET) == sorted(
        [(mia, org.ids["bea"], TaskStatus.OPEN), (al, org.ids["ned"], TaskStatus.OPEN)]
    )
    with engine.connect() as conn:
        listed = promotions(conn, CYCLE)
    assert [(p.subject_name, p.reason, p.packet_writer_id) for p in listed] == [
        ("Bea Ross", "Led the ledger move and the on-call rota", mia),
        ("Ned Park", None, al),
    ]
    assert _actions(engine) == [
        ("promotion.nominated", f"{CYCLE}/{org.ids['bea']}"),
        ("promotion.reason_changed", f"{CYCLE}/{org.ids['bea']}"),
        ("promotion.nominated", f"{CYCLE}/{org.ids['ned']}"),
    ]


def test_withdrawing_removes_the_nomination_and_its_open_task_once(
    engine: Engine, org: CycleOrg
) -> None:
    _nominate(engine, org, "bea")
    _nominate(engine, org, "cal")
    with engine.begin() as conn:
        first = withdraw(conn, CYCLE, org.ids["bea"], actor="mia@example.com")
        again = withdraw(conn, CYCLE, org.ids["bea"], actor="mia@example.com")
        left = promotions(conn, CYCLE)
    assert (first.withdrawn, again.withdrawn) == (True, False)
    assert [p.subject_id for p in left] == [org.ids["cal"]]
    assert _tasks(engine, PACKET) == [(org.ids["mia"], org.ids["cal"], TaskStatus.OPEN)]
    assert [a for a, _ in _actions(engine)].count("promotion.withdrawn") == 1


def test_approving_the_packet_completes_the_task_and_fixes_the_nomination(
    engine: Engine, org: CycleOrg
) -> None:
    _nominate(engine, org, "bea")
    draft(engine, org.ids["bea"], DraftKind.PROMOTION_PACKET)  # approved through the gate
    assert _tasks(engine, PACKET) == [(org.ids["mia"], org.ids["bea"], TaskStatus.DONE)]
    with engine.begin() as conn, pytest.raises(PacketApproved, match="approved"):
        withdraw(conn, CYCLE, org.ids["bea"], actor="mia@example.com")
    with engine.begin() as conn, pytest.raises(PacketApproved):
        nominate(conn, CYCLE, org.ids["bea"], "x", actor="mia@example.com")
    with engine.connect() as conn:
        assert [p.packet_status for p in promotions(conn, CYCLE)] == ["approved"]


def test_a_packet_approved_before_the_nomination_leaves_its_task_done(
    engine: Engine, org: CycleOrg
) -> None:
    draft(engine, org.ids["cal"], DraftKind.PROMOTION_PACKET)
    _nominate(engine, org, "cal")
    assert _tasks(engine, PACKET) == [(org.ids["mia"], org.ids["cal"], TaskStatus.DONE)]


def test_nominations_are_refused_outside_a_participant_or_a_cycle_asking_for_packets(
    engine: Engine, org: CycleOrg
) -> None:
    with engine.begin() as conn, pytest.raises(Invalid, match="not a participant") as info:
        nominate(conn, CYCLE, org.ids["jo"], None, actor="mia@example.com")
    assert info.value.field == "person_id"
    with engine.begin() as conn, pytest.raises(NoPromotions):
        nominate(conn, "2026-H2", org.ids["bea"], None, actor="mia@example.com")
    assert _tasks(engine, PACKET) == []


def test_a_cycle_not_asking_for_promotion_packets_takes_no_nomination(engine: Engine) -> None:
    org = build_cycle_org(engine)
    _start(engine, reviews=["self_reflection", "manager_feedback"])
    with engine.begin() as conn, pytest.raises(NoPromotions, match="no promotion nominations"):
        nominate(conn, CYCLE, org.ids["bea"], None, actor="mia@example.com")


@pytest.mark.parametrize(
    ("reason", "message"),
    [("a" * 1001, "at most 1,000"), ("ok\x1b[31m", "U\\+001B"), ("\ud800", "surrogate")],
)
def test_a_hostile_reason_is_refused_naming_the_field(
    engine: Engine, org: CycleOrg, reason: str, message: str
) -> None:
    with engine.begin() as conn, pytest.raises(Invalid, match=message) as info:
        nominate(conn, CYCLE, org.ids["bea"], reason, actor="m")
    assert info.value.field == "reason"
    assert _tasks(engine, PACKET) == []


# --- calibration tasks --------------------------------------------------------------------


def test_panel_members_get_one_calibration_task_each_at_start_and_when_seated(
    engine: Engine,
) -> None:
    org = build_cycle_org(engine)
    with engine.begin() as conn:
        l3 = create_panel(conn, PERIOD, "L3", "engineering", [org.ids["mia"]], actor="t")
        create_panel(conn, PERIOD, "L4", "engineering", [org.ids["mia"], org.ids["al"]], actor="t")
    assert _tasks(engine, CALIBRATE) == []  # no cycle under way yet
    _start(engine)
    with engine.connect() as conn:
        started = conn.execute(select(AuditEvent.after).where(AuditEvent.action == "cycle.started"))
        summary = started.scalar_one()
    assert summary["tasks"][CALIBRATE] == 2  # Mia sits on two panels: one task
    with engine.begin() as conn:
        add_member(conn, l3, org.ids["bea"], actor="t")
        add_member(conn, l3, org.ids["bea"], actor="t")  # seated already: nothing new
    with engine.connect() as conn:
        assert task_counts(conn, _cycle_id(engine))[CALIBRATE] == 3
    due = _due(engine, CALIBRATE)
    assert due == {"2026-08-07"}  # the calibration phase's due day
    report(engine)
    with engine.begin() as conn:
        close_phase(conn, CYCLE, Phase.CALIBRATION, actor="hana@example.com")
        add_member(conn, l3, org.ids["cal"], actor="t")  # calibration is over: no task
    assert [s for _, _, s in _tasks(engine, CALIBRATE)] == [TaskStatus.DONE] * 3


def test_a_cycle_without_calibration_gives_panel_members_no_task(engine: Engine) -> None:
    org = build_cycle_org(engine)
    with engine.begin() as conn:
        create_panel(conn, PERIOD, "L3", "engineering", [org.ids["mia"]], actor="t")
    _start(engine, reviews=["self_reflection", "manager_feedback"])
    assert _tasks(engine, CALIBRATE) == []


def _cycle_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(ReviewCycle.id).where(ReviewCycle.name == CYCLE)).scalar_one()
        )


def _due(engine: Engine, kind: TaskKind) -> set[str]:
    with engine.connect() as conn:
        days = conn.execute(select(CycleTask.due_on).where(CycleTask.kind == kind)).scalars()
        return {d.isoformat() for d in days}


# --- API ----------------------------------------------------------------------------------


def test_the_api_lets_a_manager_nominate_and_withdraw_and_hr_read_all(
    api: TestClient, org: CycleOrg
) -> None:
    url = f"{API}/cycles/{CYCLE}/promotions"
    bea, ned = org.ids["bea"], org.ids["ned"]
    made = api.post(f"{url}/{bea}", json={"reason": HOSTILE}, headers=org.auth("mia"))
    assert made.status_code == 200 and made.json()["reason"] == HOSTILE  # stored as typed
    assert api.post(f"{url}/{ned}", headers=org.auth("al")).status_code == 200  # no body
    assert api.post(f"{url}/{bea}", headers=org.auth("bea")).status_code == 403  # oneself
    assert api.post(f"{url}/{bea}", headers=org.auth("hana")).status_code == 403  # HR
    assert api.post(f"{url}/{bea}", headers=org.auth("al")).status_code == 404  # not his
    long = api.post(f"{url}/{bea}", json={"reason": "a" * 1001}, headers=org.auth("mia"))
    assert long.status_code == 422 and "reason" in long.text
    hr = api.get(url, headers=org.auth("hana")).json()
    assert [p["subject_id"] for p in hr] == [bea, ned]
    assert [p["subject_id"] for p in api.get(url, headers=org.auth("al")).json()] == [ned]
    assert api.get(url, headers=org.auth("bea")).status_code == 403  # manages nobody
    gone = api.delete(f"{url}/{bea}", headers=org.auth("mia"))
    assert gone.status_code == 200 and gone.json()["withdrawn"] is True
    assert api.get(f"{API}/cycles/2031-H1/promotions", headers=org.auth("hana")).status_code == 404


# --- pages --------------------------------------------------------------------------------


def sign_in(web: TestClient, org: CycleOrg, who: str) -> None:
    web.cookies.clear()
    signed = web.post(
        "/sign-in", data={"token": org.tokens[who]}, headers=ORIGIN, follow_redirects=False
    )
    assert signed.status_code == 303


def test_the_team_page_nominates_and_withdraws_and_my_tasks_links_the_packet(
    api: TestClient, engine: Engine, org: CycleOrg
) -> None:
    sign_in(api, org, "mia")
    team = api.get(f"/team?period={CYCLE}")
    assert team.status_code == 200 and team.text.count("Nominate for promotion") == 4
    bea = org.ids["bea"]
    action = f"/team/{bea}/cycles/{CYCLE}/promotion"
    sent = api.post(action, data={"reason": HOSTILE}, headers=ORIGIN, follow_redirects=False)
    assert sent.status_code == 303
    after = api.get(f"/team?period={CYCLE}").text
    assert after.count("Nominate for promotion") == 3 and "Withdraw" in after
    assert not injected(after)
    tasks = api.get("/tasks").text
    assert f"/team?period={CYCLE}#person-{bea}" in tasks and "promotion packet for Bea" in tasks
    packet = draft(engine, bea, DraftKind.PROMOTION_PACKET, approved=False)
    assert f"/drafts/{packet}" in api.get("/tasks").text
    gone = api.post(f"{action}/withdraw", headers=ORIGIN, follow_redirects=False)
    assert gone.status_code == 303
    assert api.get(f"/team?period={CYCLE}").text.count("Nominate for promotion") == 4
    assert _tasks(engine, PACKET) == []
    sign_in(api, org, "bea")
    refused = api.post(
        f"/team/{org.ids['cal']}/cycles/{CYCLE}/promotion", headers=ORIGIN, follow_redirects=False
    )
    # a scope refusal: 404 by the rule (service/http/errors.py's told_where_asked); while
    # the lead rewires the page handler it may come back to the team page as an error
    flash = refused.headers.get("set-cookie", "")
    assert refused.status_code == 404 or "person%20not%20found" in flash, refused.headers
    assert _tasks(engine, PACKET) == []


def test_my_tasks_links_a_calibration_task_to_the_members_panel(
    engine: Engine, settings: Settings
) -> None:
    org = build_cycle_org(engine)
    with engine.begin() as conn:
        panel_id = create_panel(conn, PERIOD, "L3", "engineering", [org.ids["bea"]], actor="t")
    _start(engine)
    app = create_app(settings, engine=engine, worker=False)
    with TestClient(app, raise_server_exceptions=False) as web:
        sign_in(web, org, "bea")
        page = web.get("/tasks").text
    assert f'href="/panels/{panel_id}"' in page and "Calibrate your panel" in page
