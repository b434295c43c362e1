"""A whole review cycle in headless Chromium (issue 16's must-show), every step by the
person who takes it, on the pages alone:

HR sets the cycle up for one department and starts it; the employee approves their
self-reflection from its draft and nominates peers; the manager approves the list; three
peers answer; the manager writes their feedback again without one evidence item, changes a
sentence's evidence, keeps a bias flag with a reason and approves; the panel calibrates;
HR runs the bias report (the panel then finalises), closes calibration and releases; the
employee reads their review, acknowledges it and comments; HR exports the decisions.
Before the release the employee sees nothing of the manager's review.

Reuses tests/test_e2e.py's browser, server, org (tests/api_org.py) and helpers; each new
page is scanned with axe-core at a desktop's and a phone's width and screenshotted to
docs/screenshots/ (live.look).
"""

import csv
import io
import re
from datetime import date

import pytest
from playwright.sync_api import Page, expect

from evals.demo_cycle import phase_dates
from tests import test_e2e
from tests.api_org import CYCLE, CYCLE_PERIOD
from tests.test_e2e import Live, notice, submit

pytestmark = [pytest.mark.browser, pytest.mark.slow]

browser = test_e2e.browser
api_org = test_e2e.api_org
live = test_e2e.live

PEERS = {"dee": "Dee Okafor", "fay": "Fay Moreau", "pat": "Pat Singh"}
ANSWERS = (
    "Cy's runbook made the cut-over calm for everyone on call.",
    "Share the migration plan earlier so support can prepare.",
    "Keep pairing on the settlement alerts.",
)
ABRASIVE = "Cy can be abrasive when a design review runs long."


def set_up_and_start(live: Live) -> Page:
    hr = live.open_as("hal", "/hr/cycles/new")
    hr.get_by_label("Period it reviews").fill(CYCLE)
    hr.get_by_label("Title").fill("2026 H1 review")
    hr.get_by_label("Time zone").fill("Europe/Lisbon")
    hr.get_by_label("Cut-off day").fill("2026-06-30")
    hr.get_by_label("Departments").fill("Payments")
    for review in ("Self reflection", "Peer feedback", "Manager feedback", "Calibration"):
        hr.get_by_label(review, exact=True).check()
    for phase, days in phase_dates(CYCLE_PERIOD, date.today()).items():
        for end in ("opens", "due"):
            hr.locator(f"#f-phases-{phase.replace('_', '_')}-{end}").fill(days[end])
    live.look(hr, "cycle-setup")
    submit(hr, hr.get_by_role("button", name="Set up the cycle").click)
    expect(hr.get_by_role("heading", level=1)).to_have_text(f"Set-up of {CYCLE}")
    submit(hr, hr.get_by_role("button", name=f"Start {CYCLE}").click)
    expect(hr.locator("p.notice").first).to_contain_text("tasks")
    return hr


def approve_own_self_reflection(live: Live, employee: Page) -> None:
    submit(employee, employee.get_by_role("link", name="Write your self-reflection").click)
    draft = live.org.drafts["cy_self"]
    employee.goto(f"/drafts/{draft}")
    submit(employee, employee.get_by_role("button", name="Check this version").click)
    keep_every_flag(employee, "My own words; I checked them.")
    submit(employee, employee.get_by_role("button", name="Approve").click)
    assert notice(employee) == "Approved."


def keep_every_flag(page: Page, reason: str) -> None:
    while page.locator("input[name=reason]").count():
        field = page.locator("input[name=reason]").first
        field.fill(reason)
        submit(page, field.locator("xpath=ancestor::form").get_by_role("button").click)


def nominate(employee: Page) -> None:
    employee.goto(f"/cycles/{CYCLE}/nominations")
    for name in PEERS.values():
        employee.get_by_label(name).check()
    submit(employee, employee.get_by_role("button", name="Save the list").click)
    expect(employee.locator("p.notice")).to_contain_text("Saved 3 peers.")


def answer(live: Live, who: str) -> None:
    peer = live.open_as(who, "/feedback-requests")
    submit(peer, peer.get_by_role("link", name=re.compile("Cy Diaz")).click)
    for number, text in enumerate(ANSWERS):
        peer.locator(f"textarea#answer-{number}").fill(text)
    submit(peer, peer.get_by_role("button", name="Submit answers").click)
    expect(peer.locator("p.notice")).to_contain_text("Submitted")


def write_feedback_again_and_approve(live: Live) -> Page:
    draft = live.org.drafts["cy_feedback"]
    manager = live.open_as("bo", f"/drafts/{draft}")
    left_out = manager.locator(".evidence-item h3").first.inner_text().split(" · ")[1]
    manager.get_by_label("Leave E1 out of the next draft").check()
    submit(manager, manager.get_by_role("button", name="Draft version 2").click)
    opened = manager.get_by_role("link", name="Open the draft")
    expect(opened).to_be_visible(timeout=30_000)
    submit(manager, opened.click)
    expect(manager.locator(".evidence-item h3", has_text=left_out)).to_have_count(0)

    first = manager.locator(".editor fieldset").first.locator(".editor-row").first
    chips = first.locator("input[type=checkbox]")
    kept = chips.count()
    for index in range(kept):
        chips.nth(index).uncheck()  # this sentence's evidence changed: its chips removed...
    last = manager.locator(".evidence-item").last.get_attribute("id") or ""
    first.locator("select").select_option(last.removeprefix("ev-"))  # ...and another added
    manager.locator(".editor fieldset").last.locator("textarea[name$='-new']").fill(ABRASIVE)
    submit(manager, manager.get_by_role("button", name="Save as version 3").click)
    assert notice(manager) == "Saved as version 3."
    cited = manager.locator(".sentence").first.locator("button.cite")
    expect(cited).to_have_text([last.removeprefix("ev-")])

    submit(manager, manager.get_by_role("button", name="Check this version").click)
    expect(manager.locator("mark.flag", has_text="abrasive")).to_be_visible()
    keep_every_flag(manager, "Two peers raised it; agreed with Cy as the behaviour to change.")
    submit(manager, manager.get_by_role("button", name="Approve").click)
    assert notice(manager) == "Approved."
    return manager


def calibrate(live: Live) -> None:
    panel = live.open_as("pat", f"/panels/{live.org.panel_id}")
    card = panel.locator("article.card", has_text="proposed 4")
    card.get_by_label("Calibrated rating").select_option("4")
    submit(panel, card.get_by_role("button", name=re.compile("^Set")).click)
    expect(panel.locator("p.notice")).to_be_visible()


def run_the_report(hr: Page) -> None:
    hr.goto(f"/hr?cycle={CYCLE}")
    submit(hr, hr.get_by_role("button", name=f"Run the bias report for {CYCLE}").click)
    submit(hr, hr.get_by_role("list", name="Report runs").get_by_role("link").first.click)
    expect(hr.get_by_role("link", name="Open the bias report")).to_be_visible(timeout=60_000)


def finalise(live: Live) -> None:
    """The panel finalises the rating it calibrated, now that the report has seen it."""
    panel = live.open_as("pat", f"/panels/{live.org.panel_id}")
    card = panel.locator("article.card", has_text="proposed 4")
    submit(panel, card.get_by_role("button", name=re.compile("^Finalise")).click)
    expect(panel.locator("article.card", has_text="proposed 4")).to_contain_text("final")


def close_and_release(hr: Page) -> None:
    hr.goto(f"/hr/cycles/{CYCLE}/dashboard")
    submit(hr, hr.get_by_role("button", name="Close calibration").click)
    expect(hr.locator("p.notice").first).to_contain_text("closed")
    submit(hr, hr.get_by_role("button", name="Release").click)
    expect(hr.locator("p.notice").first).to_contain_text("released")


def test_a_whole_cycle_from_set_up_to_sign_off(live: Live) -> None:
    hr = set_up_and_start(live)
    live.look(hr, "cycle-dashboard-started")

    employee = live.open_as("cy", "/tasks")
    approve_own_self_reflection(live, employee)
    nominate(employee)
    manager = live.open_as("bo", f"/team/{live.org.ids['cy']}/cycles/{CYCLE}/nominations")
    submit(manager, manager.get_by_role("button", name="Approve the list").click)
    expect(manager.locator("p.notice")).to_contain_text("3 peers asked")
    for who in PEERS:
        answer(live, who)

    write_feedback_again_and_approve(live)
    employee.goto(f"/me/reviews/{CYCLE}")  # approved, but not released: nothing of it shows
    expect(employee.get_by_text("Two peers raised it")).to_have_count(0)
    expect(employee.locator("body")).not_to_contain_text("Manager feedback")
    employee.goto(f"/drafts/{live.org.drafts['cy_feedback']}")
    expect(employee.get_by_role("heading", level=1)).not_to_contain_text("Manager feedback")

    calibrate(live)
    run_the_report(hr)
    finalise(live)
    close_and_release(hr)
    live.look(hr, "cycle-dashboard-released")

    employee.goto(f"/me/reviews/{CYCLE}")
    expect(employee.get_by_role("heading", name="Final rating")).to_be_visible()
    expect(employee.locator("body")).to_contain_text("abrasive")
    live.look(employee, "review")
    employee.get_by_label(re.compile("^Comment for your manager")).fill(
        "Thanks. I will share the plans earlier; <b>not</b> sure about the design review point."
    )
    submit(employee, employee.get_by_role("button", name="Acknowledge").click)
    expect(employee.locator(".comment")).to_contain_text("<b>not</b> sure")

    exported = hr.request.get(f"/hr/cycles/{CYCLE}/export.csv")
    assert exported.status == 200, exported.text()
    rows = list(csv.DictReader(io.StringIO(exported.text())))
    cy = next(r for r in rows if r.get("name") == "Cy Diaz")
    assert cy["final_rating"] == "4", cy
