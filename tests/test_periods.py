"""One validation for every period (domain.periods): years 2000 to 2100, strict format,
no whitespace, ranges of at most five years, and every entry point (API parameters and
bodies, pages, job payloads) answers a clear 422 or a failed job, never a 500 or a cycle
made by accident. The CLI's options are in tests/test_cli_values.py."""

from datetime import date
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from domain.periods import PeriodError, parse_period
from service.db.models import Job, ReviewCycle
from service.jobs.queue import enqueue
from service.jobs.worker import Worker
from service.settings import Settings
from tests.api_org import ApiOrg
from tests.test_web import ORIGIN, sign_in

# The values of the report (issue 12, item 6), and their relatives.
BAD = (
    "9999-Q4",
    "9999",
    "2026-01-01..9999-12-31",
    "9999-12",
    "9999-H1",
    "0001-H1",
    "2026-H1\n",
    " 2026-H1",
    "2026-H1 ",
    "2026 -H1",
    "2026-H1\t",
    "1999-H2",
    "2101",
    "\u0662\u0660\u0662\u0666-H1",  # Arabic-Indic digits
    "2026-01-01..2031-06-30",  # longer than five years
    "2026-03-01..2026-02-01",  # backwards
    "2026-02-30..2026-03-31",
    "2026-13",
    "2026-h1",
    "",
    "x" * 5000,
)


@pytest.mark.parametrize("value", BAD)
def test_a_value_that_is_not_a_period_is_refused_with_a_period_error(value: str) -> None:
    with pytest.raises(PeriodError) as refused:
        parse_period(value)
    assert len(str(refused.value)) < 200  # a hostile value is quoted, cut short


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("2000", date(2000, 1, 1), date(2000, 12, 31)),
        ("2100-12", date(2100, 12, 1), date(2100, 12, 31)),
        ("2026-H1", date(2026, 1, 1), date(2026, 6, 30)),
        ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30)),
        ("2026-01-01..2030-12-31", date(2026, 1, 1), date(2030, 12, 31)),  # five years
        ("2024-02-29..2029-02-28", date(2024, 2, 29), date(2029, 2, 28)),
    ],
)
def test_periods_within_the_bounds_are_read(value: str, start: date, end: date) -> None:
    period = parse_period(value)
    assert (period.name, period.start, period.end) == (value, start, end)


def test_the_error_says_what_is_wrong() -> None:
    def reason(value: str) -> str:
        with pytest.raises(PeriodError) as refused:
            parse_period(value)
        return str(refused.value)

    assert "years run from 2000 to 2100" in reason("9999-Q4")
    assert "no spaces or line breaks" in reason("2026-H1\n")
    assert "'2026-H1\\n'" in reason("2026-H1\n")  # shown, not stripped
    assert "at most 5 years" in reason("2026-01-01..2031-06-30")
    assert "ends before it starts" in reason("2026-03-01..2026-02-01")
    assert "use 2026-H1, 2026-Q3" in reason("soon")


def _count(engine: Engine, model: type[ReviewCycle] | type[Job]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_every_api_entry_point_answers_422_for_a_bad_period_and_creates_nothing(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    cy, bo, hal = api_org.ids["cy"], api_org.auth("bo"), api_org.auth("hal")
    cycles, jobs = _count(engine, ReviewCycle), _count(engine, Job)
    wrong: list[str] = []
    for value in BAD:
        if not value:
            continue  # an empty path segment is another route; empty queries are below
        path = quote(value, safe="")
        calls: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
            ("GET", f"/api/v1/people/{cy}/records", {"params": {"period": value}}, bo),
            (
                "GET",
                f"/api/v1/people/{cy}/evidence",
                {"params": {"period": value, "kind": "self_reflection"}},
                bo,
            ),
            (
                "POST",
                f"/api/v1/people/{cy}/drafts",
                {"json": {"kind": "manager_feedback", "period": value}},
                bo,
            ),
            ("PUT", f"/api/v1/cycles/{path}/ratings/{cy}", {"json": {"rating": 3}}, bo),
            ("GET", f"/api/v1/cycles/{path}/ratings", {}, bo),
            ("POST", f"/api/v1/cycles/{path}/ratings/{cy}/finalise", {}, hal),
            ("POST", f"/api/v1/cycles/{path}/drafts", {"json": {}}, hal),
            ("POST", f"/api/v1/cycles/{path}/bias-report", {}, hal),
            ("GET", f"/api/v1/cycles/{path}/bias-report", {}, hal),
            (
                "POST",
                "/api/v1/panels",
                {
                    "json": {
                        "cycle": value,
                        "level": "L4",
                        "job_family": "engineering",
                        "members": [api_org.ids["pat"]],
                    }
                },
                hal,
            ),
        ]
        for method, url, kwargs, auth in calls:
            answer = client.request(method, url, headers=auth, **kwargs)
            if answer.status_code != 422:
                wrong.append(f"{method} {url} {value!r}: {answer.status_code} {answer.text}")
            elif "period" not in answer.text and "cycle" not in answer.text:
                wrong.append(f"{method} {url} {value!r}: says neither period nor cycle")
    assert wrong == []
    assert (_count(engine, ReviewCycle), _count(engine, Job)) == (cycles, jobs)


def test_the_reported_period_values_name_the_field_in_the_error(
    client: TestClient, api_org: ApiOrg
) -> None:
    answer = client.get(
        f"/api/v1/people/{api_org.ids['cy']}/records",
        params={"period": "9999-Q4"},
        headers=api_org.auth("cy"),
    )
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["field"] == "period" and "2000 to 2100" in error["reason"]


def test_every_page_answers_422_for_a_bad_period_never_500(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    cycles, jobs = _count(engine, ReviewCycle), _count(engine, Job)
    wrong: list[str] = []
    for who, url, name in (
        ("cy", "/me", "period"),
        ("bo", "/team", "period"),
        ("hal", "/hr", "cycle"),
    ):
        sign_in(client, api_org, who)
        for value in BAD:
            answer = client.get(url, params={name: value})
            if answer.status_code != 422:
                wrong.append(f"GET {url}?{name}={value!r}: {answer.status_code}")
    sign_in(client, api_org, "cy")
    for value in BAD:
        answer = client.post(
            "/me/drafts", data={"period": value}, headers=ORIGIN, follow_redirects=False
        )
        if answer.status_code != 422:
            wrong.append(f"POST /me/drafts {value!r}: {answer.status_code}")
    assert wrong == []
    assert (_count(engine, ReviewCycle), _count(engine, Job)) == (cycles, jobs)


def test_a_job_with_a_bad_period_fails_once_with_the_reason(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    cy = api_org.ids["cy"]
    with engine.begin() as conn:
        job_id = enqueue(
            conn,
            "draft",
            {"person_id": cy, "kind": "self_reflection", "period": "9999-12"},
            requested_by=cy,
            max_attempts=3,
            actor="test",
        )
    assert Worker(engine, settings).run_once()
    job = client.get(f"/api/v1/jobs/{job_id}", headers=api_org.auth("cy")).json()
    assert (job["status"], job["attempts"]) == ("failed", 1), job
    assert "years run from 2000 to 2100" in job["error"]
