"""HR's cycle pages in headless Chromium (issue 16): the list, the set-up form (a refused
value shown by its field with everything typed kept, then fixed and saved), starting the
cycle, and the dashboard of a cycle under way; axe-clean and screenshotted at desktop and
phone widths to docs/screenshots/ (hr-cycles, hr-cycle-setup-refused, hr-cycle-setup,
hr-cycle-dashboard)."""

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, update

from domain.phases import TaskKind, TaskStatus
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.db.models import CycleTask
from tests import test_e2e
from tests.api_org import ApiOrg
from tests.cycle_org import PERIOD, build_cycle_org, setup_body
from tests.test_e2e import Live, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# test_e2e.py's fixtures: the browser, and `live`, which serves this module's `api_org`
browser = test_e2e.browser
live = test_e2e.live

DATES = {
    "self_reflection": ("2027-01-04", "2027-01-15"),
    "peer_feedback": ("2027-01-11", "2027-01-22"),
    "manager_review": ("2027-01-18", "2027-01-29"),
    "calibration": ("2027-02-01", "2027-02-12"),
    "release": ("2027-02-15", "2027-02-17"),
    "sign_off": ("2027-02-17", "2027-02-26"),
}


@pytest.fixture
def api_org(engine: Engine) -> ApiOrg:
    """tests/cycle_org.py's company with 2026-H1 started (its dates are past, so open tasks
    are overdue) and some of it done."""
    org = build_cycle_org(engine)
    with engine.begin() as conn:
        create_cycle(conn, PERIOD, CycleSetupIn.model_validate(setup_body()), actor="test")
        start_cycle(conn, PERIOD.name, actor="test")
        conn.execute(
            update(CycleTask)
            .where(CycleTask.kind == TaskKind.WRITE_SELF_REFLECTION)
            .where(CycleTask.subject_id.in_([org.ids["al"], org.ids["bea"]]))
            .values(status=TaskStatus.DONE)
        )
    return ApiOrg(org.ids, org.tokens)


def fill_setup(page: Page, *, zone: str) -> None:
    page.get_by_label("Period it reviews").fill("2026-H2")
    page.get_by_label("Title").fill("2026 H2 review")
    page.get_by_label("Time zone").fill(zone)
    page.get_by_label("Cut-off day").fill("2026-12-31")
    page.get_by_label("Departments").fill("Payments\nRisk")
    page.get_by_label("Promotion packet").uncheck()
    for phase, (opens, due) in DATES.items():
        title = phase.replace("_", " ").capitalize()
        page.get_by_label(f"{title} opens", exact=True).fill(opens)
        page.get_by_label(f"{title} due", exact=True).fill(due)


def test_hr_sets_up_starts_and_follows_a_cycle(live: Live) -> None:
    page = live.open_as("hana", "/hr/cycles")
    expect(page.get_by_role("heading", name="Review cycles")).to_be_visible()
    live.look(page, "hr-cycles")
    submit(page, lambda: page.get_by_role("link", name="Set up a new cycle").click())
    fill_setup(page, zone="Mars/Olympus_Mons")
    submit(page, lambda: page.get_by_role("button", name="Set up the cycle").click())
    expect(page.locator("#e-time_zone")).to_contain_text("is not an IANA time zone")
    expect(page.get_by_label("Time zone")).to_have_value("Mars/Olympus_Mons")
    expect(page.get_by_label("Departments")).to_have_value("Payments\nRisk")
    expect(page.get_by_label("Calibration due", exact=True)).to_have_value("2027-02-12")
    live.look(page, "hr-cycle-setup-refused")
    page.get_by_label("Time zone").fill("Europe/Lisbon")
    submit(page, lambda: page.get_by_role("button", name="Set up the cycle").click())
    expect(page).to_have_url(re.compile(r"/hr/cycles/2026-H2/setup$"))
    expect(page.locator("p.notice")).to_contain_text("Set up 2026-H2 as a draft.")
    live.look(page, "hr-cycle-setup")
    submit(page, lambda: page.get_by_role("button", name="Start 2026-H2").click())
    expect(page).to_have_url(re.compile(r"/hr/cycles/2026-H2/dashboard$"))
    expect(page.locator("p.notice")).to_contain_text("Started 2026-H2")
    page.goto(f"/hr/cycles/{PERIOD.name}/dashboard")
    expect(page.get_by_role("heading", name=re.compile("Overdue tasks"))).to_be_visible()
    expect(page.get_by_role("button", name="Close calibration")).to_be_visible()
    expect(page.get_by_label("Release to")).to_be_visible()
    live.look(page, "hr-cycle-dashboard")
