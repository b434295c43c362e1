"""End-to-end tests in headless Chromium: the app runs as a real HTTP server (uvicorn in a
thread, with the in-process job worker) and Debian's `chromium`, driven by Playwright for
Python, signs in, clicks, types and tabs through the pages the way a person does.

Every main page is scanned with axe-core (the copy bundled with axe-playwright-python,
injected from disk: no CDN) at a desktop and a phone width, and screenshotted full-page to
docs/screenshots/<page>-<desktop|phone>.png; the scan's findings are summarised in
docs/screenshots/axe.json. A serious or critical axe violation fails the test.

Chromium missing fails these tests (CI must run them; `make test` installs it) unless
FAIRDRAFT_E2E_OPTIONAL=1 is set, which skips them with the reason.
"""

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from sqlalchemy import Engine

from domain.periods import parse_period
from service.app import create_app
from service.bias.nlp import SenseParser
from service.bias.report import build_report
from service.ingest.run import Ingestor
from service.settings import Settings
from tests.api_org import CYCLE, ApiOrg, build_api_org
from tests.served import served

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Read at import: the autouse fixture in conftest.py clears FAIRDRAFT_* for each test.
OPTIONAL = os.environ.get("FAIRDRAFT_E2E_OPTIONAL") == "1"
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
AXE_JS = Path(str(files("axe_playwright_python").joinpath("axe.min.js")))
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
BLOCKING = ("serious", "critical")
_axe_summary: dict[str, list[dict[str, Any]]] = {}


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        reason = (
            "Debian's chromium is not installed (`make test` installs it: apt-get install chromium)"
        )
        if OPTIONAL:
            pytest.skip(f"{reason}; skipped because FAIRDRAFT_E2E_OPTIONAL=1")
        pytest.fail(f"{reason}; set FAIRDRAFT_E2E_OPTIONAL=1 to skip the browser tests instead")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()
    if _axe_summary:  # merged, so that running one test keeps the other pages' findings
        SHOTS.mkdir(parents=True, exist_ok=True)
        summary = SHOTS / "axe.json"
        known = json.loads(summary.read_text(encoding="utf-8")) if summary.exists() else {}
        merged = dict(sorted({**known, **_axe_summary}.items()))
        summary.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")


@pytest.fixture
def api_org(engine: Engine, settings: Settings, ingestor: Ingestor, tmp_path: Path) -> ApiOrg:
    """conftest's org, built in a thread of its own: the drafting in it runs an event loop,
    and Playwright's sync API already runs one in this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(build_api_org, engine, settings, ingestor, tmp_path / "api-org").result()


@dataclass
class Live:
    """The app served over HTTP on a loopback port, and the test org in it."""

    url: str
    org: ApiOrg
    engine: Engine
    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # JavaScript errors in the pages
    inaccessible: list[str] = field(default_factory=list)  # serious or critical axe findings

    def look(self, page: Page, name: str) -> None:
        """Scan the page with axe-core and screenshot it, at the desktop's and a phone's
        width. The test goes on after a finding, so that one run reports every page; the
        fixture fails it at the end."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            self.inaccessible.extend(scan(page, f"{name}-{label}"))
            page.screenshot(
                path=SHOTS / f"{name}-{label}.png",
                full_page=True,
                animations="disabled",
                caret="hide",
            )
        page.set_viewport_size(DESKTOP)

    def open_as(self, who: str | None, next_path: str = "/") -> Page:
        """A browser of one's own (own cookies), signed in as `who` through the sign-in
        form, on `next_path`."""
        context = self.browser.new_context(viewport=DESKTOP, base_url=self.url)
        context.add_init_script(path=AXE_JS)  # by CDP: the pages' CSP refuses a script tag
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        if who is None:
            page.goto(next_path)
            return page
        page.goto(f"/sign-in?next={next_path}")
        page.get_by_label("Your access token").fill(self.org.tokens[who])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        assert "/sign-in" not in page.url, page.content()
        return page


@pytest.fixture
def live(engine: Engine, settings: Settings, api_org: ApiOrg, browser: Browser) -> Iterator[Live]:
    quick = settings.model_copy(update={"job_poll_s": 0.05})
    app = create_app(quick, engine=engine, worker=True)
    with served(app, stop_s=30) as url:
        live = Live(url, api_org, engine, browser)
        try:
            yield live
        finally:
            for context in live.contexts:
                context.close()
    assert not live.errors, f"JavaScript errors in the pages: {live.errors}"
    assert not live.inaccessible, "axe-core found serious or critical problems:\n" + "\n".join(
        live.inaccessible
    )


def scan(page: Page, name: str) -> list[str]:
    """axe-core (injected from the local copy) on the page as it is: every finding goes to
    docs/screenshots/axe.json; the serious and critical ones are returned, described."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=AXE_JS)
    results: dict[str, Any] = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
    )
    found = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [", ".join(map(str, n["target"])) for n in v["nodes"]],
        }
        for v in results["violations"]
    ]
    _axe_summary[name] = found
    return [
        f"{name} ({page.url}): {v['id']} ({v['impact']}) {v['help']}: {v['targets']}"
        for v in found
        if v["impact"] in BLOCKING
    ]


def tab_to(page: Page, target: Locator, *, limit: int = 120) -> None:
    """Press Tab until `target` has the focus; it must show a focus indicator."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            outline = target.evaluate("el => getComputedStyle(el).outlineStyle")
            assert outline != "none", f"{target} shows no focus indicator"
            return
    raise AssertionError(f"{limit} presses of Tab never reached {target} on {page.url}")


def submit(page: Page, action: Callable[[], None]) -> None:
    """Send a form (by a click or a key) and wait for the page it leads to."""
    with page.expect_navigation():
        action()


def notice(page: Page) -> str:
    return page.locator("p.notice, p.error").first.inner_text()


def text_editor(page: Page) -> Locator:
    """The draft page's "Edit as text" form (a link away from the sentence editor): its
    textarea."""
    link = page.get_by_role("link", name="Edit as text instead")
    if link.count():
        link.click()
    return page.get_by_label(re.compile(r"^Text"))


def added_sentence(page: Page) -> Locator:
    """The sentence editor's "Add a sentence" field of the draft's last section."""
    return page.locator(".editor fieldset").last.locator("textarea[name$='-new']")


# --- an employee --------------------------------------------------------------------------


def test_an_employee_requests_a_draft_and_sees_it_with_citations(live: Live) -> None:
    sign_in = live.open_as(None, "/sign-in?next=/me")
    live.look(sign_in, "sign-in")
    sign_in.get_by_label("Your access token").fill("fd_not_a_token")
    sign_in.get_by_role("button", name="Sign in").click()
    expect(sign_in.get_by_role("alert")).to_contain_text("unknown, revoked or expired")

    page = live.open_as("dee", "/me")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"My evidence, {CYCLE}")
    live.look(page, "my-evidence")
    page.get_by_role("button", name=f"Draft my self-reflection for {CYCLE}").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    opened = page.get_by_role("link", name="Open the draft")
    expect(opened).to_be_visible(timeout=30_000)  # the page reloads itself until done
    expect(page.get_by_role("heading", level=1)).to_have_text("Your draft is ready")
    live.look(page, "job")

    opened.click()
    expect(page).to_have_url(re.compile(r"/drafts/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Self reflection for Dee")
    cites = page.locator("button.cite")
    assert cites.count() > 0
    live.look(page, "draft-employee")
    first = cites.first
    target = first.get_attribute("data-target")
    assert target
    evidence = page.locator(f"#{target}")
    expect(evidence).not_to_have_class(re.compile(r"\bshown\b"))
    first.click()
    expect(evidence).to_have_class(re.compile(r"\bshown\b"))
    beside = page.locator(".sentence + aside.inline-evidence")  # right under the sentence
    expect(beside).to_have_count(1)
    expect(beside).to_be_focused()
    expect(beside).to_be_in_viewport()
    expect(beside.locator("h3")).to_have_text(evidence.locator("h3").inner_text())
    expect(first).to_have_attribute("aria-expanded", "true")
    live.look(page, "draft-evidence-beside")
    page.keyboard.press("Escape")  # closes it, and the focus goes back to the chip
    expect(beside).to_have_count(0)
    expect(first).to_be_focused()


# --- a manager ----------------------------------------------------------------------------

ABRASIVE = "Cy can be abrasive when a design review runs long."


def test_a_manager_edits_a_draft_acknowledges_a_bias_flag_and_approves(live: Live) -> None:
    draft = live.org.drafts["cy_feedback"]
    page = live.open_as("bo", f"/drafts/{draft}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Manager feedback for Cy")
    added_sentence(page).fill(ABRASIVE)  # the sentence editor, with one chip chosen
    page.locator(".editor fieldset").last.locator("select[name$='-new']").select_option("E1")
    live.look(page, "draft-editor")
    submit(page, page.get_by_role("button", name="Save as version 2").click)
    assert notice(page) == "Saved as version 2."
    abrasive = page.locator(".sentence", has_text="abrasive")
    expect(abrasive.locator("button.cite")).to_have_text(["E1"])

    submit(page, page.get_by_role("button", name="Check this version").click)
    assert notice(page).startswith("Checked:")
    flag = page.locator("mark.flag", has_text="abrasive")
    expect(flag).to_be_visible()
    key = (flag.get_attribute("id") or "").removeprefix("at-")
    assert re.fullmatch(r"F\d+", key), key
    expect(page.locator(f"#flag-{key}")).to_contain_text("personality criticism")
    live.look(page, "draft-flagged")

    submit(page, page.get_by_role("button", name="Approve").click)
    expect(page.get_by_role("alert")).to_contain_text("open flags")

    page.get_by_label(f"Reason to keep {key}").fill(
        "Two peers raised it in the review record; we agreed on the behaviour to change."
    )
    submit(
        page, page.locator(f"#flag-{key}").get_by_role("button", name="Keep with this reason").click
    )
    assert notice(page) == f"{key} acknowledged."
    expect(page.locator(f"#flag-{key}")).to_contain_text("Kept by")
    while page.locator("input[name=reason]").count():  # the drafter's own flags, if any
        reason = page.locator("input[name=reason]").first
        reason.fill("Reviewed with Cy; the wording is accurate.")
        submit(page, reason.locator("xpath=ancestor::form").get_by_role("button").click)
    submit(page, page.get_by_role("button", name="Approve").click)
    assert notice(page) == "Approved."
    expect(page.locator("span.status")).to_have_text("approved")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    live.look(page, "draft-approved")

    page.get_by_role("link", name=re.compile(r"^history")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"History of draft {draft}")
    expect(page.locator(".diff ins")).to_contain_text("abrasive")
    live.look(page, "history")


def test_the_same_review_done_with_the_keyboard_alone(live: Live) -> None:
    draft = live.org.drafts["cy_feedback"]
    page = live.open_as(None, f"/sign-in?next=/drafts/{draft}")
    keys = page.keyboard
    keys.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0, "the skip link is off screen when focused"
    keys.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    keys.press("Tab")
    expect(page.get_by_label("Your access token")).to_be_focused()
    keys.type(live.org.tokens["bo"])
    submit(page, lambda: keys.press("Enter"))
    expect(page).to_have_url(re.compile(rf"/drafts/{draft}$"))

    tab_to(page, added_sentence(page))
    keys.type(ABRASIVE)
    tab_to(page, page.get_by_role("button", name="Save as version 2"), limit=5)
    submit(page, lambda: keys.press("Enter"))
    assert notice(page) == "Saved as version 2."

    tab_to(page, page.get_by_role("button", name="Check this version"))
    submit(page, lambda: keys.press("Space"))
    expect(page.locator("mark.flag", has_text="abrasive")).to_be_visible()
    while page.locator("input[name=reason]").count():
        tab_to(page, page.locator("input[name=reason]").first)
        keys.type("Raised by two peers; agreed with Cy as the behaviour to change.")
        submit(page, lambda: keys.press("Enter"))
        assert notice(page).endswith("acknowledged.")

    tab_to(page, page.get_by_role("button", name="Approve"))
    submit(page, lambda: keys.press("Space"))
    assert notice(page) == "Approved."
    expect(page.locator("span.status")).to_have_text("approved")


def test_a_manager_proposes_a_rating_and_cannot_open_another_teams_draft(live: Live) -> None:
    org = live.org
    page = live.open_as("bo")  # the start page sends a manager to the team
    expect(page).to_have_url(re.compile(r"/team$"))
    team = page.locator("main table")
    expect(team).to_contain_text("Cy Diaz")
    expect(team).to_contain_text("Dee Okafor")
    assert "Fay" not in page.content()
    live.look(page, "team")

    page.get_by_role("link", name="Propose a rating for Cy Diaz").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Rating for Cy Diaz, {CYCLE}")
    live.look(page, "rating-proposal")
    page.get_by_label(re.compile(r"^Rating")).select_option("3")
    submit(page, page.get_by_role("button", name="Propose this rating").click)
    assert notice(page) == f"Proposed 3 for Cy Diaz in {CYCLE}."
    expect(page.get_by_role("row", name=re.compile("Cy Diaz"))).to_contain_text("3 by you")

    fay_draft = org.drafts["fay_self"]
    for path in (
        f"/drafts/{fay_draft}",
        f"/drafts/{fay_draft}/history",
        f"/team/{org.ids['fay']}/rating",
    ):
        response = page.goto(path)  # typed into the address bar
        assert response is not None and response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
        assert "Fay" not in page.content() and "Refund queue" not in page.content()
    live.look(page, "not-found")


# --- a calibration panel and HR -----------------------------------------------------------


def test_a_panel_member_places_calibrates_and_finalises_after_the_bias_report(
    live: Live,
    sense_parser: SenseParser,
) -> None:
    with live.engine.begin() as conn:
        build_report(conn, parse_period(CYCLE), actor="test", parser=sense_parser)
    hr = live.open_as("hal")  # the start page sends HR to the bias report
    expect(hr).to_have_url(re.compile(r"/hr$"))
    expect(hr.get_by_role("heading", level=1)).to_have_text(f"Bias report, {CYCLE}")
    live.look(hr, "hr")

    page = live.open_as("pat")  # and a panel member to their panels
    expect(page).to_have_url(re.compile(r"/panels$"))
    live.look(page, "panels")
    page.get_by_role("link", name="L3 engineering").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Calibration: L3 engineering")
    cohort = page.get_by_role("table", name="The cohort's ratings side by side")
    expect(cohort.locator("tbody tr")).to_have_count(2)
    assert "Cy Diaz" not in page.content() and "Fay Moreau" not in page.content()
    expect(page.locator("[aria-labelledby=distribution-h] svg[role=img]")).to_be_visible()
    expect(page.get_by_role("group", name="9-box")).to_be_visible()
    live.look(page, "panel")

    card = page.locator(".people > article").filter(has=page.locator("select[name=rating]")).first
    label = card.locator("h3").inner_text()
    keys = page.keyboard  # placing someone on the 9-box with the keyboard alone
    tab_to(page, card.get_by_label("Performance"))
    keys.press("End")  # Low, Medium, High
    tab_to(page, card.get_by_label("Potential"), limit=1)
    keys.press("ArrowDown")
    tab_to(page, card.get_by_role("button", name=re.compile(r"^Place")), limit=1)
    submit(page, lambda: keys.press("Enter"))
    assert notice(page).startswith(f"{label} placed: performance high, potential medium")
    placed = page.locator('.ninebox .cell[data-performance="3"][data-potential="2"]')
    expect(placed).to_contain_text(label)

    card = page.locator(f"article:has(h3:text-is('{label}'))")
    card.get_by_label("Calibrated rating").select_option("3")
    submit(page, card.get_by_role("button", name=re.compile(r"^Set")).click)
    assert notice(page) == f"{label}: calibrated rating 3."
    expect(cohort.get_by_role("row", name=re.compile(label))).to_contain_text("3")

    submit(page, card.get_by_role("button", name=re.compile(r"^Finalise")).click)
    expect(page.get_by_role("alert")).to_contain_text("run the bias report")  # stale now

    hr.goto("/hr")
    expect(hr.get_by_role("status").first).to_contain_text("Ratings changed after this report")
    submit(hr, hr.get_by_role("button", name=f"Run the bias report for {CYCLE}").click)
    hr.get_by_role("link", name=re.compile(r"^Job \d+")).first.click()
    expect(hr.get_by_role("link", name="Open the bias report")).to_be_visible(timeout=30_000)
    expect(hr.get_by_role("heading", level=1)).to_have_text("The bias report is ready")
    live.look(hr, "job-bias-report")

    submit(page, card.get_by_role("button", name=re.compile(r"^Finalise")).click)
    assert notice(page) == f"{label}: rating final."
    expect(cohort.get_by_role("row", name=re.compile(label))).to_contain_text("final")
    expect(page.locator(f"article:has(h3:text-is('{label}'))")).to_contain_text(
        "The rating is final."
    )
    live.look(page, "panel-finalised")
