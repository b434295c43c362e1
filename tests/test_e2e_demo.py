"""The demo, signed in, in headless Chromium (issue 15): `fairdraft demo` on its default org
(120 people, seed 7: the README's people) serves its pages, and the browser follows each
link the demo printed, presses the one button, and lands on that person's start page,
signed in as them; a link followed twice signs nobody in.

The pages on the way are scanned with axe-core and screenshotted like tests/test_e2e.py's
(docs/screenshots/sign-in-link-*.png), and the employee's manager-feedback draft as its
manager sees it, as a 1280x800 window shows it first, is the README's picture
(docs/screenshots/demo-draft.png).
"""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import Engine, select

from domain.kinds import DraftKind
from evals.demo import DEMO_PERIOD
from service.access.principal import load_principal
from service.bias.nlp import SenseParser
from service.db.models import Draft, Person
from service.settings import Settings
from service.web.pages.auth import start_path
from tests import test_e2e
from tests.test_demo import README, Served, serving_demo
from tests.test_e2e import AXE_JS, DESKTOP, PHONE, SHOTS, scan

pytestmark = [pytest.mark.browser, pytest.mark.slow]

browser = test_e2e.browser
HEADINGS = {  # the start pages' headings, by path
    "/me": re.compile(r"^My evidence"),
    "/team": re.compile(r"^My team"),
    "/panels": re.compile(r"^Calibration panels"),
    "/hr": re.compile(r"^Bias report"),
}


@pytest.fixture
def demo(settings: Settings, sense_parser: SenseParser) -> Iterator[Served]:
    with serving_demo(settings, sense_parser, people=120, seed=7) as served:
        yield served


class Pages:
    """A browser context per person (their own cookies), watched for JavaScript errors and
    axe-core's serious or critical findings."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []
        self.inaccessible: list[str] = []

    def new(self, link: str) -> Page:
        """A fresh browser for the server the link points at."""
        base = link.split("/sign-in/")[0]
        context = self.browser.new_context(viewport=DESKTOP, base_url=base)
        context.add_init_script(path=AXE_JS)
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page

    def look(self, page: Page, name: str, *, full_page: bool = True) -> None:
        """axe-core at a desktop's and a phone's width, and a screenshot of each (full
        page), or (`full_page` False) of what a 1280x800 window shows first."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            self.inaccessible.extend(scan(page, f"{name}-{label}"))
            if full_page:
                page.screenshot(
                    path=SHOTS / f"{name}-{label}.png", full_page=True, animations="disabled"
                )
        page.set_viewport_size(DESKTOP)
        if not full_page:
            page.screenshot(path=SHOTS / f"{name}.png", animations="disabled", caret="hide")

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    opened = Pages(browser)
    yield opened
    opened.close()
    assert not opened.errors, f"JavaScript errors in the pages: {opened.errors}"
    assert not opened.inaccessible, "axe-core found serious or critical problems:\n" + "\n".join(
        opened.inaccessible
    )


def expected_start(engine: Engine, name: str) -> str:
    """Where the start route sends this person, told from the database, not the demo."""
    with engine.connect() as conn:
        person_id = conn.execute(select(Person.id).where(Person.name == name)).scalar_one()
        principal = load_principal(conn, person_id, indirect=True)
    assert principal is not None
    return start_path(principal)


def test_each_printed_link_signs_its_person_in_at_their_start_page(
    demo: Served, pages: Pages, engine: Engine
) -> None:
    printed = demo.printed()
    assert [role for role, _, _ in printed] == [
        "employee",
        "manager",
        "calibration panel",
        "HR admin",
    ]
    readme = README.read_text(encoding="utf-8")
    assert all(name in readme for _, name, _ in printed), "the README names the demo's four"
    landed = []
    for role, name, link in printed:
        page = pages.new(link)
        page.goto(link)
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Sign in as {name}")
        if role == "employee":
            pages.look(page, "sign-in-link")
        page.get_by_role("button", name=f"Sign in as {name}").click()
        start = expected_start(engine, name)
        expect(page).to_have_url(re.compile(re.escape(start) + "$"))
        expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS[start])
        expect(page.locator("header .who")).to_have_text(name)
        landed.append(start)
    assert landed == ["/me", "/team", "/panels", "/hr"], "four roles, four start pages"

    again = pages.new(printed[0][2])
    response = again.goto(printed[0][2])
    assert response is not None and response.status == 410
    expect(again.get_by_role("alert")).to_contain_text("already used")
    expect(again.locator("header .who")).to_have_count(0)


def test_the_manager_opens_a_demo_draft_beside_its_evidence(
    demo: Served, pages: Pages, engine: Engine
) -> None:
    _, employee, _ = demo.printed()[0]
    _, manager, link = demo.printed()[1]
    with engine.connect() as conn:
        draft_id = conn.execute(
            select(Draft.id)
            .join(Person, Person.id == Draft.subject_id)
            .where(
                Person.name == employee,
                Draft.kind == DraftKind.MANAGER_FEEDBACK.value,
                Draft.period == DEMO_PERIOD.name,
            )
        ).scalar_one()
    page = pages.new(link)
    page.goto(link)
    page.get_by_role("button", name=f"Sign in as {manager}").click()
    expect(page).to_have_url(re.compile(r"/team$"))

    page.goto(f"/drafts/{draft_id}")

    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Manager feedback for {employee}")
    assert page.locator("button.cite").count() > 0
    pages.look(page, "demo-draft", full_page=False)  # the README's picture
