"""Release and sign-off (issue 16): closing calibration only on a current bias report,
releasing by department after calibration, nothing of the manager's review or the rating
visible to the employee before release (API and pages), reading and acknowledging the
released review with a comment the manager and HR see, tasks done on approval, and HR's
export for pay and promotion (CSV with formula-looking cells neutralised)."""

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update
from typer.testing import CliRunner

from domain.errors import Conflict, Invalid, NotFound
from domain.phases import Phase, TaskKind, TaskStatus
from service.app import create_app
from service.bias.gate import approve_draft
from service.cli import app as cli_app
from service.cycles.release import close_phase, release_cycle, releases
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.db.models import (
    AuditEvent,
    BiasReport,
    CycleTask,
    Draft,
    DraftCheck,
    Person,
    Rating,
    ReviewCycle,
)
from service.drafting.citations import CitationReport
from service.drafting.store import save_generated
from service.drafting.structure import DraftBody, DraftSection, DraftSentence
from service.ratings.workflow import CalibrationClosed, calibrate_rating
from service.settings import Settings, get_settings
from tests.cycle_org import PERIOD, CycleOrg, build_cycle_org, setup_body
from tests.test_web_escaping import injected

API = "/api/v1"
CYCLE = PERIOD.name
ORIGIN = {"Origin": "http://testserver"}
HOSTILE = '<img src=x onerror="window.__pwned=1">{{7*191}}'
EVIDENCE = {
    "id": "E1",
    "kind": "work_record",
    "title": "Ledger move",
    "occurred_at": "2026-03-02T10:00:00+00:00",
    "text": "Moved the ledger to double-entry with zero downtime.",
}


@pytest.fixture
def org(engine: Engine) -> CycleOrg:
    org = build_cycle_org(engine)
    with engine.begin() as conn:
        create_cycle(conn, PERIOD, CycleSetupIn.model_validate(setup_body()), actor="t")
        start_cycle(conn, CYCLE, actor="t")
    return org


@pytest.fixture
def api(engine: Engine, settings: Settings, org: CycleOrg) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine, worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def cycle_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(ReviewCycle.id).where(ReviewCycle.name == CYCLE)).scalar_one()
        )


def draft(engine: Engine, subject: int, kind: str, *, approved: bool = True) -> int:
    """A stored draft of the cycle citing E1, approved through the gate when asked (a
    check of its current version with no flags stands in for the bias check)."""
    body = DraftBody(
        sections=[
            DraftSection(
                heading="Results",
                sentences=[DraftSentence(text="Moved the ledger safely.", evidence=["E1"])],
            )
        ]
    )
    with engine.begin() as conn:
        draft_id, version = save_generated(
            conn,
            subject_id=subject,
            kind=kind,
            period=CYCLE,
            cycle_id=cycle_id(engine),
            body=body,
            report=CitationReport(sentences=1, supported=1, flags=[]),
            origin="offline",
            author="t",
            provenance={"evidence": [EVIDENCE]},
        )
        conn.execute(insert(DraftCheck).values(**check_row(draft_id, version)))
        if approved:
            approve_draft(conn, draft_id, by="mia@example.com")
    return draft_id


def check_row(draft_id: int, version: int) -> dict[str, Any]:
    """A bias check of the version that raised no flag."""
    return {"draft_id": draft_id, "version": version, "checked_by": "t", "profile": {}, "flags": []}


def rate(engine: Engine, org: CycleOrg, who: str, value: int, *, final: bool = True) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(Rating).values(
                cycle_id=cycle_id(engine),
                person_id=org.ids[who],
                rater_id=org.ids["mia"],
                rating=value,
                finalised_by="hana@example.com" if final else None,
                finalised_at=datetime.now(UTC) if final else None,
            )
        )


def report(engine: Engine, *, version: int = 1, at: datetime | None = None) -> None:
    """A bias report of the cycle (its content is the report's business, not release's)."""
    values: dict[str, Any] = {
        "cycle": CYCLE,
        "version": version,
        "created_by": "hana@example.com",
        "data_seen": {},
        "report": {},
    }
    if at is not None:
        values["created_at"] = at
    with engine.begin() as conn:
        conn.execute(insert(BiasReport).values(**values))


def calibrated_and_closed(engine: Engine) -> None:
    report(engine)
    with engine.begin() as conn:
        close_phase(conn, CYCLE, Phase.CALIBRATION, actor="hana@example.com")


def task_status(engine: Engine, kind: TaskKind, subject: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(CycleTask.status).where(
                    CycleTask.kind == kind, CycleTask.subject_id == subject
                )
            ).scalar_one()
        )


def audits(engine: Engine, action: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            ).all()
        )


# --- closing calibration ------------------------------------------------------------------


def test_calibration_closes_only_while_the_bias_report_is_current(
    engine: Engine, org: CycleOrg
) -> None:
    with engine.begin() as conn, pytest.raises(Conflict, match="run the bias report"):
        close_phase(conn, CYCLE, Phase.CALIBRATION, actor="hana@example.com")
    report(engine, at=datetime.now(UTC) - timedelta(hours=1))
    rate(engine, org, "bea", 4, final=False)  # a rating changed after the report
    with engine.begin() as conn, pytest.raises(Conflict, match="as they are now"):
        close_phase(conn, CYCLE, Phase.CALIBRATION, actor="hana@example.com")
    report(engine, version=2)
    with engine.begin() as conn:
        closed = close_phase(conn, CYCLE, Phase.CALIBRATION, actor="hana@example.com")
    assert closed.phase == Phase.CALIBRATION and closed.report_at is not None
    with engine.begin() as conn, pytest.raises(Conflict, match="was closed by hana"):
        close_phase(conn, CYCLE, Phase.CALIBRATION, actor="hana@example.com")
    events = audits(engine, "cycle.phase_closed")
    assert [(e.entity_id, e.after["phase"]) for e in events] == [(CYCLE, "calibration")]


def test_closing_needs_a_started_cycle_and_a_phase_it_dates(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    hana = org.auth("hana")
    response = api.post(f"{API}/cycles/2031-H1/phases/calibration/close", headers=hana)
    assert response.status_code == 404, response.text
    response = api.post(f"{API}/cycles/{CYCLE}/phases/lunch/close", headers=hana)
    assert response.status_code == 422
    response = api.post(f"{API}/cycles/{CYCLE}/phases/calibration/close", headers=hana)
    assert response.status_code == 409
    assert "run the bias report" in response.json()["errors"][0]["reason"]
    ok = api.post(f"{API}/cycles/{CYCLE}/phases/self_reflection/close", headers=hana)
    assert ok.status_code == 200 and ok.json()["closed_by"] == "hana@example.com"
    refused = api.post(
        f"{API}/cycles/{CYCLE}/phases/self_reflection/close", headers=org.auth("mia")
    )
    assert refused.status_code == 403


# --- releasing ----------------------------------------------------------------------------


def test_release_waits_for_calibration_then_goes_department_by_department(
    engine: Engine, org: CycleOrg
) -> None:
    with engine.begin() as conn, pytest.raises(Conflict, match="close the calibration phase"):
        release_cycle(conn, CYCLE, None, actor="hana@example.com")
    calibrated_and_closed(engine)
    with engine.begin() as conn:
        release_cycle(conn, CYCLE, "Payments", actor="hana@example.com")
    with engine.begin() as conn, pytest.raises(Conflict, match="already released to department"):
        release_cycle(conn, CYCLE, "Payments", actor="hana@example.com")
    with engine.begin() as conn, pytest.raises(Invalid, match="no participant") as refused:
        release_cycle(conn, CYCLE, "Nowhere", actor="hana@example.com")
    assert refused.value.field == "department"
    with engine.begin() as conn:
        release_cycle(conn, CYCLE, "Risk", actor="hana@example.com")
        release_cycle(conn, CYCLE, None, actor="hana@example.com")
    with engine.begin() as conn, pytest.raises(Conflict, match="already released to everyone"):
        release_cycle(conn, CYCLE, "People", actor="hana@example.com")
    with engine.connect() as conn:
        done = [(r.department, r.released_by) for r in releases(conn, CYCLE)]
    assert done == [
        ("Payments", "hana@example.com"),
        ("Risk", "hana@example.com"),
        (None, "hana@example.com"),
    ]
    assert [e.after for e in audits(engine, "cycle.released")] == [
        {"department": "Payments"},
        {"department": "Risk"},
        {"department": None},
    ]


def test_a_cycle_without_calibration_is_released_at_once(engine: Engine) -> None:
    build_cycle_org(engine)
    phases = {k: v for k, v in setup_body()["phases"].items() if k != "calibration"}
    body = setup_body(reviews=["self_reflection", "manager_feedback"], phases=phases)
    with engine.begin() as conn:
        create_cycle(conn, PERIOD, CycleSetupIn.model_validate(body), actor="t")
        with pytest.raises(Conflict, match="has not started"):
            release_cycle(conn, CYCLE, None, actor="t")
        start_cycle(conn, CYCLE, actor="t")
        assert release_cycle(conn, CYCLE, None, actor="t").department is None
    with engine.begin() as conn, pytest.raises(NotFound):
        release_cycle(conn, "2031-H1", None, actor="t")


# --- what the employee sees, before and after ---------------------------------------------


def test_nothing_of_the_managers_review_reaches_the_employee_before_release(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    bea, cal = org.ids["bea"], org.ids["cal"]
    feedback = draft(engine, bea, "manager_feedback")
    packet = draft(engine, bea, "promotion_packet")
    unapproved = draft(engine, bea, "calibration_summary", approved=False)
    cals = draft(engine, cal, "manager_feedback")
    rate(engine, org, "bea", 4)
    rate(engine, org, "cal", 2)

    def seen(who: str) -> dict[str, Any]:
        me = org.ids[who]
        headers = org.auth(who)
        listed = api.get(f"{API}/people/{me}/drafts", headers=headers).json()
        return {
            "drafts": {d["id"] for d in listed},
            "opens": {
                d: api.get(f"{API}/drafts/{d}", headers=headers).status_code
                for d in (feedback, packet, unapproved, cals)
            },
            "ratings": [
                r["person_id"]
                for r in api.get(f"{API}/cycles/{CYCLE}/ratings", headers=headers).json()
            ],
            "review": api.get(f"{API}/me/reviews/{CYCLE}", headers=headers).status_code,
        }

    before = seen("bea")
    assert before == {
        "drafts": set(),
        "opens": {feedback: 404, packet: 404, unapproved: 404, cals: 404},
        "ratings": [],
        "review": 404,
    }
    # Her manager and HR read it all the time.
    for who in ("mia", "hana"):
        got = api.get(f"{API}/people/{bea}/reviews/{CYCLE}", headers=org.auth(who))
        assert got.status_code == 200 and got.json()["released"] is False
    assert (
        api.get(f"{API}/people/{bea}/reviews/{CYCLE}", headers=org.auth("bea")).status_code == 404
    )
    assert api.get(f"{API}/people/{bea}/reviews/{CYCLE}", headers=org.auth("al")).status_code == 404

    calibrated_and_closed(engine)
    released = api.post(
        f"{API}/cycles/{CYCLE}/release", json={"department": "Payments"}, headers=org.auth("hana")
    )
    assert released.status_code == 200, released.text

    after = seen("bea")
    assert after["drafts"] == {feedback, packet}
    assert after["opens"] == {feedback: 200, packet: 200, unapproved: 404, cals: 404}
    assert after["ratings"] == [bea]
    assert after["review"] == 200
    review = api.get(f"{API}/me/reviews/{CYCLE}", headers=org.auth("bea")).json()
    assert review["feedback_draft_id"] == feedback
    assert review["feedback"][0]["sentences"][0] == {
        "text": "Moved the ledger safely.",
        "evidence": ["E1"],
    }
    assert (review["rating"], review["rating_label"]) == (4, "Exceeds")
    assert [e["id"] for e in review["evidence"]] == ["E1"]
    # Cal is in Risk: still nothing.
    assert seen("cal") == {
        "drafts": set(),
        "opens": {feedback: 404, packet: 404, unapproved: 404, cals: 404},
        "ratings": [],
        "review": 404,
    }


def test_a_cycle_without_a_set_up_keeps_the_older_rule(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    """A draft of a period whose cycle was never set up is the subject's once approved."""
    bea = org.ids["bea"]
    with engine.begin() as conn:
        conn.execute(insert(ReviewCycle).values(name="2025-H2"))
        other = conn.execute(
            select(ReviewCycle.id).where(ReviewCycle.name == "2025-H2")
        ).scalar_one()
        draft_id, _ = save_generated(
            conn,
            subject_id=bea,
            kind="manager_feedback",
            period="2025-H2",
            cycle_id=other,
            body=DraftBody(sections=[]),
            report=CitationReport(sentences=0, supported=0, flags=[]),
            origin="offline",
            author="t",
            provenance={"evidence": []},
        )
        conn.execute(update(Draft).where(Draft.id == draft_id).values(status="approved"))
    assert api.get(f"{API}/drafts/{draft_id}", headers=org.auth("bea")).status_code == 200


def test_a_draft_written_before_the_set_up_is_withheld_by_its_period(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    """A draft with no cycle id (drafted before HR set the period's cycle up) is of the
    cycle its period names: withheld the same way."""
    bea = org.ids["bea"]
    with engine.begin() as conn:
        draft_id, _ = save_generated(
            conn,
            subject_id=bea,
            kind="manager_feedback",
            period=CYCLE,
            cycle_id=None,
            body=DraftBody(sections=[]),
            report=CitationReport(sentences=0, supported=0, flags=[]),
            origin="offline",
            author="t",
            provenance={"evidence": []},
        )
        conn.execute(update(Draft).where(Draft.id == draft_id).values(status="approved"))
    assert api.get(f"{API}/drafts/{draft_id}", headers=org.auth("bea")).status_code == 404
    calibrated_and_closed(engine)
    with engine.begin() as conn:
        release_cycle(conn, CYCLE, "Payments", actor="hana@example.com")
    assert api.get(f"{API}/drafts/{draft_id}", headers=org.auth("bea")).status_code == 200
    review = api.get(f"{API}/me/reviews/{CYCLE}", headers=org.auth("bea")).json()
    assert review["feedback_draft_id"] == draft_id


def test_an_hr_admins_own_review_waits_for_release_like_anyones(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    """HR reads every draft, but not their own review before it is released to them."""
    hana = org.ids["hana"]
    mine = draft(engine, hana, "manager_feedback")
    rate(engine, org, "hana", 3)
    hr = org.auth("hana")
    assert api.get(f"{API}/drafts/{mine}", headers=hr).status_code == 404
    assert api.get(f"{API}/people/{hana}/reviews/{CYCLE}", headers=hr).status_code == 404
    ratings = api.get(f"{API}/cycles/{CYCLE}/ratings", headers=hr).json()
    assert hana not in {r["person_id"] for r in ratings}
    calibrated_and_closed(engine)
    with engine.begin() as conn:
        release_cycle(conn, CYCLE, "People", actor="hana@example.com")
    assert api.get(f"{API}/drafts/{mine}", headers=hr).status_code == 200
    ratings = api.get(f"{API}/cycles/{CYCLE}/ratings", headers=hr).json()
    assert hana in {r["person_id"] for r in ratings}


# --- sign-off -----------------------------------------------------------------------------


def test_the_employee_acknowledges_once_and_may_change_the_comment(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    bea = org.ids["bea"]
    draft(engine, bea, "manager_feedback")
    ack = f"{API}/me/reviews/{CYCLE}/acknowledge"
    assert api.post(ack, json={}, headers=org.auth("bea")).status_code == 404  # not released
    calibrated_and_closed(engine)
    with engine.begin() as conn:
        release_cycle(conn, CYCLE, None, actor="hana@example.com")

    first = api.post(ack, json={"comment": HOSTILE}, headers=org.auth("bea"))
    assert first.status_code == 200, first.text
    assert first.json()["comment"] == HOSTILE
    assert task_status(engine, TaskKind.ACKNOWLEDGE_REVIEW, bea) == TaskStatus.DONE
    again = api.post(ack, json={"comment": "Agreed after our talk."}, headers=org.auth("bea"))
    assert again.json()["acknowledged_at"] == first.json()["acknowledged_at"]
    assert again.json()["comment"] == "Agreed after our talk."
    same = api.post(ack, json={"comment": "Agreed after our talk."}, headers=org.auth("bea"))
    assert same.status_code == 200
    kept = api.post(ack, json={}, headers=org.auth("bea"))
    assert kept.json()["comment"] == "Agreed after our talk."
    assert [e.after for e in audits(engine, "review.acknowledged")] == [{"comment": HOSTILE}]
    changes = audits(engine, "review.comment_changed")
    assert [(e.before, e.after) for e in changes] == [
        ({"comment": HOSTILE}, {"comment": "Agreed after our talk."})
    ]
    for who in ("mia", "hana"):
        seen = api.get(f"{API}/people/{bea}/reviews/{CYCLE}", headers=org.auth(who)).json()
        assert seen["acknowledgement"]["comment"] == "Agreed after our talk."
    assert api.get(f"{API}/people/{bea}/reviews/{CYCLE}", headers=org.auth("al")).status_code == 404

    for comment, reason in (("x" * 2001, "2000"), ("bell\x07", "U+0007")):
        refused = api.post(ack, json={"comment": comment}, headers=org.auth("bea"))
        assert refused.status_code == 422, refused.text
        assert reason in refused.text
    # Jo joined after the cut-off: no review to acknowledge.
    assert api.post(ack, json={}, headers=org.auth("jo")).status_code == 404


# --- tasks done on approval ---------------------------------------------------------------


def test_approving_a_review_completes_its_task(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    bea = org.ids["bea"]
    mine = draft(engine, bea, "self_reflection", approved=False)
    assert task_status(engine, TaskKind.WRITE_SELF_REFLECTION, bea) == TaskStatus.OPEN
    other = api.post(f"{API}/drafts/{mine}/approve", headers=org.auth("al"))
    assert other.status_code == 404
    approved = api.post(f"{API}/drafts/{mine}/approve", headers=org.auth("bea"))
    assert approved.status_code == 200, approved.text
    assert task_status(engine, TaskKind.WRITE_SELF_REFLECTION, bea) == TaskStatus.DONE
    theirs = draft(engine, bea, "manager_feedback", approved=False)
    assert api.post(f"{API}/drafts/{theirs}/approve", headers=org.auth("bea")).status_code == 404
    assert task_status(engine, TaskKind.WRITE_MANAGER_FEEDBACK, bea) == TaskStatus.OPEN
    assert api.post(f"{API}/drafts/{theirs}/approve", headers=org.auth("mia")).status_code == 200
    assert task_status(engine, TaskKind.WRITE_MANAGER_FEEDBACK, bea) == TaskStatus.DONE


# --- export -------------------------------------------------------------------------------


def test_hr_exports_the_decisions_with_formulas_neutralised(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    bea, cal = org.ids["bea"], org.ids["cal"]
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.id == cal).values(name='=HYPERLINK("x")'))
    report(engine, version=1, at=datetime.now(UTC) - timedelta(hours=1))
    rate(engine, org, "bea", 4)
    packet = draft(engine, bea, "promotion_packet")
    report(engine, version=2)
    hana = org.auth("hana")
    body = api.get(f"{API}/cycles/{CYCLE}/export.json", headers=hana).json()
    rows = {r["person_id"]: r for r in body["rows"]}
    assert set(rows) == {org.ids[k] for k in ("mia", "al", "ned", "bea", "cal", "hana")}
    assert rows[bea]["final_rating"] == 4 and rows[bea]["rating_label"] == "Exceeds"
    assert rows[bea]["promotion_packet"] == f"/drafts/{packet}"
    assert rows[bea]["bias_report_version"] == 1  # the report current when finalised
    assert rows[bea]["manager"] == "Mia Stone"
    assert rows[cal]["final_rating"] is None and rows[cal]["promotion_recommended"] is False
    response = api.get(f"{API}/cycles/{CYCLE}/export.csv", headers=hana)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    names = {r["name"] for r in table}
    assert '\'=HYPERLINK("x")' in names and '=HYPERLINK("x")' not in names
    beas = next(r for r in table if r["person_id"] == str(bea))
    assert (beas["final_rating"], beas["promotion_recommended"]) == ("4", "true")
    for who in ("mia", "bea"):
        for suffix in ("json", "csv"):
            got = api.get(f"{API}/cycles/{CYCLE}/export.{suffix}", headers=org.auth(who))
            assert got.status_code == 403


# --- the command line ---------------------------------------------------------------------


def test_the_cli_closes_releases_and_exports(
    engine: Engine,
    org: CycleOrg,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_MODEL", "hashing-384")
    get_settings.cache_clear()
    runner = CliRunner()
    close = ["cycle", "close", "--period", CYCLE, "--phase", "calibration"]
    refused = runner.invoke(cli_app, close)
    assert refused.exit_code == 1 and "run the bias report" in refused.output
    report(engine)
    closed = runner.invoke(cli_app, close)
    assert closed.exit_code == 0, closed.output
    released = runner.invoke(
        cli_app, ["cycle", "release", "--period", CYCLE, "--department", "Risk"]
    )
    assert released.exit_code == 0, released.output
    assert "Risk" in released.output
    exported = runner.invoke(cli_app, ["cycle", "export", "--period", CYCLE, "--format", "csv"])
    assert exported.exit_code == 0, exported.output
    assert exported.output.startswith("person_id,employee_id,name")
    get_settings.cache_clear()


# --- the pages ----------------------------------------------------------------------------


def sign_in(web: TestClient, org: CycleOrg, who: str) -> None:
    web.cookies.clear()
    response = web.post(
        "/sign-in", data={"token": org.tokens[who]}, headers=ORIGIN, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def test_the_pages_show_the_review_only_after_release_and_its_comment_escaped(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    bea = org.ids["bea"]
    feedback = draft(engine, bea, "manager_feedback")
    rate(engine, org, "bea", 4)
    sign_in(api, org, "bea")
    assert api.get(f"/me/reviews/{CYCLE}").status_code == 404
    assert api.get(f"/drafts/{feedback}").status_code == 404
    assert f"/drafts/{feedback}" not in api.get("/me?period=2026-H1").text

    calibrated_and_closed(engine)
    with engine.begin() as conn:
        release_cycle(conn, CYCLE, "Payments", actor="hana@example.com")
    page = api.get(f"/me/reviews/{CYCLE}")
    assert page.status_code == 200
    assert "Moved the ledger safely." in page.text and "Exceeds" in page.text
    assert 'id="ev-E1"' in page.text
    assert api.get(f"/drafts/{feedback}").status_code == 200
    assert f"/drafts/{feedback}" in api.get("/me?period=2026-H1").text

    sent = api.post(
        f"/me/reviews/{CYCLE}/acknowledge",
        data={"comment": HOSTILE},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert sent.status_code == 303
    shown = api.get(sent.headers["location"]).text
    assert "Acknowledged" in shown and "Update comment" in shown
    assert not injected(shown) and "&lt;img src=x" in shown
    forged = api.post(f"/me/reviews/{CYCLE}/acknowledge", data={"comment": "x"})
    assert forged.status_code == 403  # no Origin: another site's form

    sign_in(api, org, "mia")
    report_page = api.get(f"/team/{bea}/rating?period={CYCLE}").text
    assert "acknowledged their review" in report_page
    assert not injected(report_page) and "&lt;img src=x" in report_page
    sign_in(api, org, "hana")
    hr_page = api.get(f"/people/{bea}/reviews/{CYCLE}")
    assert hr_page.status_code == 200 and "&lt;img src=x" in hr_page.text
    assert not injected(hr_page.text)
    sign_in(api, org, "al")
    assert api.get(f"/people/{bea}/reviews/{CYCLE}").status_code == 404


def test_hr_closes_and_releases_from_the_dashboards_forms(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    dashboard = f"/hr/cycles/{CYCLE}/dashboard"
    close = f"/hr/cycles/{CYCLE}/phases/calibration/close"
    release = f"/hr/cycles/{CYCLE}/release"
    sign_in(api, org, "mia")
    refused = api.post(close, headers=ORIGIN, follow_redirects=False)
    assert refused.status_code in (303, 403)
    sign_in(api, org, "hana")
    stale = api.post(close, headers=ORIGIN, follow_redirects=False)
    assert stale.status_code == 303 and stale.headers["location"] == dashboard
    assert "run%20the%20bias%20report" in stale.headers["set-cookie"]
    report(engine)
    closed = api.post(close, headers=ORIGIN, follow_redirects=False)
    assert closed.status_code == 303 and closed.headers["location"] == dashboard
    assert "Calibration of 2026-H1 closed." in api.get(dashboard).text  # its flash message
    released = api.post(
        release, data={"department": "Risk"}, headers=ORIGIN, follow_redirects=False
    )
    assert released.status_code == 303 and released.headers["location"] == dashboard
    everyone = api.post(release, data={"department": "all"}, headers=ORIGIN, follow_redirects=False)
    assert everyone.status_code == 303
    with engine.connect() as conn:
        assert [r.department for r in releases(conn, CYCLE)] == ["Risk", None]
    unknown = api.post(
        f"/hr/cycles/{CYCLE}/phases/lunch/close", headers=ORIGIN, follow_redirects=False
    )
    assert unknown.status_code in (303, 404)


def test_a_released_approved_review_no_longer_changes(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    """What the employee read (and may have acknowledged) stays what it was: the manager
    may neither edit it nor write it again once it is released."""
    bea = org.ids["bea"]
    review = draft(engine, bea, "manager_feedback")
    regenerate = f"{API}/drafts/{review}/regenerate"
    before = api.post(regenerate, json={}, headers=org.auth("mia"))
    assert before.status_code == 202  # approved but not released: still the manager's
    calibrated_and_closed(engine)
    with engine.begin() as conn:
        release_cycle(conn, CYCLE, None, actor="hana@example.com")
    after = api.post(regenerate, json={}, headers=org.auth("mia"))
    assert after.status_code == 409 and "released" in after.text
    edit = api.post(
        f"{API}/drafts/{review}/versions",
        json={"based_on": 1, "text": "## Results\n- Changed after release. [E1]"},
        headers=org.auth("mia"),
    )
    assert edit.status_code == 409
    own = draft(engine, bea, "self_reflection", approved=False)
    assert api.post(f"{API}/drafts/{own}/check", headers=org.auth("bea")).status_code == 200


def test_ratings_no_longer_change_once_calibration_is_closed(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    """Closing calibration checked the bias report against the ratings as they were: a
    later proposal or calibration would slip past that check, so both are refused."""
    bea = org.ids["bea"]
    rating = f"{API}/cycles/{CYCLE}/ratings/{bea}"
    assert api.put(rating, json={"rating": 3}, headers=org.auth("mia")).status_code == 200
    calibrated_and_closed(engine)
    late = api.put(rating, json={"rating": 4}, headers=org.auth("mia"))
    assert late.status_code == 409 and "calibration of 2026-H1 is closed" in late.text
    with engine.begin() as conn, pytest.raises(CalibrationClosed):
        calibrate_rating(conn, CYCLE, bea, 2, actor="t")


def test_the_export_page_is_hrs_alone_and_neutralises_formulas(
    engine: Engine, org: CycleOrg, api: TestClient
) -> None:
    """The dashboard's export link (the page's session, not a token) answers as the API."""
    with engine.begin() as conn:
        conn.execute(
            update(Person).where(Person.id == org.ids["cal"]).values(name="=cmd|' /C calc'!A0")
        )
    url = f"/hr/cycles/{CYCLE}/export.csv"
    for who in ("mia", "bea"):
        sign_in(api, org, who)
        assert api.get(url).status_code == 403
    sign_in(api, org, "hana")
    got = api.get(url)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert 'filename="decisions-2026-H1.csv"' in got.headers["content-disposition"]
    names = {r["name"] for r in csv.DictReader(io.StringIO(got.text))}
    assert "'=cmd|' /C calc'!A0" in names and "=cmd|' /C calc'!A0" not in names
