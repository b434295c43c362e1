"""A period is parsed once, at the edge that received it, and passed on typed; a page with
no period asked for shows a default derived from the review cycles, not a literal."""

from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

import domain.periods
from domain.periods import Period, parse_period
from service.cycles.store import create_cycles, cycle_id, latest_cycle
from service.db.models import Draft, ReviewCycle
from service.http.params import default_period, half_year_of
from service.jobs.worker import Worker
from service.settings import Settings
from tests.api_org import CYCLE, ApiOrg
from tests.test_web import sign_in


class ParseCounter:
    """Counts every period parse anywhere: parse_period's one inner step, patched where it
    is looked up (in domain.periods), so no importer's own name for it escapes the count."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        inner = domain.periods._parse

        def counted(name: str) -> Period:
            self.calls += 1
            return inner(name)

        monkeypatch.setattr(domain.periods, "_parse", counted)


def test_a_draft_request_parses_its_period_once_at_the_api_and_once_at_the_job(
    client: TestClient,
    api_org: ApiOrg,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parses = ParseCounter(monkeypatch)
    response = client.post(
        f"/api/v1/people/{api_org.ids['dee']}/drafts",
        json={"kind": "self_reflection", "period": CYCLE},
        headers=api_org.auth("dee"),
    )
    assert response.status_code == 202, response.text
    assert parses.calls == 1  # the request's edge: service/http/params.py

    Worker(engine, settings).run_once()
    job = client.get(f"/api/v1/jobs/{response.json()['id']}", headers=api_org.auth("dee"))
    assert job.json()["status"] == "done", job.text
    assert parses.calls == 2  # the job payload's edge: service/jobs/handlers.py, not again

    with engine.connect() as conn:
        draft = conn.execute(
            select(Draft.period, Draft.cycle_id).where(Draft.id == job.json()["result"]["draft_id"])
        ).one()
        assert draft.period == CYCLE
        assert draft.cycle_id is not None and draft.cycle_id == cycle_id(conn, CYCLE)


def test_cycle_id_reads_a_cycle_by_name_and_never_creates_one(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = create_cycles(conn, [parse_period("2026-H1")], actor="test")
        assert cycle_id(conn, "2026-H1") == ids["2026-H1"]
        assert cycle_id(conn, "2026-H2") is None
        assert conn.execute(select(func.count()).select_from(ReviewCycle)).scalar_one() == 1


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 1, 1), "2026-H1"),
        (date(2026, 6, 30), "2026-H1"),
        (date(2026, 7, 1), "2026-H2"),
        (date(2026, 12, 3), "2026-H2"),
    ],
)
def test_without_cycles_the_default_period_is_the_half_year_of_today(
    engine: Engine, today: date, expected: str
) -> None:
    assert half_year_of(today) == parse_period(expected)
    with engine.connect() as conn:
        assert latest_cycle(conn, today) is None
        assert default_period(conn, today) == parse_period(expected)


def test_the_default_period_is_the_latest_cycle_that_has_begun(engine: Engine) -> None:
    with engine.begin() as conn:
        create_cycles(conn, [parse_period("2025-H2"), parse_period("2026-H1")], actor="test")
        assert default_period(conn, date(2026, 12, 3)) == parse_period("2026-H1")
        assert default_period(conn, date(2026, 3, 1)) == parse_period("2026-H1")
        assert default_period(conn, date(2025, 12, 31)) == parse_period("2025-H2")
        # set up ahead of time: not yet anyone's current cycle
        create_cycles(conn, [parse_period("2027-H1")], actor="test")
        assert default_period(conn, date(2026, 12, 3)) == parse_period("2026-H1")
        # of two cycles that begin together, the one that ends last
        create_cycles(conn, [parse_period("2026")], actor="test")
        assert default_period(conn, date(2026, 12, 3)) == parse_period("2026")
        create_cycles(conn, [parse_period("2026-Q4")], actor="test")
        assert default_period(conn, date(2026, 12, 3)) == parse_period("2026-Q4")


def test_pages_without_a_period_show_the_latest_cycle_not_a_fixed_one(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    current = half_year_of(datetime.now(UTC).date())  # the pages' today
    with engine.begin() as conn:
        create_cycles(conn, [current], actor="test")
    sign_in(client, api_org, "bo")
    assert f"My team, {current.name}" in client.get("/team").text
    sign_in(client, api_org, "hal")
    assert f"No bias report for {current.name} yet." in client.get("/hr").text
    assert f"No bias report for {CYCLE} yet." in client.get("/hr", params={"cycle": CYCLE}).text
