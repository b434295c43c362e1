"""The authorization matrix: every endpoint x every role x own / someone else's / another
team's / a non-existent thing, with the exact status, and what each answer may carry.

The rules under test are the ones written down in service.access.principal,
service.access.scope, service.http.errors and the routers' docstrings:

- a thing the caller may not know exists answers 404, exactly as a thing that does not
  exist (same reason, so ids cannot be probed); a thing they see but may not do this to,
  or an endpoint their role lacks, answers 403; both are logged as "refused";
- people, records, evidence and drafts: one's own, one's reports' (indirect by default),
  HR all; a calibration panel member sees the cohort, pseudonymised, and nobody's records;
- a draft's versions and audit trail are for those who may write it, and HR: the subject
  of an approved manager's draft reads it, not its history (403); peer feedback shown to
  its own subject has no author;
- a panel's member, and HR, write only for the panel's cohort, and the answer names the
  person by the label that was sent, with no person or rater id;
- demographic data reaches only `GET /people/{id}/demographics` and the HR bias report:
  no other response and no log line ever carries it, nor evidence text.

The matrix test runs the table in order (reads first, then writes ordered so that each
write's effect is what later rows expect); the lifecycle test covers the rows whose answer
depends on an earlier step (approval makes a manager's draft visible to its subject, a
final rating becomes visible to its person, a bias report exists). A new endpoint without
rows in the table fails `test_the_matrix_covers_every_declared_endpoint`.

Where the code answers differently from the rules, the row keeps the rule and the
difference is listed in KNOWN_BUGS with what the code answers now; the test fails both on
a new difference and on a listed one that is gone (then delete its entry).
"""

import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, update

from domain.periods import parse_period
from service.access.links import issue_link
from service.app import create_app
from service.calibration.panels import create_panel, panel
from service.calibration.pseudonyms import person_for_label, pseudonyms
from service.connectors.identities import resolve
from service.connectors.model import Identity
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.db.models import FeedbackRequest, Rating
from service.drafting.store import DraftNotFound, load_version
from service.http.logs import JsonFormatter
from service.jobs.queue import enqueue
from service.jobs.worker import Worker
from service.settings import Settings
from tests.api_org import CYCLE, CYCLE_PERIOD, ApiOrg
from tests.cycle_org import setup_body

Response = Any  # what TestClient answers: an httpx (or, per Starlette, httpx2) Response
API = "/api/v1"
MISSING_ID = 987654
PEOPLE = ("ana", "bo", "cy", "dee", "eve", "fay", "hal", "pat")
CALLERS = ("cy", "dee", "bo", "eve", "ana", "pat", "hal")  # the matrix rows, every role
NO_TOKEN, BAD_TOKEN = "anon", "forged"

# Whose people-scoped data (person, records, evidence, drafts) each caller may read, and
# the managers above them (who may show up as an author or actor on their things).
SCOPE = {
    "cy": {"cy"},
    "dee": {"dee"},
    "fay": {"fay"},
    "bo": {"bo", "cy", "dee"},
    "eve": {"eve", "fay"},
    "ana": set(PEOPLE),  # top manager: everyone is below her (indirect scope, the default)
    "pat": {"pat"},
    "hal": set(PEOPLE),  # HR admin
    NO_TOKEN: set(),
    BAD_TOKEN: set(),
}
ABOVE = {"cy": {"bo", "ana"}, "dee": {"bo", "ana"}, "fay": {"eve", "ana"}, "bo": {"ana"}}
ABOVE["eve"] = {"ana"}
for _who in ("hal", "pat"):
    ABOVE[_who] = {"ana"}

NAMES = {
    "ana": "Ana Lima",
    "bo": "Bo Chen",
    "cy": "Cy Diaz",
    "dee": "Dee Okafor",
    "eve": "Eve Novak",
    "fay": "Fay Moreau",
    "hal": "Hal Berg",
    "pat": "Pat Singh",
}
EMAILS = {who: name.lower().replace(" ", ".") + "@example.com" for who, name in NAMES.items()}
# Phrases of each person's own records (tests/fixtures/org/records.jsonl, api_org's Fay).
EVIDENCE = {
    "cy": ("double-entry", "settlement alerts", "guild talk"),
    "dee": ("payout export", "payout failures"),
    "bo": ("Hiring loop",),
    "fay": ("refund backlog",),
}
ALL_EVIDENCE = tuple(p for phrases in EVIDENCE.values() for p in phrases)
# The authors the fixture gives records (by employee id), by subject and kind: Dee's peer
# feedback on Cy, Bo's 1:1 notes with Cy, Cy's recognition of Dee; the rest have none.
AUTHORS = {("cy", "feedback"): "E004", ("cy", "one_on_one"): "E002", ("dee", "recognition"): "E003"}
# The fixture people's demographic values (people.csv, api_org.EXTRA_PEOPLE).
DEMOGRAPHICS = {
    "ana": {"gender": "woman", "ethnicity": "hispanic_latino", "age_band": "40_49"},
    "bo": {"gender": "man", "ethnicity": "asian", "age_band": "30_39"},
    "cy": {"gender": "nonbinary", "ethnicity": "white", "age_band": "under_30"},
    "dee": {"gender": "woman", "ethnicity": "black", "age_band": "30_39"},
    "eve": {"gender": "woman", "ethnicity": "white", "age_band": "30_39"},
    "fay": {"gender": "woman", "ethnicity": "white", "age_band": "30_39"},
    "hal": {"gender": "man", "ethnicity": "white", "age_band": "30_39"},
    "pat": {"gender": "man", "ethnicity": "white", "age_band": "30_39"},
}
DEMOGRAPHIC_WORDS = sorted(
    {v for d in DEMOGRAPHICS.values() for v in d.values()} | {"gender", "ethnicity", "age_band"}
)
# In a JSON body: an exact string value or key ('"white"'), so "white paper" in text is no
# hit; in a log line: the word itself.
DEMOGRAPHIC_JSON = [json.dumps(word) for word in DEMOGRAPHIC_WORDS]
DEMOGRAPHIC_LOG = re.compile(r"\b(" + "|".join(map(re.escape, DEMOGRAPHIC_WORDS)) + r")\b")
NAME_WORDS = re.compile(
    r"\b(" + "|".join(sorted({w for n in NAMES.values() for w in n.split()})) + r")\b"
)
EMPLOYEE_ID = re.compile(r"\bE0\d\d\b")
LABEL = re.compile(r"P-[0-9a-f]{6,}")

# Route templates, as the app declares them.
ME = f"{API}/me"
PEOPLE_LIST = f"{API}/people"
PERSON = f"{API}/people/{{person_id}}"
RECORDS = f"{API}/people/{{person_id}}/records"
EVIDENCE_PACK = f"{API}/people/{{person_id}}/evidence"
DEMOGRAPHICS_ROUTE = f"{API}/people/{{person_id}}/demographics"
PERSON_DRAFTS = f"{API}/people/{{person_id}}/drafts"
DRAFT = f"{API}/drafts/{{draft_id}}"
VERSIONS = f"{API}/drafts/{{draft_id}}/versions"
VERSION = f"{API}/drafts/{{draft_id}}/versions/{{version}}"
CHECK = f"{API}/drafts/{{draft_id}}/check"
REGENERATE = f"{API}/drafts/{{draft_id}}/regenerate"
ACKNOWLEDGE = f"{API}/drafts/{{draft_id}}/flags/{{flag}}/acknowledge"
REWRITE = f"{API}/drafts/{{draft_id}}/flags/{{flag}}/rewrite"
APPLY_REWRITE = f"{API}/drafts/{{draft_id}}/flags/{{flag}}/apply"
APPROVE = f"{API}/drafts/{{draft_id}}/approve"
DRAFT_AUDIT = f"{API}/drafts/{{draft_id}}/audit"
JOB = f"{API}/jobs/{{job_id}}"
RATINGS = f"{API}/cycles/{{cycle}}/ratings"
RATING = f"{API}/cycles/{{cycle}}/ratings/{{person_id}}"
RATING_FINALISE = f"{API}/cycles/{{cycle}}/ratings/{{person_id}}/finalise"
PANELS = f"{API}/panels"
PANEL = f"{API}/panels/{{panel_id}}"
PANEL_SUMMARIES = f"{API}/panels/{{panel_id}}/summaries"
PLACEMENT = f"{API}/panels/{{panel_id}}/people/{{label}}/placement"
CALIBRATED = f"{API}/panels/{{panel_id}}/people/{{label}}/calibrated-rating"
PANEL_FINALISE = f"{API}/panels/{{panel_id}}/people/{{label}}/finalise"
CYCLE_DRAFTS = f"{API}/cycles/{{cycle}}/drafts"
BIAS_REPORT = f"{API}/cycles/{{cycle}}/bias-report"
BIAS_PROBE = f"{API}/cycles/{{cycle}}/bias-probe"
AUDIT = f"{API}/audit"
INGEST = f"{API}/ingest"
CYCLES = f"{API}/cycles"
CYCLE_SETUP = f"{API}/cycles/{{cycle}}/setup"
CYCLE_START = f"{API}/cycles/{{cycle}}/start"
CYCLE_COPY = f"{API}/cycles/{{cycle}}/copy"
MY_TASKS = f"{API}/me/tasks"
MY_REMINDERS = f"{API}/me/reminders"
NOMINATIONS = f"{API}/cycles/{{cycle}}/nominations"
NOMINATIONS_APPROVE = f"{API}/cycles/{{cycle}}/nominations/approve"
MY_REQUESTS = f"{API}/me/feedback-requests"
FEEDBACK_REQUEST = f"{API}/feedback-requests/{{request_id}}"
FEEDBACK_DECLINE = f"{API}/feedback-requests/{{request_id}}/decline"
PEER_FEEDBACK = f"{API}/people/{{person_id}}/peer-feedback"
CYCLE_DASHBOARD = f"{API}/cycles/{{cycle}}/dashboard"
CYCLE_DASHBOARD_CSV = f"{API}/cycles/{{cycle}}/dashboard.csv"
CLOSE_PHASE = f"{API}/cycles/{{cycle}}/phases/{{phase}}/close"
RELEASE = f"{API}/cycles/{{cycle}}/release"
MY_REVIEW = f"{API}/me/reviews/{{cycle}}"
MY_REVIEW_ACK = f"{API}/me/reviews/{{cycle}}/acknowledge"
PERSON_REVIEW = f"{API}/people/{{person_id}}/reviews/{{cycle}}"
EXPORT_JSON = f"{API}/cycles/{{cycle}}/export.json"
EXPORT_CSV = f"{API}/cycles/{{cycle}}/export.csv"
PROMOTIONS = f"{API}/cycles/{{cycle}}/promotions"
PROMOTION = f"{API}/cycles/{{cycle}}/promotions/{{person_id}}"
CONNECTORS = f"{API}/connectors"
CONNECTOR_RUNS = f"{API}/connectors/runs"
CONNECTOR_SYNC = f"{API}/connectors/{{name}}/sync"
IDENTITIES = f"{API}/connectors/identities"
IDENTITY = f"{API}/connectors/identities/{{system}}/{{external_id:path}}"
CONNECTOR_RESUME = f"{API}/connectors/{{name}}/resume"
SOURCE_PURGE = f"{API}/connectors/sources/{{source}}/records"
MY_SOURCES = f"{API}/me/sources"
MY_SOURCE = f"{API}/me/sources/{{source}}"
NEXT_CYCLE = "2026-H2"  # set up, started and copied by the matrix's HR rows

SMALL_PEOPLE_CSV = (
    b"employee_id,name,email,manager_id,level,job_family,department,location,hire_date\n"
    b"E007,Hal Berg,hal.berg@example.com,E001,L6,people,Payments,Remote,2022-01-10\n"
)


# --- the world the table's target names refer to ------------------------------------------


@dataclass
class World:
    """Target names -> path values: people by first name; drafts (cy_self, cy_feedback,
    fay_self); panels (p1: Pat's L3 engineering panel, cohort Cy and Fay; p2: Eve's L4
    engineering panel, cohort Dee); pseudonyms (@cy, @fay on p1, @dee on p2, @nobody fits
    no one); jobs by requester (cy_job, fay_job, hal_job); "missing", an id of nothing."""

    engine: Engine
    org: ApiOrg
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        value = self.values[name]
        return value(self) if callable(value) else value  # known only after a step

    def id_of(self, who: str) -> int:
        return self.org.ids[who]

    def scope_ids(self, caller: str) -> set[int]:
        return {self.org.ids[p] for p in SCOPE[caller]}

    def headers(self, caller: str) -> dict[str, str]:
        if caller == NO_TOKEN:
            return {}
        if caller == BAD_TOKEN:
            return {"Authorization": "Bearer fd_not_a_token"}
        return self.org.auth(caller)

    def current(self, draft_id: int) -> tuple[int, str]:
        """The draft's current version and text (a harmless stand-in for a missing one)."""
        with self.engine.connect() as conn:
            try:
                stored = load_version(conn, draft_id)
            except DraftNotFound:
                return 1, "## Results\n- Shipped the ledger move. [E1]\n"
        return stored.version, stored.body.as_text()


def build_world(engine: Engine, org: ApiOrg) -> World:
    world = World(engine, org)
    values = world.values
    values.update(org.ids)
    values.update(org.drafts)
    values["missing"] = MISSING_ID
    # Connectors: names of sources, and one GitHub login no employee is matched to yet.
    values.update(github="github", slack="slack", octo="octo/cy")  # an id may hold a "/"
    with engine.begin() as conn:
        resolve(conn, [Identity("github", "octo/cy", "Octo <b>Cy</b>")])
        panel2 = create_panel(
            conn, parse_period(CYCLE), "L4", "engineering", [org.ids["eve"]], actor="test"
        )
        for who in ("cy", "fay", "hal"):
            values[f"{who}_job"] = enqueue(
                conn,
                "draft",
                {"person_id": org.ids[who], "kind": "self_reflection", "period": CYCLE},
                requested_by=org.ids[who],
                max_attempts=1,
                actor="test",
            )
        first, second = panel(conn, org.panel_id), panel(conn, panel2)
        assert first is not None and second is not None
        one = pseudonyms(first, [org.ids["cy"], org.ids["fay"]])
        two = pseudonyms(second, [org.ids["dee"]])
        nobody = "P-000000"
        assert person_for_label(conn, org.panel_id, nobody) is None
        assert person_for_label(conn, panel2, nobody) is None
    values.update(p1=org.panel_id, p2=panel2)
    values.update(dee_request=_request_of("dee"), hal_request=_request_of("hal"))
    values.update(
        {
            "@cy": one[org.ids["cy"]],
            "@fay": one[org.ids["fay"]],
            "@dee": two[org.ids["dee"]],
            "@nobody": nobody,
        }
    )
    return world


def _request_of(peer: str) -> Callable[[World], int]:
    """The id of the feedback request about Cy asked of `peer` in 2026-H2 (sent when Bo
    approves Cy's peer list, a row of the matrix)."""

    def find(world: World) -> int:
        with world.engine.connect() as conn:
            found = conn.execute(
                select(FeedbackRequest.id).where(
                    FeedbackRequest.subject_id == world.id_of("cy"),
                    FeedbackRequest.peer_id == world.id_of(peer),
                )
            ).scalar_one_or_none()
        return MISSING_ID - 1 if found is None else int(found)

    return find


# --- the table --------------------------------------------------------------------------

Body = dict[str, Any] | Callable[[World, "Case"], dict[str, Any]] | None


@dataclass(frozen=True)
class Case:
    method: str
    route: str
    caller: str
    target: str  # "/"-joined target names for the route's free parameters; "-" for none
    status: int
    variant: str = ""
    fixed: tuple[tuple[str, Any], ...] = ()  # parameters with one value (cycle, version)
    body: Body = None
    query: tuple[tuple[str, str], ...] = ()
    upload: bool = False
    may_name: tuple[str, ...] = ()  # people this answer may name beyond the usual

    @property
    def name(self) -> str:
        variant = f" [{self.variant}]" if self.variant else ""
        return f"{self.method} {self.route}{variant} {self.caller}->{self.target}"

    @property
    def probe(self) -> bool:
        """A row about a thing that does not exist: its 404 is the one every out-of-scope
        404 of the same row group must look like."""
        return "missing" in self.target or "nobody" in self.target or "missing" in self.variant

    def path(self, world: World) -> str:
        params = dict(self.fixed)
        route = re.sub(r"{(\w+):path}", r"{\1}", self.route)  # a parameter that may hold "/"
        free = [p for p in re.findall(r"{(\w+)}", route) if p not in params]
        names = [] if self.target == "-" else self.target.split("/")
        assert len(free) == len(names), self.name
        params.update({p: world[n] for p, n in zip(free, names, strict=True)})
        return route.format(**params)


def grid(
    method: str,
    route: str,
    table: str,
    *,
    variant: str = "",
    fixed: dict[str, Any] | None = None,
    body: Body = None,
    query: dict[str, str] | None = None,
    upload: bool = False,
) -> list[Case]:
    """Rows of a table: a header of targets, then one line per caller (every role, in
    CALLERS' order) with the status for each target. Every target also gets a no-token row
    (401), and the first target a row with a token nobody issued (401)."""
    lines = [line.split() for line in table.strip().splitlines()]
    targets, rows = lines[0], lines[1:]
    assert [r[0] for r in rows] == list(CALLERS), f"{route}: rows must be {CALLERS}"

    def case(caller: str, target: str, status: int) -> Case:
        return Case(
            method,
            route,
            caller,
            target,
            status,
            variant=variant,
            fixed=tuple((fixed or {}).items()),
            body=body,
            query=tuple((query or {}).items()),
            upload=upload,
        )

    cases = [case(NO_TOKEN, t, 401) for t in targets] + [case(BAD_TOKEN, targets[0], 401)]
    for caller, *statuses in rows:
        assert len(statuses) == len(targets), f"{route}: {caller} row"
        cases += [case(caller, t, int(s)) for t, s in zip(targets, statuses, strict=True)]
    return cases


def edit_body(world: World, case: Case) -> dict[str, Any]:
    """An edit based on the current version: valid, so only scope decides the status."""
    version, text = world.current(world[case.target])
    return {"based_on": version, "text": text.rstrip() + "\n- Also ran the rollback drill. [E1]\n"}


def new_panel(world: World, case: Case) -> dict[str, Any]:
    return {"cycle": CYCLE, "level": "L6", "job_family": "engineering", "members": [world["pat"]]}


def new_cycle(world: World, case: Case) -> dict[str, Any]:
    """A valid set-up of 2026-H2 for everyone (all were hired long before the cut-off)."""
    dates = {
        "self_reflection": ("2027-01-04", "2027-01-15"),
        "peer_feedback": ("2027-01-11", "2027-01-22"),
        "manager_review": ("2027-01-18", "2027-01-29"),
        "calibration": ("2027-02-01", "2027-02-12"),
        "release": ("2027-02-15", "2027-02-17"),
        "sign_off": ("2027-02-17", "2027-02-26"),
    }
    return {
        "period": NEXT_CYCLE,
        "title": "2026 H2 review",
        "time_zone": "Europe/Lisbon",
        "participants": {"cutoff": "2026-12-31"},
        "reviews": [
            "self_reflection",
            "peer_feedback",
            "manager_feedback",
            "promotion_packet",  # nominated people only: no task at the start
            "calibration",
        ],
        "scale": {"min": 1, "max": 3, "labels": ["Below", "Meets", "Above"]},
        "phases": {phase: {"opens": o, "due": d} for phase, (o, d) in dates.items()},
    }


PEER_POOL = ("dee", "fay", "hal", "pat", "eve", "cy")  # who may be nominated, in order


def own_peers(world: World, case: Case) -> dict[str, Any]:
    """A valid list for the caller's own review: three of PEER_POOL, not them, not their
    manager."""
    above = {m for m, reports in DIRECT_REPORTS.items() if case.caller in reports}
    pool = [p for p in PEER_POOL if p != case.caller and p not in above]
    return {"peers": [world.id_of(p) for p in pool[:3]]}


def cys_peers(world: World, case: Case) -> dict[str, Any]:
    return {"subject_id": world.id_of("cy"), "peers": [world.id_of(p) for p in PEER_POOL[:3]]}


def naming(cases: list[Case], *people: str) -> list[Case]:
    """The rows, with these people allowed in their answers (a peer list names its peers;
    a request asked of a peer names its subject)."""
    return [replace(c, may_name=people) for c in cases]


PERSON_READ = """
         cy   dee  fay  bo   missing
  cy     200  404  404  404  404
  dee    404  200  404  404  404
  bo     200  200  404  200  404
  eve    404  404  200  404  404
  ana    200  200  200  200  404
  pat    404  404  404  404  404
  hal    200  200  200  200  404
"""
DRAFT_READ = """
         cy_self  cy_feedback  fay_self  missing
  cy     200      404          404       404
  dee    404      404          404       404
  bo     200      200          404       404
  eve    404      404          200       404
  ana    200      200          200       404
  pat    404      404          404       404
  hal    200      200          200       404
"""
HR_ONLY = """
         -
  cy     403
  dee    403
  bo     403
  eve    403
  ana    403
  pat    403
  hal    {hal}
"""
# Two targets, the first a real one, the second none at all ({hal}: both statuses).
HR_ONLY_2 = """
         {first}  missing
  cy     403      403
  dee    403      403
  bo     403      403
  eve    403      403
  ana    403      403
  pat    403      403
  hal    {hal}
"""
OWN_SOURCE = """
         slack  missing
  cy     200    404
  dee    200    404
  bo     200    404
  eve    200    404
  ana    200    404
  pat    200    404
  hal    200    404
"""
# A person's own peer list: everyone has one but Ana, who has no manager to approve it.
OWN_LIST = """
         -
  cy     200
  dee    200
  bo     200
  eve    200
  ana    404
  pat    200
  hal    200
"""
# Cy's list: Cy's own, and her managers' (Bo; Ana above him); HR sees Cy but may not.
CYS_LIST = """
         -
  cy     200
  dee    404
  bo     200
  eve    404
  ana    200
  pat    404
  hal    403
"""
# A feedback request is its peer's alone: Dee's and Hal's about Cy.
PEER_ONLY = """
         dee_request  hal_request  missing
  cy     404          404          404
  dee    200          404          404
  bo     404          404          404
  eve    404          404          404
  ana    404          404          404
  pat    404          404          404
  hal    404          200          404
"""
# One request (Dee's: she submits it; Hal's: he declines it) and a missing one.
ONE_PEER = """
         {target}  missing
  cy     404       404
  dee    {dee}     404
  bo     404       404
  eve    404       404
  ana    404       404
  pat    404       404
  hal    {hal}     404
"""
# A review of a set-up cycle before its release: nobody's own (not even HR's), their
# managers' and HR's.
REVIEW_READ = """
         cy   dee  fay  bo   missing
  cy     404  404  404  404  404
  dee    404  404  404  404  404
  bo     200  200  404  404  404
  eve    404  404  200  404  404
  ana    200  200  200  200  404
  pat    404  404  404  404  404
  hal    200  200  200  200  404
"""
# A write for a manager of the person (direct or above): HR and the person see them (403).
MANAGER_OF = """
         cy   dee  fay  bo   missing
  cy     403  404  404  404  404
  dee    404  403  404  404  404
  bo     200  200  404  403  404
  eve    404  404  200  404  404
  ana    200  200  200  200  404
  pat    404  404  404  404  404
  hal    403  403  403  403  404
"""
MANAGERS_AND_HR = """
         -
  cy     403
  dee    403
  bo     200
  eve    200
  ana    200
  pat    403
  hal    200
"""
NOBODY_YET = """
         -
  cy     404
  dee    404
  bo     404
  eve    404
  ana    404
  pat    404
  hal    404
"""
EVERYONE = """
         -
  cy     200
  dee    200
  bo     200
  eve    200
  ana    200
  pat    200
  hal    200
"""
# A panel write: {ok} where the caller sits on the panel (or is HR) and the label names a
# person of its cohort; a label of another panel, or of nobody, is 404 like a missing panel.
# Labels: @cy and @fay on p1, @dee on p2, @nobody fits nobody anywhere.
PANEL_WRITE = """
         p1/@cy  p1/@fay  p1/@dee  p1/@nobody  p2/@dee  p2/@cy  p2/@nobody  missing/@cy
  cy     404     404      404      404         404      404     404         404
  dee    404     404      404      404         404      404     404         404
  bo     404     404      404      404         404      404     404         404
  eve    404     404      404      404         {ok}     404     404         404
  ana    404     404      404      404         404      404     404         404
  pat    {ok}    {ok}     404      404         404      404     404         404
  hal    {ok}    {ok}     404      404         {ok}     404     404         404
"""


def matrix() -> list[Case]:
    """The whole table, in the order it runs: reads, then writes, each write placed so
    that what it changes is what the rows after it expect."""
    cycle = {"cycle": CYCLE}
    next_cycle = {"cycle": NEXT_CYCLE}
    kind = {"kind": "self_reflection", "period": CYCLE}
    return [
        # --- who am I, whom may I see ---------------------------------------------------
        *grid("GET", ME, EVERYONE),
        *grid("GET", MY_TASKS, EVERYONE, variant="no cycle started"),
        *grid("GET", MY_REMINDERS, EVERYONE),
        *grid("PUT", MY_REMINDERS, EVERYONE, body={"mute_non_essential": True}),
        *grid("GET", MY_SOURCES, EVERYONE),
        # letting a source in again deletes nothing; opting out (which deletes the
        # caller's records of it) is tested in tests/test_connector_pages.py
        *grid("PUT", MY_SOURCE, OWN_SOURCE, body={"opted_out": False}),
        # --- connectors: HR's -----------------------------------------------------------
        *grid("GET", CONNECTORS, HR_ONLY.format(hal=200)),
        *grid("GET", CONNECTOR_RUNS, HR_ONLY.format(hal=200)),
        *grid("GET", IDENTITIES, HR_ONLY.format(hal=200), query={"unmatched": "true"}),
        *grid(
            "PUT",
            IDENTITY,
            HR_ONLY_2.format(hal="200 404", first="octo"),
            fixed={"system": "github"},
            body={"employee_id": "E003"},
        ),
        # none is configured in the test app: HR's sync is refused as such (409)
        *grid(
            "POST",
            CONNECTOR_SYNC,
            HR_ONLY_2.format(hal="409 404", first="github"),
            body={"full": True},
        ),
        *grid("DELETE", SOURCE_PURGE, HR_ONLY_2.format(hal="200 404", first="slack")),
        # the purge stopped slack; HR lets it run again (an unknown name is not found)
        *grid("POST", CONNECTOR_RESUME, HR_ONLY_2.format(hal="200 404", first="slack")),
        *grid("GET", PEOPLE_LIST, EVERYONE),
        *grid("GET", PERSON, PERSON_READ),
        *grid("GET", RECORDS, PERSON_READ),
        *grid("GET", EVIDENCE_PACK, PERSON_READ, query=kind),
        *grid(
            "GET",
            DEMOGRAPHICS_ROUTE,
            """
             cy   dee  fay  bo   missing
      cy     403  403  403  403  403
      dee    403  403  403  403  403
      bo     403  403  403  403  403
      eve    403  403  403  403  403
      ana    403  403  403  403  403
      pat    403  403  403  403  403
      hal    200  200  200  200  404
            """,
        ),
        *grid("GET", PERSON_DRAFTS, PERSON_READ),
        # --- drafts: reads ----------------------------------------------------------------
        *grid("GET", DRAFT, DRAFT_READ),
        *grid("GET", VERSIONS, DRAFT_READ),
        *grid("GET", VERSION, DRAFT_READ, fixed={"version": 1}),
        *grid(
            "GET",
            VERSION,
            DRAFT_READ.replace("200", "404"),
            variant="missing version",
            fixed={"version": 99},
        ),
        *grid("GET", CHECK, DRAFT_READ),
        *grid("GET", DRAFT_AUDIT, DRAFT_READ),
        # --- jobs: the requester's, and HR's ----------------------------------------------
        *grid(
            "GET",
            JOB,
            """
             cy_job  fay_job  hal_job  missing
      cy     200     404      404      404
      dee    404     404      404      404
      bo     404     404      404      404
      eve    404     404      404      404
      ana    404     404      404      404
      pat    404     404      404      404
      hal    200     200      200      404
            """,
        ),
        # --- panels: reads ----------------------------------------------------------------
        *grid("GET", PANELS, EVERYONE),
        *grid(
            "GET",
            PANEL,
            """
             p1     p2      missing
      cy     404    404     404
      dee    404    404     404
      bo     404    404     404
      eve    404    200     404
      ana    404    404     404
      pat    200    404     404
      hal    200    200     404
            """,
        ),
        *grid(  # queues the cohort's summaries (not run here)
            "POST",
            PANEL_SUMMARIES,
            """
             p1     p2      missing
      cy     404    404     404
      dee    404    404     404
      bo     404    404     404
      eve    404    202     404
      ana    404    404     404
      pat    202    404     404
      hal    202    202     404
            """,
        ),
        # --- HR reads -------------------------------------------------------------------
        *grid("GET", BIAS_REPORT, HR_ONLY.format(hal=404), fixed=cycle),  # none run yet
        *grid("GET", AUDIT, HR_ONLY.format(hal=200)),
        *grid("GET", RATINGS, EVERYONE, fixed=cycle),
        # --- draft writes: refused approvals first (no check yet: 409 past the scope) ----
        # (Cy may approve their own self-reflection, issue 16: 409 like a manager's.)
        *grid(
            "POST",
            APPROVE,
            """
             cy_self  cy_feedback  fay_self  missing
      cy     409      404          404       404
      dee    404      404          404       404
      bo     409      409          404       404
      eve    404      404          409       404
      ana    409      409          409       404
      pat    404      404          404       404
      hal    403      403          403       404
            """,
        ),
        *grid(  # no flag F9 on a draft never checked: 409 once past the scope
            "POST",
            ACKNOWLEDGE,
            """
             cy_self  cy_feedback  fay_self  missing
      cy     409      404          404       404
      dee    404      404          404       404
      bo     409      409          404       404
      eve    404      404          409       404
      ana    409      409          409       404
      pat    404      404          404       404
      hal    403      403          403       404
            """,
            fixed={"flag": "F9"},
            body={"reason": "quoting the customer's own words"},
        ),
        *grid(  # no check yet, so no flag F9 to rewrite: 409 once past the scope
            "POST",
            REWRITE,
            """
             cy_self  cy_feedback  fay_self  missing
      cy     409      404          404       404
      dee    404      404          404       404
      bo     409      409          404       404
      eve    404      404          409       404
      ana    409      409          409       404
      pat    404      404          404       404
      hal    403      403          403       404
            """,
            fixed={"flag": "F9"},
        ),
        *grid(  # nor a check of version 1 whose flag F9's sentence it could replace
            "POST",
            APPLY_REWRITE,
            """
             cy_self  cy_feedback  fay_self  missing
      cy     409      404          404       404
      dee    404      404          404       404
      bo     409      409          404       404
      eve    404      404          409       404
      ana    409      409          409       404
      pat    404      404          404       404
      hal    403      403          403       404
            """,
            fixed={"flag": "F9"},
            body={"based_on": 1, "text": "Shipped the ledger move.", "evidence": ["E1"]},
        ),
        *grid(
            "POST",
            PERSON_DRAFTS,
            """
             cy   dee  fay  bo   missing
      cy     202  404  404  404  404
      dee    404  202  404  404  404
      bo     202  202  404  202  404
      eve    404  404  202  404  404
      ana    202  202  202  202  404
      pat    404  404  404  404  404
      hal    403  403  403  403  404
            """,
            variant="self_reflection",
            body=kind,
        ),
        *grid(
            "POST",
            PERSON_DRAFTS,
            """
             cy   dee  fay  bo   missing
      cy     403  404  404  404  404
      dee    404  403  404  404  404
      bo     202  202  404  403  404
      eve    404  404  202  404  404
      ana    202  202  202  202  404
      pat    404  404  404  404  404
      hal    403  403  403  403  404
            """,
            variant="manager_feedback",
            body={"kind": "manager_feedback", "period": CYCLE},
        ),
        *grid(
            "POST",
            VERSIONS,
            """
             cy_self  cy_feedback  fay_self  missing
      cy     201      404          404       404
      dee    404      404          404       404
      bo     201      201          404       404
      eve    404      404          201       404
      ana    201      201          201       404
      pat    404      404          404       404
      hal    403      403          403       404
            """,
            body=edit_body,
        ),
        *grid(
            "POST",
            CHECK,
            """
             cy_self  cy_feedback  fay_self  missing
      cy     200      404          404       404
      dee    404      404          404       404
      bo     200      200          404       404
      eve    404      404          200       404
      ana    200      200          200       404
      pat    404      404          404       404
      hal    403      403          403       404
            """,
        ),
        *grid(  # queues a job that writes the next version (not run here)
            "POST",
            REGENERATE,
            """
             cy_self  cy_feedback  fay_self  missing
      cy     202      404          404       404
      dee    404      404          404       404
      bo     202      202          404       404
      eve    404      404          202       404
      ana    202      202          202       404
      pat    404      404          404       404
      hal    403      403          403       404
            """,
            body={"tone": "shorter", "exclude_records": [1]},
        ),
        # --- ratings: propose (so every cohort person has one), then refused finals -------
        *grid(
            "PUT",
            RATING,
            """
             cy   dee  fay  bo   missing
      cy     403  404  404  404  404
      dee    404  403  404  404  404
      bo     200  200  404  403  404
      eve    404  404  200  404  404
      ana    200  200  200  200  404
      pat    404  404  404  404  404
      hal    403  403  403  403  404
            """,
            fixed=cycle,
            body={"rating": 3},
        ),
        *grid(  # HR's step; no bias report yet, so 409 past the role check
            "POST",
            RATING_FINALISE,
            """
             cy   dee  fay  bo   missing
      cy     403  403  403  403  403
      dee    403  403  403  403  403
      bo     403  403  403  403  403
      eve    403  403  403  403  403
      ana    403  403  403  403  403
      pat    403  403  403  403  403
      hal    409  409  409  409  404
            """,
            fixed=cycle,
        ),
        # --- calibration panels: writes -------------------------------------------------
        *grid(
            "PUT",
            PLACEMENT,
            PANEL_WRITE.replace("{ok}", "200"),
            body={"performance": 2, "potential": 2},
        ),
        *grid("PUT", CALIBRATED, PANEL_WRITE.replace("{ok}", "200"), body={"rating": 3}),
        # no bias report yet: 409 once the panel and the person are in scope
        *grid("POST", PANEL_FINALISE, PANEL_WRITE.replace("{ok}", "409")),
        # --- review cycles: HR sets 2026-H2 up, changes, starts and copies it; then each
        # person's tasks -------------------------------------------------------------------
        *grid("POST", CYCLES, HR_ONLY.format(hal=201), body=new_cycle),
        *grid("GET", CYCLE_SETUP, HR_ONLY.format(hal=200), fixed=next_cycle),
        *grid(
            "PATCH",
            CYCLE_SETUP,
            HR_ONLY.format(hal=200),
            fixed=next_cycle,
            body={"title": "Second half review"},
        ),
        *grid("POST", CYCLE_START, HR_ONLY.format(hal=200), fixed=next_cycle),
        *grid(
            "POST",
            CYCLE_COPY,
            HR_ONLY.format(hal=201),
            fixed=next_cycle,
            body={"period": "2027-H1"},
        ),
        *grid("GET", MY_TASKS, EVERYONE, variant="2026-H2 started"),
        # HR's dashboard: a started cycle's (JSON and CSV); a draft one has none yet (409),
        # a cycle never set up is not found
        *grid("GET", CYCLE_DASHBOARD, HR_ONLY.format(hal=200), fixed=next_cycle),
        *grid("GET", CYCLE_DASHBOARD_CSV, HR_ONLY.format(hal=200), fixed=next_cycle),
        *grid(
            "GET",
            CYCLE_DASHBOARD,
            HR_ONLY.format(hal=409),
            fixed={"cycle": "2027-H1"},
            variant="copied, not started",
        ),
        *grid(
            "GET",
            CYCLE_DASHBOARD_CSV,
            HR_ONLY.format(hal=404),
            fixed={"cycle": "2031-H1"},
            variant="no such cycle",
        ),
        # --- peer feedback in 2026-H2: lists (Ana has no manager to approve hers), Bo
        # approves Cy's (Dee, Fay, Hal), Dee answers, Hal declines ------------------------
        *grid("GET", NOMINATIONS, OWN_LIST, fixed=next_cycle, variant="own, empty"),
        *naming(
            grid("POST", NOMINATIONS, OWN_LIST, fixed=next_cycle, body=own_peers),
            *PEER_POOL,
        ),
        *naming(
            grid(
                "POST",
                NOMINATIONS,
                CYS_LIST,
                fixed=next_cycle,
                body=cys_peers,
                variant="cy's list",
            ),
            *PEER_POOL,
        ),
        *grid(
            "POST",
            NOMINATIONS_APPROVE,
            """
         -
  cy     403
  dee    404
  bo     200
  eve    404
  ana    409
  pat    404
  hal    403
            """,
            fixed=next_cycle,
            body=lambda world, case: {"subject_id": world.id_of("cy")},
        ),
        *naming(grid("GET", MY_REQUESTS, EVERYONE), "cy"),
        *naming(grid("GET", FEEDBACK_REQUEST, PEER_ONLY), "cy"),
        *naming(grid("PUT", FEEDBACK_REQUEST, PEER_ONLY, body={"answers": ["A draft"]}), "cy"),
        *naming(
            grid(
                "POST",
                FEEDBACK_REQUEST,
                ONE_PEER.format(target="dee_request", dee=200, hal=404),
                body={"answers": ["Clear reviews.", "Share plans earlier.", "Keep pairing."]},
            ),
            "cy",
        ),
        *naming(
            grid(
                "POST",
                FEEDBACK_DECLINE,
                ONE_PEER.format(target="hal_request", dee=404, hal=200),
                body={"reason": "We rarely work together"},
            ),
            "cy",
        ),
        *grid("GET", PEER_FEEDBACK, PERSON_READ, query=next_cycle),
        # --- promotion nominations in 2026-H2: a manager of the person nominates (again:
        # a new reason) and withdraws (again: nothing to withdraw); HR and managers read
        # the list (their scope's) ---------------------------------------------------------
        *grid("POST", PROMOTION, MANAGER_OF, fixed=next_cycle, body={"reason": "Led <b>x</b>"}),
        *grid("GET", PROMOTIONS, MANAGERS_AND_HR, fixed=next_cycle),
        *grid("DELETE", PROMOTION, MANAGER_OF, fixed=next_cycle),
        # --- release and sign-off in 2026-H2 (started, calibration open): HR closes its
        # self-reflection phase; closing calibration (no bias report) and the release
        # (calibration open) are refused past the role; nobody's review is out, so a
        # person's own reads 404 while their managers and HR read it; HR exports ----------
        *grid(
            "POST",
            CLOSE_PHASE,
            HR_ONLY.format(hal=200),
            fixed={**next_cycle, "phase": "self_reflection"},
        ),
        *grid(
            "POST",
            CLOSE_PHASE,
            HR_ONLY.format(hal=409),
            fixed={**next_cycle, "phase": "calibration"},
            variant="no bias report",
        ),
        *grid(
            "POST", RELEASE, HR_ONLY.format(hal=409), fixed=next_cycle, body={"department": None}
        ),
        *grid("GET", MY_REVIEW, NOBODY_YET, fixed=next_cycle),
        *grid("POST", MY_REVIEW_ACK, NOBODY_YET, fixed=next_cycle, body={"comment": "Read."}),
        *grid("GET", PERSON_REVIEW, REVIEW_READ, fixed=next_cycle),
        *grid("GET", EXPORT_JSON, HR_ONLY.format(hal=200), fixed=next_cycle),
        *grid("GET", EXPORT_CSV, HR_ONLY.format(hal=200), fixed=next_cycle),
        # --- HR's cycle jobs, uploads -----------------------------------------------------
        *grid(
            "POST",
            CYCLE_DRAFTS,
            HR_ONLY.format(hal=202),
            fixed=cycle,
            body={"kinds": ["self_reflection"]},
        ),
        *grid("POST", BIAS_REPORT, HR_ONLY.format(hal=202), fixed=cycle),
        *grid(
            "POST",
            BIAS_PROBE,
            HR_ONLY.format(hal=202),
            fixed=cycle,
            body={"kind": "manager_feedback", "sample": 2},
        ),
        *grid("POST", INGEST, HR_ONLY.format(hal=202), upload=True),
        # last: a new panel changes what its member sees (Pat: L6 engineering, their own)
        *grid("POST", PANELS, HR_ONLY.format(hal=201), body=new_panel),
    ]


# --- what the code answers differently from the rules --------------------------------------


@dataclass(frozen=True)
class KnownBug:
    """Rows where the code answers `actual` instead of the rule's status, or (actual None)
    answers the right status with a body that breaks a rule in a way `leak` names."""

    applies: Callable[[Case], bool]
    actual: int | None
    why: str
    leak: str = ""


# None now: the five 500s (an ORM select read as Core rows), the panel answers that carried
# the id behind a label, and the unchecked numeric label are fixed; a new difference goes
# here, with what the code answers and why, until it is fixed too.
KNOWN_BUGS: list[KnownBug] = []


def known_bug(case: Case, bugs: Iterable[KnownBug] = KNOWN_BUGS) -> KnownBug | None:
    return next((bug for bug in bugs if bug.applies(case)), None)


# --- running a row and judging its answer ---------------------------------------------------


@dataclass
class Run:
    """What the rows answered, and every way an answer broke a rule."""

    client: TestClient
    world: World
    caplog: pytest.LogCaptureFixture
    bugs: list[KnownBug] = field(default_factory=lambda: list(KNOWN_BUGS))
    checks: dict[tuple[str, str], "Check"] = field(default_factory=lambda: dict(SUCCESS_CHECKS))
    also_shown: dict[str, set[int]] = field(default_factory=dict)  # caller -> more ids
    problems: list[str] = field(default_factory=list)
    not_found: dict[tuple[str, ...], list[tuple[Case, str]]] = field(default_factory=dict)
    count: int = 0

    def send(self, case: Case) -> Response:
        self.count += 1
        request_id = f"authz-{self.count}"
        headers = self.world.headers(case.caller) | {"X-Request-ID": request_id}
        body = case.body(self.world, case) if callable(case.body) else case.body
        extra: dict[str, Any] = {}
        if case.upload:
            extra["files"] = {"file": ("people.csv", SMALL_PEOPLE_CSV, "text/csv")}
            extra["data"] = {"format": "people"}
        elif body is not None:
            extra["json"] = body
        return self.client.request(
            case.method,
            case.path(self.world),
            params=dict(case.query),
            headers=headers,
            **extra,
        )

    def run(self, case: Case) -> tuple[Response, KnownBug | None]:
        """Send the row and judge the answer; the known bug it showed, if any. A row of a
        known bug that answers as the rule says is a problem too: the entry is stale."""
        response = self.send(case)
        status = response.status_code
        bug = known_bug(case, self.bugs)
        stale = f"{case.name}: answers {status} now; delete the KNOWN_BUGS entry"
        if bug is not None and bug.actual is not None:
            if status != bug.actual:
                self.problems.append(f"{stale} ({bug.why[:60]}...)")
            return response, bug
        if status != case.status:
            self.problems.append(
                f"{case.name}: {status}, expected {case.status}: {response.text[:300]}"
            )
            return response, None
        problems = judge(self, case, response)
        if bug is not None:
            if not any(bug.leak in p for p in problems):
                self.problems.append(f"{stale} ({bug.why[:60]}...)")
            problems = [p for p in problems if bug.leak not in p]
        self.problems.extend(f"{case.name}: {p}" for p in problems)
        return response, bug

    def finish(self) -> list[str]:
        return self.problems + self._probe_differences()

    def _probe_differences(self) -> list[str]:
        """An out-of-scope 404 says exactly what a 404 for a missing thing says."""
        problems = []
        for rows in self.not_found.values():
            probes = {reason for case, reason in rows if case.probe}
            for case, reason in rows:
                if probes and reason not in probes:
                    problems.append(
                        f"{case.name}: 404 says {reason!r}, a missing one says {sorted(probes)}"
                    )
        return problems


def judge(run: Run, case: Case, response: Response) -> list[str]:
    """Every rule an answer with the expected status must also keep."""
    problems = [
        f"demographic {word} in a response"
        for word in DEMOGRAPHIC_JSON
        if word in response.text and not _may_show_demographics(case)
    ]
    problems += _out_of_scope_text(case, response.text)
    if response.status_code >= 400:
        problems += _error_shape(run, case, response)
    else:
        json = "json" in response.headers.get("content-type", "")
        payload = response.json() if json else None  # a CSV is judged by its text above
        allowed = run.world.scope_ids(case.caller) | run.also_shown.get(case.caller, set())
        allowed |= {run.world.id_of(p) for p in case.may_name}
        for key, value in _values(payload, ("person_id", "subject_id")):
            if value is not None and value not in allowed:
                problems.append(f"{key} {value} is outside the caller's scope")
        check = run.checks.get((case.method, case.route))
        if check is not None:
            problems += check(run.world, case, payload)
    return problems


def _may_show_demographics(case: Case) -> bool:
    return case.caller == "hal" and (case.method, case.route) in {
        ("GET", DEMOGRAPHICS_ROUTE),
        ("GET", BIAS_REPORT),
    }


def _out_of_scope_text(case: Case, text: str) -> list[str]:
    """No evidence of a person outside the caller's scope, and no name or email of anyone
    but the people in scope and the managers above the caller. A panel page shows its
    cohort's evidence summaries (by label), so a cohort's evidence is allowed there."""
    caller = case.caller
    problems = []
    panel_page = case.route == PANEL and case.method == "GET"
    for person, phrases in EVIDENCE.items():
        if person in SCOPE[caller] or (panel_page and person in {"cy", "fay", "dee"}):
            continue
        problems += [f"evidence of {person} ({p!r})" for p in phrases if p in text]
    shown = SCOPE[caller] | ABOVE.get(caller, set()) | set(case.may_name)
    for person in set(PEOPLE) - shown:
        problems += [
            f"{what} of {person}" for what in (NAMES[person], EMAILS[person]) if what in text
        ]
    return problems


def _error_shape(run: Run, case: Case, response: Response) -> list[str]:
    problems = []
    body = response.json()
    request_id = response.headers.get("X-Request-ID")
    if response.status_code in (401, 403, 404):
        errors = body.get("errors")
        if set(body) != {"errors", "request_id"} or not (
            isinstance(errors, list) and len(errors) == 1 and set(errors[0]) == {"field", "reason"}
        ):
            problems.append(f"not the one error shape: {body}")
    if body.get("request_id") != request_id or request_id != f"authz-{run.count}":
        problems.append(f"request id {body.get('request_id')!r} is not the one sent")
    if response.status_code == 401 and response.headers.get("WWW-Authenticate") != "Bearer":
        problems.append("401 without WWW-Authenticate: Bearer")
    if response.status_code in (403, 404):
        refused = [
            r
            for r in run.caplog.records
            if getattr(r, "event", None) == "refused"
            and getattr(r, "request_id", None) == request_id
        ]
        if not (
            len(refused) == 1
            and refused[0].status == response.status_code  # type: ignore[attr-defined]
            and refused[0].method == case.method  # type: ignore[attr-defined]
            and refused[0].person_id == run.world.org.ids.get(case.caller)  # type: ignore[attr-defined]
        ):
            problems.append(f"refusal not logged once as 'refused' ({len(refused)} records)")
        if response.status_code == 404:
            group = (case.method, case.route, case.variant, case.caller)
            run.not_found.setdefault(group, []).append((case, body["errors"][0]["reason"]))
    return problems


PANEL_MEMBERS = {"p1": {"pat", "hal"}, "p2": {"eve", "hal"}}  # HR writes through any panel


def outside_the_cohort(run: Run) -> list[str]:
    """A panel's member (or HR) who names someone outside its cohort, or nobody, is told
    exactly that: 'person in this cohort not found', never which panel or person exists."""
    problems = []
    for rows in run.not_found.values():
        for case, reason in rows:
            if case.route not in (PLACEMENT, CALIBRATED, PANEL_FINALISE):
                continue
            on = case.target.split("/")[0]
            member = case.caller in PANEL_MEMBERS.get(on, set())
            if member and reason != "person in this cohort not found":
                problems.append(f"{case.name}: 404 says {reason!r}")
    return problems


def _values(payload: Any, keys: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """(key, value) for every occurrence of the keys anywhere in a JSON document."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in keys:
                yield key, value
            yield from _values(value, keys)
    elif isinstance(payload, list):
        for item in payload:
            yield from _values(item, keys)


# --- what particular successful answers must hold -----------------------------------------

Check = Callable[[World, Case, Any], list[str]]
ROLES = {
    "cy": ["employee"],
    "dee": ["employee"],
    "bo": ["employee", "manager"],
    "eve": ["employee", "manager", "calibration_panel"],
    "ana": ["employee", "manager"],
    "pat": ["employee", "calibration_panel"],
    "hal": ["employee", "hr_admin"],
}
# Before any write: the ratings each caller sees (fixture ratings of Cy, Dee and Bo, none
# final: a person sees their own only once it is final).
RATINGS_SEEN = {
    "cy": set(),
    "dee": set(),
    "bo": {"cy", "dee"},
    "eve": set(),
    "ana": {"bo", "cy", "dee"},
    "pat": set(),
    "hal": {"bo", "cy", "dee"},
}
PANELS_SEEN = {"eve": {"p2"}, "pat": {"p1"}, "hal": {"p1", "p2"}}


def _me(world: World, case: Case, body: Any) -> list[str]:
    want = (world.id_of(case.caller), ROLES[case.caller])
    return [] if (body["person_id"], body["roles"]) == want else [f"me is {body}"]


def _people(world: World, case: Case, body: Any) -> list[str]:
    ids = {item["id"] for item in body["items"]}
    want = world.scope_ids(case.caller)
    return [] if ids == want and body["total"] == len(want) else [f"people {sorted(ids)}"]


def _person(world: World, case: Case, body: Any) -> list[str]:
    return [] if body["id"] == world[case.target] else [f"person {body['id']}"]


def _authors(case: Case, items: list[dict[str, Any]]) -> list[str]:
    """Peer feedback shown to its own subject has no author; the managers and HR see who
    wrote it, and every other record shows its author to everyone who sees the record."""
    problems = []
    for item in items:
        kind = item["kind"]
        own_feedback = kind == "feedback" and case.caller == case.target
        want = None if own_feedback else AUTHORS.get((case.target, kind))
        if item["author"] != want:
            problems.append(f"{kind} item's author is {item['author']!r}, expected {want!r}")
    if case.target == "cy" and not any(item["kind"] == "feedback" for item in items):
        problems.append("Cy's peer feedback is missing, so its author went unchecked")
    return problems


def _records(world: World, case: Case, body: Any) -> list[str]:
    return _authors(case, body["items"])


def _evidence(world: World, case: Case, body: Any) -> list[str]:
    text = json.dumps(body)
    if body["person_id"] != world[case.target]:
        return [f"evidence pack of person {body['person_id']}"]
    own = EVIDENCE.get(case.target, ())
    problems = _authors(case, body["items"])
    if own and not any(p in text for p in own):
        problems.append("the pack lacks the person's evidence")
    return problems


def _demographics(world: World, case: Case, body: Any) -> list[str]:
    return [] if body == DEMOGRAPHICS[case.target] else [f"demographics {body}"]


def _person_drafts(world: World, case: Case, body: Any) -> list[str]:
    """The subject sees their self-reflection, not their manager's unapproved feedback."""
    seen = {d["id"] for d in body}
    drafts = world.org.drafts
    mine = {
        "cy": {drafts["cy_self"]} | ({drafts["cy_feedback"]} if case.caller != "cy" else set()),
        "fay": {drafts["fay_self"]},
    }.get(case.target, set())
    return [] if seen == mine else [f"drafts {sorted(seen)}, expected {sorted(mine)}"]


def _draft(world: World, case: Case, body: Any) -> list[str]:
    return [] if body["id"] == world[case.target.split("/")[0]] else [f"draft {body['id']}"]


def _job(world: World, case: Case, body: Any) -> list[str]:
    return [] if body["id"] == world[case.target] else [f"job {body['id']}"]


def _ratings(world: World, case: Case, body: Any) -> list[str]:
    seen = {r["person_id"] for r in body}
    want = {world.id_of(p) for p in RATINGS_SEEN[case.caller]}
    return [] if seen == want else [f"ratings of {sorted(seen)}, expected {sorted(want)}"]


def _panels(world: World, case: Case, body: Any) -> list[str]:
    seen = {p["id"] for p in body}
    want = {world[p] for p in PANELS_SEEN.get(case.caller, set())}
    return [] if seen == want else [f"panels {sorted(seen)}, expected {sorted(want)}"]


def cohort_problems(body: Any) -> list[str]:
    """A pseudonymised cohort: labels only, no person id, name, email or employee id."""
    problems = []
    if body["pseudonymised"] is not True:
        problems.append("the cohort is not pseudonymised")
    for key, value in _values(body, ("person_id", "manager_id")):
        if value is not None:
            problems.append(f"{key} {value} on a pseudonymised page")
    for key, value in _values(body, ("label", "manager_label")):
        if value is not None and not LABEL.fullmatch(value):
            problems.append(f"{key} {value!r} is not a pseudonym")
    text = json.dumps(body)
    for pattern in (NAME_WORDS, EMPLOYEE_ID):
        problems += [f"{m!r} on a pseudonymised page" for m in pattern.findall(text)]
    problems += [f"{e} on a pseudonymised page" for e in EMAILS.values() if e in text]
    return problems


def _cohort(world: World, case: Case, body: Any) -> list[str]:
    cohort = {"p1": 2, "p2": 1, "p3": 1}[case.target]
    problems = cohort_problems(body)
    if body["panel"]["id"] != world[case.target] or len(body["rows"]) != cohort:
        problems.append(f"cohort of panel {body['panel']['id']}: {len(body['rows'])} rows")
    return problems


def _ratings_written(world: World, case: Case, body: Any) -> list[str]:
    rows = body if isinstance(body, list) else [body]
    return [] if all(r["cycle"] == CYCLE for r in rows) else [f"ratings {rows}"]


def _panel_rating(world: World, case: Case, body: Any) -> list[str]:
    """A panel's write answers by the label it was sent (a pseudonym, or the id when names
    are shown): no person id, no rater."""
    problems = []
    if set(body) != {"label", "proposed", "calibrated", "final"}:
        problems.append(f"a panel's rating answer with {sorted(body)}")
    if body.get("label") != world[case.target.split("/")[1]]:
        problems.append(f"answered for label {body.get('label')!r}")
    sent = case.body if isinstance(case.body, dict) else {}
    if case.route == CALIBRATED and body.get("calibrated") != sent.get("rating"):
        problems.append(f"calibrated {body.get('calibrated')}, sent {sent.get('rating')}")
    if case.route == PANEL_FINALISE and body.get("final") is not True:
        problems.append(f"finalised, but final is {body.get('final')!r}")
    return problems


# Whose reviews a caller's tasks serve: their own, and their direct reports' (a manager
# approves nominations and writes feedback), never anyone else's, HR included.
DIRECT_REPORTS = {"ana": {"bo", "eve", "hal", "pat"}, "bo": {"cy", "dee"}, "eve": {"fay"}}


def _my_tasks(world: World, case: Case, body: Any) -> list[str]:
    """Before a start nobody has a task; after it, everyone has their own three (write a
    self-reflection, nominate peers, acknowledge; Ana, with no manager to approve a list,
    two) and a manager two per direct report."""
    subjects = [t["subject_id"] for t in body["items"]]
    mine = {world.id_of(case.caller)}
    reports = {world.id_of(p) for p in DIRECT_REPORTS.get(case.caller, set())}
    own = 2 if case.caller == "ana" else 3
    want = 0 if case.variant == "no cycle started" else own + 2 * len(reports)
    problems = [f"a task about person {s}" for s in subjects if s not in mine | reports]
    if body["total"] != want or len(subjects) != want:
        problems.append(f"{body['total']} tasks, expected {want}")
    return problems


def _peer_feedback(world: World, case: Case, body: Any) -> list[str]:
    """Nobody sees an answer before 3 peers answered (Dee alone answered about Cy), nor,
    but HR, an author."""
    problems = []
    if body["answered"] < 3 and body["answers"]:
        problems.append(f"answers shown with {body['answered']} answered")
    if case.caller != "hal" and any(a["author_id"] is not None for a in body["answers"]):
        problems.append("an author shown to someone but HR")
    want = 1 if case.target == "cy" else 0
    if body["answered"] != want:
        problems.append(f"{body['answered']} answered, expected {want}")
    return problems


def _my_reminders(world: World, case: Case, body: Any) -> list[str]:
    """The caller's own settings: an overdue task of one's own is always told; a PUT's
    answer is what was sent."""
    problems = []
    if body.get("always_told") != ["overdue"]:
        problems.append(f"always told {body.get('always_told')!r}")
    if case.method == "PUT" and (body["mute_non_essential"], body["muted"]) != (
        True,
        ["due_soon", "digest"],
    ):
        problems.append(f"muted, but the answer says {body!r}")
    return problems


SUCCESS_CHECKS: dict[tuple[str, str], Check] = {  # in the matrix, before any write
    ("GET", MY_REMINDERS): _my_reminders,
    ("PUT", MY_REMINDERS): _my_reminders,
    ("GET", ME): _me,
    ("GET", PEER_FEEDBACK): _peer_feedback,
    ("GET", MY_TASKS): _my_tasks,
    ("GET", PEOPLE_LIST): _people,
    ("GET", PERSON): _person,
    ("GET", RECORDS): _records,
    ("GET", EVIDENCE_PACK): _evidence,
    ("GET", DEMOGRAPHICS_ROUTE): _demographics,
    ("GET", PERSON_DRAFTS): _person_drafts,
    ("GET", DRAFT): _draft,
    ("GET", VERSION): _draft,
    ("POST", VERSIONS): _draft,
    ("POST", APPLY_REWRITE): _draft,
    ("GET", JOB): _job,
    ("GET", RATINGS): _ratings,
    ("GET", PANELS): _panels,
    ("GET", PANEL): _cohort,
    ("PUT", RATING): _ratings_written,
    ("PUT", CALIBRATED): _panel_rating,
    ("POST", PANEL_FINALISE): _panel_rating,
}
# Those that hold at any step (not the lists of drafts and ratings, which steps change).
LASTING_CHECKS = {k: v for k, v in SUCCESS_CHECKS.items() if v not in (_person_drafts, _ratings)}


# --- the logs ---------------------------------------------------------------------------


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every fairdraft log record from before the org is built (ask for this first)."""
    caplog.set_level(logging.DEBUG, logger="fairdraft")
    return caplog


def log_leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines (as the JSON formatter writes them) with a demographic value or evidence."""
    formatter = JsonFormatter()
    problems = []
    records = [r for phase in ("setup", "call") for r in caplog.get_records(phase)]
    assert any(getattr(r, "event", None) == "request" for r in records), "no request was logged"
    for record in records:
        line = formatter.format(record)
        found = DEMOGRAPHIC_LOG.findall(line) + [p for p in ALL_EVIDENCE if p in line]
        if found:
            problems.append(f"log line with {found}: {line[:300]}")
    return problems


@pytest.fixture
def api(engine: Engine, settings: Settings, api_org: ApiOrg) -> Iterator[TestClient]:
    """The app on this test's database, answering a server error as a 500 (as in
    production) rather than raising it, so a failing row is a status in the report. Every
    endpoint gets a forged token, all from one address: the failure throttle (tested in
    tests/test_security_http.py) is set past the matrix's count."""
    unthrottled = settings.model_copy(update={"auth_failure_limit": 100_000})
    app = create_app(unthrottled, engine=engine, worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


# --- the tests --------------------------------------------------------------------------


def declared_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every /api/v1 endpoint, through included routers (which newer
    FastAPI keeps as their own route objects instead of copying their routes)."""
    found: set[tuple[str, str]] = set()

    def walk(routes: Iterable[Any], prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                context = getattr(route, "include_context", None)
                walk(inner.routes, prefix + getattr(context, "prefix", ""))
            elif getattr(route, "methods", None):
                path = prefix + route.path
                if path.startswith(API):
                    found.update((m, path) for m in route.methods - {"HEAD", "OPTIONS"})

    walk(app.routes, "")
    return found


def test_the_matrix_covers_every_declared_endpoint() -> None:
    app = create_app(Settings(_env_file=None), worker=False)
    declared = declared_routes(app)
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path.startswith(API)
    }
    as_documented = {(m, re.sub(r"{(\w+):path}", r"{\1}", p)) for m, p in declared}
    assert documented <= as_documented, "the route walk misses endpoints the schema documents"
    cases = matrix()
    covered = {(c.method, c.route) for c in cases}
    assert declared - covered == set(), "endpoints without rows in the authorization matrix"
    assert covered - declared == set(), "rows for endpoints the app does not declare"
    # Rows whose answer past the scope needs an earlier step run in the lifecycle test.
    after_a_step = {("GET", BIAS_REPORT)}  # HR: 404 until a report exists
    # One's own review: 404 until the cycle is released (test_a_review_reaches_...).
    after_a_step |= {("GET", MY_REVIEW), ("POST", MY_REVIEW_ACK)}
    for method, route in declared:
        rows = [c for c in cases if (c.method, c.route) == (method, route)]
        callers = {c.caller for c in rows}
        assert callers >= {*CALLERS, NO_TOKEN, BAD_TOKEN}, f"{method} {route}: not every role"
        past = [c for c in rows if c.status not in (401, 403, 404)]
        assert past or (method, route) in after_a_step, f"{method} {route}: nothing passes"
        if re.search(r"{(person_id|draft_id|job_id|panel_id)}", route):
            assert any(c.probe for c in rows), f"{method} {route}: no row for a missing id"
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "two rows with one name"


def test_every_endpoint_answers_every_role_within_scope(
    logs: pytest.LogCaptureFixture, api: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    world = build_world(engine, api_org)
    run = Run(api, world, logs)
    cases = matrix()
    for case in cases:
        run.run(case)
    problems = run.finish() + outside_the_cohort(run) + log_leaks(logs)
    assert run.count == len(cases) > 900
    assert not problems, f"{len(problems)} of {len(cases)} rows broke a rule:\n" + "\n".join(
        problems
    )


def test_what_a_step_makes_visible_follows_the_rules(
    logs: pytest.LogCaptureFixture,
    api: TestClient,
    api_org: ApiOrg,
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Rows whose answer depends on an earlier step, in the order a cycle takes them."""
    world = build_world(engine, api_org)
    run = Run(api, world, logs, checks=LASTING_CHECKS)
    worker = Worker(engine, settings)

    def row(method: str, route: str, caller: str, target: str, status: int, **kw: Any) -> Any:
        """The row's JSON answer; None where a known bug answered instead."""
        response, bug = run.run(Case(method, route, caller, target, status, **kw))
        if bug is not None and bug.actual is not None:
            return None
        assert response.status_code == status, run.problems[-1:]
        return response.json()

    def run_jobs() -> None:
        while worker.run_once():
            pass

    # A manager's feedback is their working paper until approved, then the subject's too.
    row("GET", DRAFT, "cy", "cy_feedback", 404)
    row("POST", CHECK, "bo", "cy_feedback", 200)
    row("POST", APPROVE, "bo", "cy_feedback", 200)
    assert row("GET", DRAFT, "cy", "cy_feedback", 200)["status"] == "approved"
    listed = {d["id"] for d in row("GET", PERSON_DRAFTS, "cy", "cy", 200)}
    assert listed == {api_org.drafts["cy_self"], api_org.drafts["cy_feedback"]}
    for other in ("dee", "eve", "pat"):
        row("GET", DRAFT, other, "cy_feedback", 404)
    # ... the approved text, not its history: earlier versions and the audit trail are for
    # those who write it (Bo, Ana) and HR.
    history = "the history of this draft is for those who write it"
    v1 = (("version", 1),)
    for route, fixed in ((VERSIONS, ()), (VERSION, v1), (DRAFT_AUDIT, ())):
        refused = row("GET", route, "cy", "cy_feedback", 403, fixed=fixed)
        assert refused["errors"][0]["reason"] == history, refused
        for caller in ("bo", "ana", "hal"):
            row("GET", route, caller, "cy_feedback", 200, fixed=fixed)
        row("GET", route, "dee", "cy_feedback", 404, fixed=fixed)
    row("GET", VERSION, "cy", "cy_feedback", 403, variant="missing", fixed=(("version", 99),))
    # ... which the subject reads but may not change: now 403, not 404.
    row("POST", VERSIONS, "cy", "cy_feedback", 403, body=edit_body)
    row("POST", CHECK, "cy", "cy_feedback", 403)
    row("POST", APPROVE, "cy", "cy_feedback", 403)
    row(
        "POST",
        ACKNOWLEDGE,
        "cy",
        "cy_feedback",
        403,
        fixed=(("flag", "F1"),),
        body={"reason": "mine"},
    )

    # A flag on Fay's self-reflection is Fay's (or her manager's) to keep, nobody else's.
    def flagged(world: World, case: Case) -> dict[str, Any]:
        version, text = world.current(world["fay_self"])
        return {
            "based_on": version,
            "text": text.rstrip() + "\n- I can be abrasive in design reviews. [E1]\n",
        }

    row("POST", VERSIONS, "fay", "fay_self", 201, body=flagged)
    check = row("POST", CHECK, "fay", "fay_self", 200)
    assert check["open_flags"] >= 1, check
    ack = (("flag", check["flags"][0]["key"]),)
    reason = {"reason": "my own words about myself"}
    for caller, status in (("cy", 404), ("bo", 404), ("pat", 404), ("hal", 403)):
        row("POST", ACKNOWLEDGE, caller, "fay_self", status, fixed=ack, body=reason)
    kept = row("POST", ACKNOWLEDGE, "fay", "fay_self", 200, fixed=ack, body=reason)
    assert kept["open_flags"] == 0 and kept["flags"][0]["acknowledged_by"] == EMAILS["fay"]
    assert row("GET", CHECK, "fay", "fay_self", 200)["open_flags"] == 0  # kept, not rolled back
    row("GET", CHECK, "eve", "fay_self", 200)
    row("GET", CHECK, "bo", "fay_self", 404)
    # ... and so is a rewrite of its sentence: proposed to Fay, applied by her manager.
    abrasive = next(f for f in check["flags"] if f["phrase"].lower() == "abrasive")
    on = (("flag", abrasive["key"]),)
    for caller, status in (("cy", 404), ("bo", 404), ("pat", 404), ("hal", 403)):
        row("POST", REWRITE, caller, "fay_self", status, fixed=on)
    proposed = row("POST", REWRITE, "fay", "fay_self", 200, fixed=on)
    assert proposed["original"]["text"] == "I can be abrasive in design reviews.", proposed
    rewrite = {"based_on": proposed["version"], **proposed["proposal"]}
    for caller, status in (("cy", 404), ("hal", 403)):
        row("POST", APPLY_REWRITE, caller, "fay_self", status, fixed=on, body=rewrite)
    applied = row("POST", APPLY_REWRITE, "eve", "fay_self", 201, fixed=on, body=rewrite)
    assert applied["current_version"] == proposed["version"] + 1

    # Cy checks and approves their own self-reflection
    # (issue 16: "an employee writes and approves a self-reflection"; the gate holds for
    # them as for a manager); HR and other people may not.
    assert row("POST", CHECK, "cy", "cy_self", 200)["open_flags"] == 0
    row("POST", APPROVE, "hal", "cy_self", 403)
    row("POST", APPROVE, "dee", "cy_self", 404)
    assert row("POST", APPROVE, "cy", "cy_self", 200)["status"] == "approved"
    row("POST", APPROVE, "bo", "cy_self", 409)  # approved already
    # Their own self-reflection stays theirs to write, so its history too.
    assert row("GET", VERSIONS, "cy", "cy_self", 200)[0]["version"] == 1
    row("GET", DRAFT_AUDIT, "cy", "cy_self", 200)

    # HR drafts the cohort's calibration summaries: the panel reads them by label only.
    row(
        "POST",
        CYCLE_DRAFTS,
        "bo",
        "-",
        403,
        fixed=(("cycle", CYCLE),),
        body={"kinds": ["calibration_summary"]},
    )
    job = row(
        "POST",
        CYCLE_DRAFTS,
        "hal",
        "-",
        202,
        fixed=(("cycle", CYCLE),),
        body={"kinds": ["calibration_summary"]},
    )
    world.values["summaries_job"] = job["id"]
    run_jobs()
    assert row("GET", JOB, "hal", "summaries_job", 200)["status"] == "done"
    row("GET", JOB, "bo", "summaries_job", 404)
    cohort = row("GET", PANEL, "pat", "p1", 200)
    assert all(r["summary"] for r in cohort["rows"]), cohort["rows"]
    assert not cohort_problems(cohort)
    assert row("GET", PANEL, "eve", "p2", 200)["rows"][0]["summary"]
    # The summary is not approved: Cy does not see it; Bo does.
    kinds = {d["kind"] for d in row("GET", PERSON_DRAFTS, "cy", "cy", 200)}
    assert "calibration_summary" not in kinds
    kinds = {d["kind"] for d in row("GET", PERSON_DRAFTS, "bo", "cy", 200)}
    assert "calibration_summary" in kinds

    # Ratings: calibrated, checked by the bias report, finalised; then their person sees them.
    row("PUT", CALIBRATED, "pat", "p1/@cy", 200, body={"rating": 3})
    row("PUT", RATING, "eve", "fay", 200, fixed=(("cycle", CYCLE),), body={"rating": 3})
    cycle = (("cycle", CYCLE),)
    row("POST", BIAS_REPORT, "cy", "-", 403, fixed=cycle)
    world.values["report_job"] = row("POST", BIAS_REPORT, "hal", "-", 202, fixed=cycle)["id"]
    run_jobs()
    assert row("GET", JOB, "hal", "report_job", 200)["status"] == "done"
    row("GET", JOB, "cy", "report_job", 404)
    assert row("GET", BIAS_REPORT, "hal", "-", 200, fixed=cycle)["cycle"] == CYCLE
    for caller in ("cy", "bo", "eve", "ana", "pat"):
        row("GET", BIAS_REPORT, caller, "-", 403, fixed=cycle)
    assert row("GET", RATINGS, "dee", "-", 200, fixed=cycle) == []
    row("POST", RATING_FINALISE, "bo", "dee", 403, fixed=cycle)
    row("POST", RATING_FINALISE, "dee", "dee", 403, fixed=cycle)
    row("POST", RATING_FINALISE, "hal", "dee", 200, fixed=cycle)
    seen = {r["person_id"] for r in row("GET", RATINGS, "dee", "-", 200, fixed=cycle)}
    assert seen == {api_org.ids["dee"]}
    assert row("GET", RATINGS, "cy", "-", 200, fixed=cycle) == []
    row("POST", PANEL_FINALISE, "eve", "p1/@cy", 404)
    # Finalising Dee changed no rating, so the same report still lets Cy's be finalised;
    # the answer is by label: Bo proposed 4 (ratings.csv), Pat calibrated 3.
    final = row("POST", PANEL_FINALISE, "pat", "p1/@cy", 200)
    assert final == {"label": world["@cy"], "proposed": 4, "calibrated": 3, "final": True}
    seen = {r["person_id"] for r in row("GET", RATINGS, "cy", "-", 200, fixed=cycle)}
    assert seen == {api_org.ids["cy"]}
    # Final: past the scope, 409; the reason names who finalised (Pat): an actor on Bo's
    # report's rating, as the audit trail would name them.
    row("PUT", RATING, "bo", "cy", 409, fixed=cycle, body={"rating": 2}, may_name=("pat",))

    # An upload of the whole people.csv, demographics included: HR's, and never logged.
    upload = (tmp_path / "api-org" / "people.csv").read_bytes()
    assert b"hispanic_latino" in upload

    def ingest(caller: str) -> Response:
        return api.post(
            INGEST,
            files={"file": ("people.csv", upload, "text/csv")},
            data={"format": "people"},
            headers=world.headers(caller),
        )

    assert ingest("cy").status_code == 403
    accepted = ingest("hal")
    assert accepted.status_code == 202, accepted.text
    world.values["ingest_job"] = accepted.json()["id"]
    run_jobs()
    assert row("GET", JOB, "hal", "ingest_job", 200)["status"] == "done"
    row("GET", JOB, "cy", "ingest_job", 404)

    # A member in their own panel's cohort sees it but decides nothing about themselves.
    p3 = row("POST", PANELS, "hal", "-", 201, body=new_panel)["id"]
    with engine.connect() as conn:
        found = panel(conn, p3)
        assert found is not None
        world.values.update(
            {"p3": p3, "@pat": pseudonyms(found, [api_org.ids["pat"]])[api_org.ids["pat"]]}
        )
    assert [r["label"] for r in row("GET", PANEL, "pat", "p3", 200)["rows"]] == [world["@pat"]]
    row("PUT", PLACEMENT, "pat", "p3/@pat", 403, body={"performance": 3, "potential": 3})
    row("PUT", CALIBRATED, "pat", "p3/@pat", 403, body={"rating": 5})
    row("POST", PANEL_FINALISE, "pat", "p3/@pat", 403)
    row("PUT", PLACEMENT, "hal", "p3/@pat", 200, body={"performance": 2, "potential": 2})

    problems = run.finish() + log_leaks(logs)
    assert not problems, "\n".join(problems)


def test_a_set_up_cycles_review_reaches_its_employee_only_at_release(
    logs: pytest.LogCaptureFixture, api: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    """Issue 16: once HR sets 2026-H1 up, nothing of the manager's review (approved or not)
    nor the person's rating (final or not) is the employee's before release; after it
    they read their review and acknowledge it, and their manager reads the comment."""
    world = build_world(engine, api_org)
    run = Run(api, world, logs, checks=LASTING_CHECKS)

    def row(method: str, route: str, caller: str, target: str, status: int, **kw: Any) -> Any:
        response, bug = run.run(Case(method, route, caller, target, status, **kw))
        assert bug is None and response.status_code == status, run.problems[-1:]
        return response.json()

    phases = {k: v for k, v in setup_body()["phases"].items() if k != "calibration"}
    body = setup_body(reviews=["self_reflection", "manager_feedback"], phases=phases)
    with engine.begin() as conn:
        create_cycle(conn, CYCLE_PERIOD, CycleSetupIn.model_validate(body), actor="test")
        start_cycle(conn, CYCLE, actor="test")
        conn.execute(
            update(Rating)
            .where(Rating.person_id == api_org.ids["cy"])
            .values(finalised_by="test", finalised_at=func.now())
        )
    cycle = (("cycle", CYCLE),)
    row("POST", CHECK, "bo", "cy_feedback", 200)
    row("POST", APPROVE, "bo", "cy_feedback", 200)
    # Approved and final, and still not Cy's: 2026-H1 is not released.
    row("GET", DRAFT, "cy", "cy_feedback", 404)
    listed = {d["id"] for d in row("GET", PERSON_DRAFTS, "cy", "cy", 200)}
    assert listed == {api_org.drafts["cy_self"]}
    assert row("GET", RATINGS, "cy", "-", 200, fixed=cycle) == []
    row("GET", MY_REVIEW, "cy", "-", 404, fixed=cycle)
    row("POST", MY_REVIEW_ACK, "cy", "-", 404, fixed=cycle, body={})
    row("GET", PERSON_REVIEW, "cy", "cy", 404, fixed=cycle)
    for caller in ("bo", "ana", "hal"):
        seen = row("GET", PERSON_REVIEW, caller, "cy", 200, fixed=cycle)
        assert not seen["released"], seen
        assert seen["feedback_draft_id"] == api_org.drafts["cy_feedback"]
    # HR releases the whole cycle (no calibration asked: no phase to close first).
    for caller in ("cy", "bo", "ana"):
        row("POST", RELEASE, caller, "-", 403, fixed=cycle, body={})
    row("POST", RELEASE, "hal", "-", 200, fixed=cycle, body={})
    row("POST", RELEASE, "hal", "-", 409, fixed=cycle, body={}, variant="again")
    assert row("GET", DRAFT, "cy", "cy_feedback", 200)["status"] == "approved"
    assert {r["person_id"] for r in row("GET", RATINGS, "cy", "-", 200, fixed=cycle)} == {
        api_org.ids["cy"]
    }
    mine = row("GET", MY_REVIEW, "cy", "-", 200, fixed=cycle)
    assert mine["feedback_draft_id"] == api_org.drafts["cy_feedback"] and mine["released"]
    assert row("GET", MY_REVIEW, "dee", "-", 200, fixed=cycle)["feedback_draft_id"] is None
    row("GET", DRAFT, "dee", "cy_feedback", 404)
    row("GET", PERSON_REVIEW, "cy", "cy", 200, fixed=cycle)
    row("GET", PERSON_REVIEW, "dee", "cy", 404, fixed=cycle)
    row("GET", PERSON_REVIEW, "cy", "dee", 404, fixed=cycle)
    said = {"comment": "I read it; the ledger work was a team effort."}
    assert row("POST", MY_REVIEW_ACK, "cy", "-", 200, fixed=cycle, body=said)["comment"]
    for caller in ("bo", "ana", "hal"):
        seen = row("GET", PERSON_REVIEW, caller, "cy", 200, fixed=cycle, variant="acknowledged")
        assert seen["acknowledgement"]["comment"] == said["comment"]
    problems = run.finish() + log_leaks(logs)
    assert not problems, "\n".join(problems)


def test_with_names_shown_a_panel_still_writes_only_its_cohort(
    logs: pytest.LogCaptureFixture, engine: Engine, settings: Settings, api_org: ApiOrg
) -> None:
    """panel_pseudonymise off: a panel page shows names and ids, and its writes take a
    person id as the label. Still only the panel's cohort may be placed, calibrated or
    finalised there: anyone else is "not found in this cohort" (404), as with labels."""
    world = build_world(engine, api_org)
    shown = settings.model_copy(update={"panel_pseudonymise": False})
    app = create_app(shown, engine=engine, worker=False)
    world.values.update({f"id_{who}": str(pid) for who, pid in api_org.ids.items()})
    world.values["id_missing"] = str(MISSING_ID)
    table = """
             p1/id_cy p1/id_fay p1/id_bo p1/id_dee p1/id_missing p2/id_dee p2/id_cy p2/id_missing
      cy     404      404       404      404       404           404       404      404
      dee    404      404       404      404       404           404       404      404
      bo     404      404       404      404       404           404       404      404
      eve    404      404       404      404       404           {ok}      404      404
      ana    404      404       404      404       404           404       404      404
      pat    {ok}     {ok}      404      404       404           404       404      404
      hal    {ok}     {ok}      404      404       404           {ok}      404      404
    """
    cases = [
        *grid(
            "PUT",
            PLACEMENT,
            table.replace("{ok}", "200"),
            variant="ids",
            body={"performance": 3, "potential": 2},
        ),
        *grid("PUT", CALIBRATED, table.replace("{ok}", "200"), variant="ids", body={"rating": 2}),
        # no bias report yet: 409 once past the panel's scope
        *grid("POST", PANEL_FINALISE, table.replace("{ok}", "409"), variant="ids"),
    ]
    checks: dict[tuple[str, str], Check] = {
        ("PUT", CALIBRATED): _panel_rating,
        ("POST", PANEL_FINALISE): _panel_rating,
    }

    def ratings_beyond_the_cohorts() -> list[tuple[Any, ...]]:
        beyond = [api_org.ids[p] for p in PEOPLE if p not in ("cy", "fay", "dee")]
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    Rating.person_id,
                    Rating.calibrated_rating,
                    Rating.finalised_at,
                    Rating.updated_at,
                ).where(Rating.person_id.in_(beyond))
            ).all()
        return sorted(tuple(r) for r in rows)

    with TestClient(app, raise_server_exceptions=False) as client:
        run = Run(client, world, logs, checks=checks)
        fay = f"{API}/cycles/{CYCLE}/ratings/{api_org.ids['fay']}"
        assert client.put(fay, json={"rating": 3}, headers=api_org.auth("eve")).status_code == 200
        page = client.get(f"{API}/panels/{api_org.panel_id}", headers=api_org.auth("pat"))
        assert page.status_code == 200
        shown_ids = {r["person_id"] for r in page.json()["rows"]}
        assert shown_ids == {api_org.ids["cy"], api_org.ids["fay"]}
        before = ratings_beyond_the_cohorts()
        assert before, "no rating outside the cohorts (Bo's, ratings.csv) to keep unchanged"
        for case in cases:
            run.run(case)
    problems = run.finish() + outside_the_cohort(run) + log_leaks(logs)
    if ratings_beyond_the_cohorts() != before:  # Bo's rating: a panel's writes never reach it
        problems.append("a rating outside the panels' cohorts changed through a panel")
    assert not problems, "\n".join(problems)


# --- /metrics: the scraper's token opens it, and nothing else does -------------------------


def test_metrics_answer_the_metrics_token_alone_and_carry_nothing_personal(
    engine: Engine, settings: Settings, api_org: ApiOrg
) -> None:
    """FAIRDRAFT_METRICS_TOKEN set: only it reads /metrics (a person's API token, whatever
    the role, or a page session is 401, like no token or a forged one), and it opens no
    API endpoint. Unset: /metrics is off, 404 for everyone. The scrape, taken after every
    person was read, names no one: no name, email, employee id, path with an id,
    demographic value or evidence."""
    token = secrets.token_urlsafe(32)
    configured = settings.model_copy(
        update={"metrics_token": SecretStr(token), "auth_failure_limit": 100_000}
    )
    scraper = {"Authorization": f"Bearer {token}"}
    callers = (NO_TOKEN, BAD_TOKEN, *CALLERS)

    def headers(caller: str) -> dict[str, str]:
        if caller == NO_TOKEN:
            return {}
        if caller == BAD_TOKEN:
            return {"Authorization": "Bearer fd_not_a_token"}
        return api_org.auth(caller)

    with TestClient(create_app(configured, engine=engine, worker=False)) as client:
        for who in PEOPLE:
            read = client.get(f"{API}/people/{api_org.ids[who]}", headers=api_org.auth("hal"))
            assert read.status_code == 200
        answers = {caller: client.get("/metrics", headers=headers(caller)) for caller in callers}
        metrics = client.get("/metrics", headers=scraper)
        as_api_token = client.get(ME, headers=scraper)
        signed_in = client.post(
            "/sign-in",
            data={"token": api_org.tokens["hal"], "next": "/"},
            headers={"Origin": "http://testserver"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303 and client.cookies.get("fairdraft_session")
        answers["hal's page session"] = client.get("/metrics")
    with TestClient(create_app(settings, engine=engine, worker=False)) as off:
        off_answers = {c: off.get("/metrics", headers=headers(c)) for c in (NO_TOKEN, "hal")}
        off_answers["the token of another install"] = off.get("/metrics", headers=scraper)

    problems = [
        f"{caller}: {answer.status_code}, expected 401"
        for caller, answer in answers.items()
        if answer.status_code != 401 or "errors" not in answer.json()
    ]
    problems += [
        f"metrics off, {caller}: {answer.status_code}, expected 404"
        for caller, answer in off_answers.items()
        if answer.status_code != 404 or "FAIRDRAFT_METRICS_TOKEN" not in answer.text
    ]
    if as_api_token.status_code != 401:
        problems.append(f"the metrics token opened {ME}: {as_api_token.status_code}")
    assert metrics.status_code == 200 and metrics.text.startswith("# HELP"), metrics.text[:300]
    text = metrics.text
    found = (
        NAME_WORDS.findall(text)
        + EMPLOYEE_ID.findall(text)
        + DEMOGRAPHIC_LOG.findall(text)
        + re.findall(r"[\w.]+@example\.com|/people/\d+", text)
        + [phrase for phrase in ALL_EVIDENCE if phrase in text]
    )
    if found:
        problems.append(f"personal data in /metrics: {sorted(set(found))}")
    assert "/api/v1/people/{person_id}" in text, "the reads are counted by their template"
    assert not problems, "\n".join(problems)


# --- /scim/v2: the identity provider's token opens it, and nothing else does (issue 17) ----
# Not matrix rows: no person's role reaches SCIM at all, so each SCIM route is asked by every
# caller of the matrix (and a page session) and must answer 401 for each; the SCIM token
# in turn opens no API endpoint. What it may do is tests/test_scim_*.py's.

SCIM_PATHS = {"{user_id}": "1", "{group_id}": "00000000-0000-0000-0000-000000000001"}
SCIM_PATHS |= {"{name}": "User", "{urn}": "urn:ietf:params:scim:schemas:core:2.0:User"}
SCIM_PATHS |= {"{rest}": "Elsewhere"}


def scim_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, concrete path) of every /scim/v2 endpoint."""
    found: set[tuple[str, str]] = set()

    def walk(routes: Iterable[Any]) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes)
            elif getattr(route, "methods", None) and route.path.startswith("/scim/v2"):
                path = re.sub(r"\{(\w+)(:path)?\}", lambda m: "{" + m.group(1) + "}", route.path)
                for name, value in SCIM_PATHS.items():
                    path = path.replace(name, value)
                found.update((m, path) for m in route.methods - {"HEAD", "OPTIONS"})

    walk(app.routes)
    return found


def test_scim_answers_its_own_token_alone(
    engine: Engine, settings: Settings, api_org: ApiOrg
) -> None:
    token = secrets.token_urlsafe(32)
    configured = settings.model_copy(
        update={"scim_token": SecretStr(token), "auth_failure_limit": 100_000}
    )
    provider = {"Authorization": f"Bearer {token}"}
    callers = {
        NO_TOKEN: {},
        BAD_TOKEN: {"Authorization": "Bearer fd_not_a_token"},
        **{caller: api_org.auth(caller) for caller in CALLERS},
    }
    app = create_app(configured, engine=engine, worker=False)
    routes = scim_routes(app)
    assert len(routes) >= 20 and ("PATCH", "/scim/v2/Users/1") in routes
    problems: list[str] = []
    with TestClient(app) as client:
        for method, path in sorted(routes):
            for caller, headers in callers.items():
                answer = client.request(method, path, headers=headers, content=b"{}")
                if answer.status_code != 401 or answer.json().get("status") != "401":
                    problems.append(f"{caller} {method} {path}: {answer.status_code}")
        signed_in = client.post(
            "/sign-in",
            data={"token": api_org.tokens["hal"], "next": "/"},
            headers={"Origin": "http://testserver"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303 and client.cookies.get("fairdraft_session")
        for method, path in sorted(routes):
            answer = client.request(method, path, content=b"{}")
            if answer.status_code != 401:
                problems.append(f"hal's page session {method} {path}: {answer.status_code}")
        client.cookies.clear()
        for method, route in sorted(declared_routes(app)):
            if method == "GET" and "{" not in route:
                answer = client.get(route, headers=provider)
                if answer.status_code != 401:
                    problems.append(f"the SCIM token opened {route}: {answer.status_code}")
        assert client.get("/scim/v2/Users", headers=provider).status_code == 200
    assert not problems, "\n".join(problems)


# --- one-time sign-in links (issue 15) ----------------------------------------------------

LINK_STARTS = {"cy": "/me", "dee": "/me", "bo": "/team", "eve": "/team", "ana": "/team"}
LINK_STARTS |= {"pat": "/panels", "hal": "/hr"}


def test_a_sign_in_link_opens_a_page_session_with_its_persons_scope_and_no_more(
    engine: Engine, settings: Settings, api_org: ApiOrg
) -> None:
    """No route mints a link (the CLI and the demo do, tests/test_sign_in_links.py), so the
    rows here are what a link's session may do, per role: land on the role's start page,
    open what the person's scope holds (Fay's draft, HR's report) and nothing else, and
    never the API, which takes bearer tokens only."""
    fay_draft = f"/drafts/{api_org.drafts['fay_self']}"
    problems = []
    for who in CALLERS:
        with engine.begin() as conn:
            secret = issue_link(conn, api_org.ids[who], actor="test").secret
        app = create_app(settings, engine=engine, worker=False)
        with TestClient(app, raise_server_exceptions=False) as browser:
            used = browser.post(
                "/sign-in/link",
                data={"key": secret},
                headers={"Origin": "http://testserver"},
                follow_redirects=False,
            )
            answers = {
                "start": browser.get("/", follow_redirects=False),
                "fay's draft": browser.get(fay_draft, follow_redirects=False),
                "hr": browser.get("/hr", follow_redirects=False),
                "api": browser.get(ME),
                "again": browser.post(
                    "/sign-in/link", data={"key": secret}, headers={"Origin": "http://testserver"}
                ),
            }
        expected = {
            "fay's draft": 200 if "fay" in SCOPE[who] else 404,
            "hr": 200 if who == "hal" else 403,
            "api": 401,
            "again": 410,
        }
        if used.status_code != 303:
            problems.append(f"{who}: the link answered {used.status_code}, not 303")
        start = answers.pop("start").headers.get("location")
        if start != LINK_STARTS[who]:
            problems.append(f"{who}: landed on {start}, expected {LINK_STARTS[who]}")
        problems += [
            f"{who}: {row} answered {answers[row].status_code}, expected {status}"
            for row, status in expected.items()
            if answers[row].status_code != status
        ]
        if answers["fay's draft"].status_code == 404 and "Refund" in answers["fay's draft"].text:
            problems.append(f"{who}: the 404 page shows Fay's draft")
    assert not problems, "\n".join(problems)
