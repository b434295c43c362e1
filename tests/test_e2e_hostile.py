"""Hostile input in the browser (issue 12): markup planted in every field a person can
write, then every page that shows it opened by the other roles in headless Chromium.

Planted (tests/fixtures/hostile/payloads.txt, each payload naming its field):
- people.csv: names (an employee and a manager), department, location, a level and job
  family (the panel's cohort) and demographic values (the HR report's group names);
- records.jsonl: record titles and bodies (a work record, peer feedback, a 1:1 note);
- drafts: an employee's edit of their self-reflection, typed into the page (the attack of
  the issue: the manager opens it), a manager's edit of feedback with its flags kept with
  hostile reasons, and managers' edits of calibration summaries;
- query parameters echoed on pages and error pages, and a `javascript:` sign-in `next`.

Every page visit must leave `window.__pwned` undefined (each payload sets it), raise no
dialog, report no CSP violation (inline script, handler or style that reached the page:
an escaping failure even where the CSP blocked it), hold no element, handler attribute or
script URL that came from the input, and print no evaluated template expression. Every
page response carries a Content-Security-Policy header without 'unsafe-inline' scripts.
The API docs render from our origin under that CSP.

Reuses tests/test_e2e.py's browser, server and sign-in (`live` serves this module's org).
"""

import asyncio
import csv
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Dialog, Page, Response, expect
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from domain.periods import parse_period
from service.access.links import issue_link
from service.access.tokens import issue_token
from service.bias.gate import acknowledge_flag, approve_draft, check_draft, open_flags
from service.bias.nlp import SenseParser
from service.bias.report import build_report
from service.calibration.panels import create_panel
from service.db.models import Person, PersonRole
from service.drafting.run import Drafting, draft_person, offline_drafter
from service.drafting.store import load_version, save_edit
from service.drafting.text_format import parse_text
from service.ingest.run import Ingestor, ingest_path
from service.settings import Settings
from tests import test_e2e
from tests.api_org import CYCLE, CYCLE_PERIOD, ApiOrg, write_org
from tests.test_e2e import Live, submit, text_editor
from tests.test_web_escaping import payloads

pytestmark = [pytest.mark.browser, pytest.mark.slow]

browser = test_e2e.browser
live = test_e2e.live

# Fields with a length limit (people.csv: level 32, job family / department / location 128)
# get one short payload each; the rest get every payload of the file on one line.
LEVEL = "L3\"><svg onload=__pwned='lvl'>"
FAMILY = "eng<img src=x onerror=\"window.__pwned='family'\">"
DEPARTMENT = "<script>window.__pwned='dept'</script>"
LOCATION = "'><svg onload=window.__pwned='loc'>"
EVALUATED = ("1337", "1351", "1379")
REQUEST_ID = re.compile(r"\b[0-9a-f]{16}\b")
PEOPLE = {  # employee id -> the key tests use
    "E001": "ana",
    "E002": "bo",
    "E003": "cy",
    "E004": "dee",
    "E005": "eve",
    "E006": "fay",
    "E007": "hal",
    "E008": "pat",
}
# After load: what in the page did not come from our templates.
INJECTED_JS = """() => {
  const found = [];
  const urls = ["href", "src", "action", "formaction", "srcdoc", "data", "xlink:href"];
  for (const el of document.querySelectorAll("*")) {
    const tag = el.localName;
    if (["iframe", "img", "object", "embed", "base", "style", "frame", "details"].includes(tag))
      found.push(`<${tag}>`);
    if (tag === "script" && el.getAttribute("src") !== "/static/app.js")
      found.push(`<script src=${el.getAttribute("src")}>`);
    for (const a of el.attributes) {
      if (/^on/i.test(a.name) || a.name === "style") found.push(`<${tag} ${a.name}>`);
      if (urls.includes(a.name) && /^\\s*(javascript|vbscript|data):/i.test(a.value))
        found.push(`<${tag} ${a.name}=${a.value}>`);
    }
  }
  return found;
}"""
VIOLATIONS = "() => window.__violations || []"
WATCH_JS = """document.addEventListener("securitypolicyviolation", (e) => {
  (window.__violations = window.__violations || []).push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sample || ""}`.trim());
});"""


def hostile(name: str) -> str:
    """Every payload of the file on one line, for a field without a length limit."""
    return " ".join(payloads(name))


# ---------------------------------------------------------------- planting


def write_hostile_org(folder: Path) -> Path:
    """tests/api_org.py's company, with markup in people.csv and in Cy's records."""
    write_org(folder)
    people = folder / "people.csv"
    with people.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["department"], row["location"] = DEPARTMENT, LOCATION
        if row["employee_id"] == "E003":
            row["name"] = f"Cy {hostile('name-cy')} Diaz"
            row["ethnicity"] = hostile("ethnicity")
        if row["employee_id"] == "E002":
            row["name"] = f"Bo {hostile('name-bo')} Chen"
        if row["employee_id"] == "E006":
            row["gender"] = hostile("gender")
        if row["employee_id"] in ("E003", "E006"):
            row["level"], row["job_family"] = LEVEL, FAMILY
    with people.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    records = [
        ("jira", "PAY-666", "work_record", None, hostile("record-title"), "record-body"),
        ("feedback360", "fb-666", "feedback", "E004", None, "feedback-body"),
        ("1on1", "1on1-666", "one_on_one", "E002", None, "one-on-one-body"),
    ]
    with (folder / "records.jsonl").open("a", encoding="utf-8") as handle:
        for source, external_id, kind, author, title, body in records:
            record = {
                "source": source,
                "external_id": external_id,
                "kind": kind,
                "subject": "E003",
                "author": author,
                "occurred_at": "2026-03-12T10:00:00+00:00",
                "title": title,
                "body": f"Shipped the settlement report on time. {hostile(body)}",
            }
            handle.write(json.dumps({k: v for k, v in record.items() if v is not None}) + "\n")
    return folder


def hostile_edit(engine: Engine, draft_id: int, author: str, name: str, extra: str = "") -> None:
    """A new version of the draft with a hostile heading and sentences."""
    with engine.begin() as conn:
        current = load_version(conn, draft_id)
        text = (
            f"{current.body.as_text()}\n\n## {hostile(name + '-heading')}\n"
            f"- {hostile(name)}\n- Works well with the team. {hostile(name + '-2')}\n{extra}"
        )
        save_edit(
            conn,
            draft_id=draft_id,
            based_on=current.version,
            body=parse_text(text),
            author=author,
        )


def keep_and_approve(engine: Engine, draft_id: int, by: str, parser: SenseParser) -> None:
    """Check the draft, keep every flag with a hostile reason, approve it."""
    with engine.begin() as conn:
        check_draft(conn, draft_id, actor=by, parser=parser)
        for flag in open_flags(conn, draft_id):
            acknowledge_flag(conn, draft_id, flag["key"], by=by, reason=hostile("reason"))
        approve_draft(conn, draft_id, by=by)


def build_hostile_org(
    engine: Engine, settings: Settings, ingestor: Ingestor, folder: Path, parser: SenseParser
) -> ApiOrg:
    ingest_path(ingestor, write_hostile_org(folder))
    with engine.begin() as conn:
        rows = conn.execute(select(Person.id, Person.employee_id, Person.email)).all()
        ids = {PEOPLE[r.employee_id]: r.id for r in rows}
        emails = {PEOPLE[r.employee_id]: r.email for r in rows}
        tokens = {
            who: issue_token(conn, pid, days=30, label="test", actor="test").token
            for who, pid in ids.items()
        }
        conn.execute(
            insert(PersonRole).values(person_id=ids["hal"], role="hr_admin", granted_by="test")
        )
        panel_id = create_panel(conn, CYCLE_PERIOD, LEVEL, FAMILY, [ids["pat"]], actor="test")
    org = ApiOrg(ids, tokens, panel_id=panel_id)
    run = Drafting(engine, settings, ingestor.embedder(), offline_drafter(), "test")
    for who, kind, key in (
        ("cy", "self_reflection", "cy_self"),
        ("cy", "manager_feedback", "cy_feedback"),
        ("cy", "calibration_summary", "cy_summary"),
        ("fay", "calibration_summary", "fay_summary"),
    ):
        with Session(engine) as session:
            person = session.get_one(Person, ids[who])
        outcome = asyncio.run(draft_person(run, person, kind, CYCLE_PERIOD))
        assert outcome.draft_id is not None, outcome.message
        org.drafts[key] = outcome.draft_id
    abrasive = "- Cy can be abrasive when a design review runs long."
    hostile_edit(engine, org.drafts["cy_feedback"], emails["bo"], "feedback-edit", abrasive)
    keep_and_approve(engine, org.drafts["cy_feedback"], emails["bo"], parser)
    hostile_edit(engine, org.drafts["cy_summary"], emails["bo"], "summary-edit")
    hostile_edit(engine, org.drafts["fay_summary"], emails["eve"], "summary-edit-fay")
    with engine.begin() as conn:
        build_report(conn, parse_period(CYCLE), actor="test", parser=parser)
    return org


@pytest.fixture
def api_org(
    engine: Engine,
    settings: Settings,
    ingestor: Ingestor,
    tmp_path: Path,
    sense_parser: SenseParser,
) -> ApiOrg:
    """Built in a thread of its own: drafting runs an event loop, and Playwright's sync API
    already runs one in this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(
            build_hostile_org, engine, settings, ingestor, tmp_path / "hostile-org", sense_parser
        ).result()


# ---------------------------------------------------------------- watching


@dataclass
class Watched:
    """One person's browser, with everything a page did that it should not."""

    page: Page
    who: str
    ran: list[str] = field(default_factory=list)  # scripts that ran, dialogs, injections
    no_csp: list[str] = field(default_factory=list)  # page responses without a good CSP
    shown: int = 0  # pages on which the planted text was shown (escaped)

    def dialog(self, dialog: Dialog) -> None:
        self.ran.append(f"{self.who} {self.page.url}: {dialog.type}({dialog.message!r})")
        dialog.dismiss()

    def response(self, response: Response) -> None:
        if response.request.resource_type != "document":
            return
        policy = response.headers.get("content-security-policy", "")
        script = re.search(r"script-src([^;]*)", policy)
        if not policy or (script and "'unsafe-inline'" in script.group(1)):
            self.no_csp.append(f"{response.status} {response.url}: {policy or 'no CSP'}")

    def visit(self, path: str, *, shows: bool = True) -> None:
        response = self.page.goto(path)
        assert response is not None and response.status < 500, (self.who, path)
        self.inspect(path, shows=shows)

    def inspect(self, path: str, *, shows: bool = True) -> None:
        """What the page now on screen did: wait for its images to fail and its handlers
        to have had their chance first."""
        page = self.page
        page.wait_for_load_state("load")
        page.wait_for_timeout(150)
        where = f"{self.who} {path}"
        pwned = page.evaluate("() => window.__pwned")
        if pwned is not None:
            self.ran.append(f"{where}: window.__pwned = {pwned!r}")
        self.ran += [f"{where}: CSP violation {v}" for v in page.evaluate(VIOLATIONS)]
        self.ran += [f"{where}: {found}" for found in page.evaluate(INJECTED_JS)]
        text = page.content()
        # request ids are random hex and may hold "1379" by chance: not an evaluation
        plain = REQUEST_ID.sub("", text)
        self.ran += [f"{where}: evaluated {n}" for n in EVALUATED if n in plain]
        if shows:
            assert "__pwned" in text, f"{where}: the planted text is not on the page"
            self.shown += 1


def watch(live: Live, who: str | None, start: str = "/") -> Watched:
    """A browser of `who`'s own, signed in (None: signed out) and watched from here on."""
    page = live.open_as(who, start)
    page.context.add_init_script(WATCH_JS)
    watched = Watched(page, who or "signed-out")
    page.on("dialog", watched.dialog)
    page.on("response", watched.response)
    return watched


# ---------------------------------------------------------------- the suite


def test_no_planted_markup_runs_on_any_page_for_any_role(live: Live) -> None:
    org = live.org
    cy, drafts, panel = org.ids["cy"], org.drafts, org.panel_id
    everyone: list[Watched] = []

    # The employee plants markup in their self-reflection through the page itself.
    employee = watch(live, "cy")
    everyone.append(employee)
    employee.visit(f"/drafts/{drafts['cy_self']}")
    text = text_editor(employee.page)
    planted = f"{text.input_value().rstrip()}\n- {hostile('self-edit')}\n"
    text.fill(planted)
    submit(
        employee.page, employee.page.get_by_role("button", name="Save the text as version 2").click
    )
    expect(employee.page.locator("p.notice")).to_have_text("Saved as version 2.")
    employee.inspect("after saving the edit")
    shown = text_editor(employee.page).input_value()
    if hostile("self-edit") not in shown:  # the text broke out of the textarea
        employee.ran.append("cy's edit did not come back into the textarea as typed")
    for path in ("/me", f"/drafts/{drafts['cy_feedback']}", f"/drafts/{drafts['cy_self']}"):
        employee.visit(path)

    visits = {
        "bo": [
            "/team",
            f"/team/{cy}/rating",
            f"/drafts/{drafts['cy_self']}",
            f"/drafts/{drafts['cy_self']}/history",
            f"/drafts/{drafts['cy_feedback']}",
            f"/drafts/{drafts['cy_feedback']}/history",
            f"/drafts/{drafts['cy_summary']}",
        ],
        "ana": [
            "/team",
            f"/team/{cy}/rating",
            f"/drafts/{drafts['cy_feedback']}",
            f"/drafts/{drafts['cy_summary']}/history",
        ],
        "pat": ["/panels", f"/panels/{panel}"],
        "hal": [
            "/hr",
            "/panels",
            f"/panels/{panel}",
            f"/drafts/{drafts['cy_feedback']}",
            f"/drafts/{drafts['cy_self']}/history",
        ],
    }
    for who, paths in visits.items():
        viewer = watch(live, who)
        everyone.append(viewer)
        for path in paths:
            viewer.visit(path)

    # Query parameters, each payload on its own, on the pages that echo them.
    echoes: dict[str | None, list[str]] = {
        "cy": ["/me?period={}", "/jobs/{}", "/{}"],
        "bo": [
            "/team?period={}",
            f"/team/{cy}/rating?period={{}}",
            f"/drafts/{drafts['cy_self']}/history?before={{}}&after={{}}",
        ],
        "hal": ["/hr?cycle={}", "/panels/{}"],
        None: ["/sign-in?next={}", "/sign-in?next=/{}"],
    }
    for asker, templates in echoes.items():
        viewer = watch(live, asker, "/sign-in" if asker is None else "/")
        everyone.append(viewer)
        for template in templates:
            for payload in payloads(f"query-{asker}"):
                viewer.visit(template.replace("{}", quote(payload, safe="")), shows=False)

    # A `javascript:` next after signing in leads to our own start page, nothing else.
    signing = watch(live, None, "/sign-in")
    everyone.append(signing)
    signing.page.goto("/sign-in?next=" + quote("javascript:window.__pwned='next'", safe=""))
    signing.page.get_by_label("Your access token").fill(org.tokens["dee"])
    submit(signing.page, signing.page.get_by_role("button", name="Sign in").click)
    assert signing.page.url.startswith(live.url + "/"), signing.page.url
    signing.inspect("after signing in with a javascript: next", shows=False)

    ran = list(dict.fromkeys(line for w in everyone for line in w.ran))
    assert not ran, "planted markup ran or reached a page:\n" + "\n".join(
        ran[:60] + [f"... and {len(ran) - 60} more"] * (len(ran) > 60)
    )
    assert sum(w.shown for w in everyone) >= 20
    missing = [line for w in everyone for line in w.no_csp]
    assert not missing, "page responses without a strict CSP:\n" + "\n".join(missing[:20])


def test_the_api_docs_render_from_our_origin_under_the_csp(live: Live) -> None:
    """Swagger UI from the installed package, started by a static script: the schema's
    operations show, nothing is fetched from elsewhere and the CSP refuses nothing."""
    docs = watch(live, None, "/sign-in")
    requested: list[str] = []
    docs.page.on("request", lambda request: requested.append(request.url))
    docs.page.goto("/docs")
    expect(docs.page.locator(".opblock").first).to_be_visible(timeout=20_000)
    violations = docs.page.evaluate(VIOLATIONS)
    assert not violations, f"the docs page breaks the CSP: {violations}"
    foreign = [url for url in requested if not url.startswith(live.url)]
    assert not foreign, f"the docs page loads from elsewhere: {foreign}"
    assert not docs.no_csp, docs.no_csp


def test_a_sign_in_link_for_a_hostile_name_runs_nothing_before_or_after_it_is_used(
    live: Live,
) -> None:
    """A one-time link's page (issue 15) names whose link it is, from people.csv: Cy's,
    markup and all, opened signed out, used with its button to land on /me; another
    opened by Bo (whose name is planted too) while signed in; the first opened again,
    used up. Nothing planted runs, on any of them."""
    with live.engine.begin() as conn:
        secrets = [issue_link(conn, live.org.ids["cy"], actor="test").secret for _ in range(2)]
    signed_out = watch(live, None, "/sign-in")
    signed_out.visit(f"/sign-in/link/{secrets[0]}")
    button = signed_out.page.get_by_role("button", name=re.compile("^Sign in as Cy"))
    submit(signed_out.page, button.click)
    expect(signed_out.page).to_have_url(re.compile(r"/me$"))
    signed_out.inspect("/me after the link")
    signed_in = watch(live, "bo")
    signed_in.visit(f"/sign-in/link/{secrets[1]}")
    expect(signed_in.page.locator("form p").first).to_contain_text("You are signed in as Bo")
    used = watch(live, None, "/sign-in")
    used.visit(f"/sign-in/link/{secrets[0]}", shows=False)
    expect(used.page.get_by_role("alert")).to_contain_text("already used")

    watched = (signed_out, signed_in, used)
    ran = [line for w in watched for line in w.ran]
    assert not ran, "planted markup ran or reached a link's page:\n" + "\n".join(ran[:40])
    assert not [line for w in watched for line in w.no_csp]
