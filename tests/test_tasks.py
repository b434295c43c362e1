"""My tasks (issue 16): each person sees their own tasks only, soonest due first, with the
subject named where it is someone they may see, and overdue judged in the cycle's time
zone."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from domain.phases import TaskStatus
from service.app import create_app
from service.cycles.tasks import TaskLine, tasks_of
from service.db.models import CycleTask, Person, ReviewCycle
from service.settings import Settings
from tests.cycle_org import CycleOrg, start_cycle_org

API = "/api/v1"


@pytest.fixture
def org(engine: Engine) -> CycleOrg:
    return start_cycle_org(engine)


@pytest.fixture
def api(engine: Engine, settings: Settings, org: CycleOrg) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine, worker=False)) as client:
        yield client


def test_my_tasks_are_the_callers_own_only(api: TestClient, org: CycleOrg) -> None:
    seen = {}
    for who in org.ids:
        response = api.get(f"{API}/me/tasks", headers=org.auth(who))
        assert response.status_code == 200, response.text
        seen[who] = response.json()
    al = seen["al"]["items"]
    assert seen["al"]["total"] == len(al) == 5
    assert sorted((t["kind"], t["subject_name"]) for t in al) == [
        ("acknowledge_review", None),
        ("approve_nominations", "Ned Park"),
        ("nominate_peers", None),
        ("write_manager_feedback", "Ned Park"),
        ("write_self_reflection", None),
    ]
    assert {t["subject_id"] for t in al} == {org.ids["al"], org.ids["ned"]}
    assert [t["due_on"] for t in al] == sorted(t["due_on"] for t in al)
    # HR sees their own tasks here, not everyone's; a joiner after the cut-off has none.
    assert {t["subject_id"] for t in seen["hana"]["items"]} == {org.ids["hana"]}
    assert seen["jo"] == {"items": [], "total": 0, "limit": 50, "offset": 0}
    mia = {t["subject_name"] for t in seen["mia"]["items"]}
    assert mia == {None, "Al Reyes", "Bea Ross", "Cal Ibsen"}  # not Ned: Al's report
    assert api.get(f"{API}/me/tasks").status_code == 401


def test_my_tasks_filter_by_cycle_and_status_and_refuse_bad_values(
    api: TestClient, org: CycleOrg
) -> None:
    def get(query: str) -> tuple[int, Any]:
        response = api.get(f"{API}/me/tasks?{query}", headers=org.auth("al"))
        return response.status_code, response.json()

    assert get("cycle=2026-H1")[1]["total"] == 5
    assert get("cycle=2026-H2")[1]["total"] == 0
    assert get("status=done")[1]["total"] == 0
    status, body = get("cycle=2026-H3")
    assert status == 422 and body["errors"][0]["field"] == "cycle"
    status, body = get("status=finished")
    assert status == 422 and body["errors"][0]["field"] == "query.status"
    assert get("limit=2")[1]["total"] == 5 and len(get("limit=2")[1]["items"]) == 2


def own_tasks(engine: Engine, org: CycleOrg, now: datetime) -> list[TaskLine]:
    with engine.connect() as conn:
        items, _ = tasks_of(conn, org.ids["bea"], now=now, may_see=lambda _: True)
    return items


def overdue_kinds(engine: Engine, org: CycleOrg, zone: str, now: datetime) -> set[str]:
    with engine.begin() as conn:
        conn.execute(update(ReviewCycle).values(time_zone=zone))
    return {t.kind for t in own_tasks(engine, org, now) if t.overdue}


def test_overdue_is_judged_in_the_cycles_time_zone(engine: Engine, org: CycleOrg) -> None:
    """Bea's self-reflection and nomination are due on 10 July: at noon UTC that day they
    are not late in London, but it is already the 11th on Kiritimati (UTC+14); at 05:00
    UTC on the 11th they are late in UTC, and still due today in Los Angeles."""
    noon = datetime(2026, 7, 10, 12, 0, tzinfo=UTC)
    early = datetime(2026, 7, 11, 5, 0, tzinfo=UTC)
    due_tenth = {"write_self_reflection", "nominate_peers"}
    assert overdue_kinds(engine, org, "Europe/London", noon) == set()
    assert overdue_kinds(engine, org, "Pacific/Kiritimati", noon) == due_tenth
    assert overdue_kinds(engine, org, "UTC", early) == due_tenth
    assert overdue_kinds(engine, org, "America/Los_Angeles", early) == set()
    with engine.begin() as conn:
        conn.execute(
            update(CycleTask)
            .where(CycleTask.assignee_id == org.ids["bea"], CycleTask.kind == "nominate_peers")
            .values(status=TaskStatus.DONE, done_at=early)
        )
    assert overdue_kinds(engine, org, "UTC", early) == {"write_self_reflection"}  # done: not


def test_a_subject_the_caller_may_no_longer_see_is_not_named(
    api: TestClient, org: CycleOrg, engine: Engine
) -> None:
    """Ned moved to Bea's team after the cycle started: Al keeps the task (a later step
    reassigns it), but no longer sees whose it is."""
    with engine.begin() as conn:
        conn.execute(
            update(Person).where(Person.id == org.ids["ned"]).values(manager_id=org.ids["bea"])
        )
    items = api.get(f"{API}/me/tasks", headers=org.auth("al")).json()["items"]
    about_ned = [t for t in items if t["kind"] in ("approve_nominations", "write_manager_feedback")]
    assert len(about_ned) == 2
    assert all(t["subject_id"] is None and t["subject_name"] is None for t in about_ned)
    assert "Ned Park" not in str(items)
