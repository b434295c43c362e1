"""A small company for API tests, with one person per role and relationship.

    Ana (E001, L7)              top manager: Bo's and Eve's teams are hers (indirect)
     |- Bo (E002)               manager of Cy and Dee
     |   |- Cy (E003, L3 eng)   the employee most tests are about
     |   '- Dee (E004)          Cy's teammate
     |- Eve (E005)              manager of the other team
     |   '- Fay (E006, L3 eng)  another team, same cohort as Cy
     |- Hal (E007)              HR admin, manages nobody
     '- Pat (E008)              sits on the L3 engineering panel of 2026-H1

The fixture org's three files plus four more people; drafts written by the offline
drafter for Cy and Fay; one API token per person.
"""

import asyncio
import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from domain.periods import parse_period
from service.access.tokens import issue_token
from service.calibration.panels import create_panel
from service.db.models import Draft, Person, PersonRole
from service.drafting.run import Drafting, draft_person, offline_drafter
from service.ingest.run import Ingestor, ingest_path
from service.settings import Settings
from tests.conftest import FIXTURES

CYCLE = "2026-H1"
CYCLE_PERIOD = parse_period(CYCLE)  # what the code behind the edges takes
EXTRA_PEOPLE = [
    ("E005", "Eve Novak", "eve.novak@example.com", "E001", "L5", "engineering", "woman"),
    ("E006", "Fay Moreau", "fay.moreau@example.com", "E005", "L3", "engineering", "woman"),
    ("E007", "Hal Berg", "hal.berg@example.com", "E001", "L6", "people", "man"),
    ("E008", "Pat Singh", "pat.singh@example.com", "E001", "L6", "engineering", "man"),
]
FAY_RECORD = (
    '{"source": "jira", "external_id": "PAY-301", "kind": "work_record", "subject": "E006", '
    '"occurred_at": "2026-03-02T10:00:00+00:00", "title": "Refund queue", "body": "Cut the '
    'refund backlog from 900 to 120 tickets by automating the duplicate check."}\n'
)


@dataclass
class ApiOrg:
    ids: dict[str, int]  # first name (lower case) -> person id
    tokens: dict[str, str]  # first name -> bearer token
    drafts: dict[str, int] = field(default_factory=dict)  # "cy_self", "cy_feedback", "fay_self"
    panel_id: int = 0

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def write_org(target: Path) -> Path:
    shutil.copytree(FIXTURES / "org", target)
    with (target / "people.csv").open("a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        for eid, name, email, manager, level, family, gender in EXTRA_PEOPLE:
            writer.writerow(
                [
                    eid,
                    name,
                    email,
                    manager,
                    level,
                    family,
                    "Payments",
                    "Remote",
                    "2022-01-10",
                    gender,
                    "white",
                    "30_39",
                ]
            )
    with (target / "records.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(FAY_RECORD)
    return target


def build_api_org(engine: Engine, settings: Settings, ingestor: Ingestor, folder: Path) -> ApiOrg:
    ingest_path(ingestor, write_org(folder))
    with engine.begin() as conn:
        rows = conn.execute(select(Person.id, Person.name)).all()
        ids = {name.split()[0].lower(): pid for pid, name in rows}
        tokens = {
            who: issue_token(conn, pid, days=30, label="test", actor="test").token
            for who, pid in ids.items()
        }
        conn.execute(
            insert(PersonRole).values(person_id=ids["hal"], role="hr_admin", granted_by="test")
        )
        panel_id = create_panel(conn, CYCLE_PERIOD, "L3", "engineering", [ids["pat"]], actor="test")
    org = ApiOrg(ids, tokens, panel_id=panel_id)
    run = Drafting(engine, settings, ingestor.embedder(), offline_drafter(), "test")
    for who, kind, key in (
        ("cy", "self_reflection", "cy_self"),
        ("cy", "manager_feedback", "cy_feedback"),
        ("fay", "self_reflection", "fay_self"),
    ):
        with Session(engine) as session:
            person = session.get_one(Person, ids[who])
        outcome = asyncio.run(draft_person(run, person, kind, CYCLE_PERIOD))
        assert outcome.draft_id is not None, outcome.message
        org.drafts[key] = outcome.draft_id
    with engine.connect() as conn:
        assert conn.execute(select(Draft.id)).all()
    return org
