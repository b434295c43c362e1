"""A cycle's peer feedback in headless Chromium (issue 16): an employee finds and nominates
peers from "my tasks" with the keyboard alone, the manager approves the list, a peer
answers with the keyboard alone (the draft saved as they type, by static script under the
CSP), two more answer, and the employee reads the answers without names.

Reuses tests/test_e2e.py's browser, server and helpers (`live` serves this module's
`api_org`: the small company of tests/cycle_org.py with 2026-H1 started). Each page is
scanned with axe-core at a desktop's and a phone's width and screenshotted to
docs/screenshots/{tasks,nominations,nominations-manager,feedback-requests,
feedback-answer,my-feedback}-{desktop,phone}.png.
"""

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from tests import test_e2e
from tests.api_org import ApiOrg
from tests.cycle_org import PERIOD, build_cycle_org, setup_body
from tests.test_e2e import Live, submit, tab_to

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# test_e2e.py's fixtures: the browser, and `live`, which serves this module's `api_org`
browser = test_e2e.browser
live = test_e2e.live

CYCLE = PERIOD.name
ANSWERS = (
    "Bea's design reviews caught the retry bug before launch.",
    "Share the plan a week earlier so others can help.",
    "Keep pairing with the new joiners.",
)
MORE_ANSWERS = {
    "al": (
        "She unblocked the payments migration twice.",
        "Write decisions down where the team can find them.",
        "Keep running the incident reviews.",
    ),
    "cal": (
        "Clear, kind code review comments.",
        "Say no to side requests more often.",
        "Keep the on-call notes up to date.",
    ),
}


@pytest.fixture
def api_org(engine: Engine) -> ApiOrg:
    """Overrides conftest's org for `live`: tests/cycle_org.py's company, 2026-H1 started
    with peer and upward feedback."""
    org = build_cycle_org(engine)
    reviews = [*setup_body()["reviews"], "upward_feedback"]
    with engine.begin() as conn:
        setup = CycleSetupIn.model_validate(setup_body(reviews=reviews))
        create_cycle(conn, PERIOD, setup, actor="test")
        start_cycle(conn, CYCLE, actor="test")
    return ApiOrg(org.ids, org.tokens)


def nominate_with_the_keyboard(live: Live, page: Page) -> None:
    """From my tasks to a saved list of three peers: search, tick, search again (the tick
    kept), tick two more, save, all by Tab, typing, Space and Enter."""
    keys = page.keyboard
    tab_to(page, page.get_by_role("link", name="Nominate peers to give you feedback"))
    submit(page, lambda: keys.press("Enter"))
    expect(page).to_have_url(re.compile(rf"/cycles/{CYCLE}/nominations$"))
    tab_to(page, page.get_by_label("Find a colleague by name"))
    keys.type("ned")
    submit(page, lambda: keys.press("Enter"))  # the form's first button: Search
    expect(page.get_by_label("Cal Ibsen")).to_have_count(0)
    tab_to(page, page.get_by_label("Ned Park"))
    keys.press("Space")
    tab_to(page, page.get_by_label("Find a colleague by name"))
    keys.press("Control+A")
    keys.press("Backspace")
    submit(page, lambda: keys.press("Enter"))
    expect(page.get_by_label("Ned Park")).to_be_checked()
    for name in ("Al Reyes", "Cal Ibsen"):
        tab_to(page, page.get_by_label(name))
        keys.press("Space")
    tab_to(page, page.get_by_role("button", name="Save the list"))
    submit(page, lambda: keys.press("Enter"))
    expect(page.locator("p.notice")).to_contain_text("Saved 3 peers.")
    live.look(page, "nominations")


def answer_with_the_keyboard(live: Live, page: Page) -> None:
    """A peer opens the request from their list and answers; the draft saves itself as
    they type (the status line says when), then they submit."""
    keys = page.keyboard
    live.look(page, "feedback-requests")
    tab_to(page, page.get_by_role("link", name=re.compile("Bea Ross")))
    submit(page, lambda: keys.press("Enter"))
    for number, text in enumerate(ANSWERS):
        tab_to(page, page.locator(f"textarea#answer-{number}"))
        keys.type(text)
    expect(page.locator("#autosave-status")).to_contain_text("Draft saved at", timeout=10_000)
    live.look(page, "feedback-answer")
    page.reload()  # the autosaved draft is what the server holds
    expect(page.locator("textarea#answer-2")).to_have_value(ANSWERS[2])
    tab_to(page, page.get_by_role("button", name="Submit answers"))
    submit(page, lambda: keys.press("Enter"))
    expect(page.locator("p.notice")).to_contain_text("Submitted: thank you.")
    expect(page.locator("textarea")).to_have_count(0)


def answer_by_clicks(live: Live, who: str) -> None:
    page = live.open_as(who, "/feedback-requests")
    page.get_by_role("link", name=re.compile("Bea Ross")).click()
    for number, text in enumerate(MORE_ANSWERS[who]):
        page.locator(f"textarea#answer-{number}").fill(text)
    submit(page, lambda: page.get_by_role("button", name="Submit answers").click())
    expect(page.locator("p.notice")).to_contain_text("Submitted")


def test_an_employee_nominates_peers_and_a_peer_answers_with_the_keyboard_alone(
    live: Live,
) -> None:
    employee = live.open_as("bea", "/tasks")
    expect(employee.get_by_role("heading", level=1)).to_have_text("My tasks")
    expect(employee.locator("strong.overdue-badge").first).to_have_text("Overdue")
    upward = employee.get_by_role("link", name="Give upward feedback to Mia Stone")
    expect(upward).to_have_attribute("href", re.compile(r"^/feedback-requests/\d+$"))
    live.look(employee, "tasks")
    nominate_with_the_keyboard(live, employee)

    manager = live.open_as("mia", f"/team/{live.org.ids['bea']}/cycles/{CYCLE}/nominations")
    live.look(manager, "nominations-manager")
    submit(manager, lambda: manager.get_by_role("button", name="Approve the list").click())
    expect(manager.locator("p.notice")).to_have_text("Approved: 3 peers asked for feedback.")

    answer_with_the_keyboard(live, live.open_as("ned", "/feedback-requests"))
    answer_by_clicks(live, "al")
    employee.goto("/me/feedback")
    expect(employee.get_by_text("2 of 3 answered.")).to_be_visible()
    answer_by_clicks(live, "cal")
    employee.goto("/me/feedback")
    expect(employee.get_by_role("heading", name="From a peer")).to_have_count(3)
    expect(employee.get_by_text("Ned Park")).to_have_count(0)
    live.look(employee, "my-feedback")
