"""A small company for review-cycle tests, written straight into `people`, and a valid
set-up of 2026-H1 for it.

    Mia (L6, Payments)           manages Al, Bea, Cal and Jo; nobody above her
     |- Al (L3, Payments)        manages Ned
     |   '- Ned (L3, Payments)   no hire date on file: counts as hired
     |- Bea (L4, Payments)
     |- Cal (L3, Risk)
     '- Jo (L3, Payments)        joined 2026-07-15, after the cut-off (2026-06-30)
    Hana (L5, People)            HR admin, no manager

Participants of the full set-up: Mia, Al, Ned, Bea, Cal, Hana (6); Jo is not one.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, insert, select

from domain.periods import parse_period
from service.access.tokens import issue_token
from service.db.models import Person, PersonRole

PERIOD = parse_period("2026-H1")
CUTOFF = date(2026, 6, 30)
PEOPLE = (  # key, name, manager key, level, department, hire date
    ("mia", "Mia Stone", None, "L6", "Payments", date(2020, 1, 6)),
    ("al", "Al Reyes", "mia", "L3", "Payments", date(2022, 3, 1)),
    ("ned", "Ned Park", "al", "L3", "Payments", None),
    ("bea", "Bea Ross", "mia", "L4", "Payments", date(2023, 5, 2)),
    ("cal", "Cal Ibsen", "mia", "L3", "Risk", date(2021, 9, 1)),
    ("jo", "Jo Tanaka", "mia", "L3", "Payments", date(2026, 7, 15)),
    ("hana", "Hana Kim", None, "L5", "People", date(2019, 2, 4)),
)
PHASE_DATES = {
    "self_reflection": ("2026-07-01", "2026-07-10"),
    "peer_feedback": ("2026-07-06", "2026-07-17"),
    "manager_review": ("2026-07-13", "2026-07-24"),
    "calibration": ("2026-07-27", "2026-08-07"),
    "release": ("2026-08-10", "2026-08-12"),
    "sign_off": ("2026-08-12", "2026-08-21"),
}
LABELS = ["Below expectations", "Partially meets", "Meets", "Exceeds", "Exceptional"]


@dataclass
class CycleOrg:
    ids: dict[str, int]
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def key_of(self, person_id: int) -> str:
        return next(k for k, v in self.ids.items() if v == person_id)


def build_cycle_org(engine: Engine) -> CycleOrg:
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        for number, (key, name, manager, level, department, hired) in enumerate(PEOPLE, 1):
            ids[key] = conn.execute(
                insert(Person)
                .values(
                    employee_id=f"C{number:03d}",
                    name=name,
                    email=f"{key}@example.com",
                    manager_id=None if manager is None else ids[manager],
                    level=level,
                    job_family="engineering",
                    department=department,
                    location="Remote",
                    hire_date=hired,
                )
                .returning(Person.id)
            ).scalar_one()
        conn.execute(
            insert(PersonRole).values(person_id=ids["hana"], role="hr_admin", granted_by="t")
        )
        tokens = {
            key: issue_token(conn, pid, days=30, label="test", actor="test").token
            for key, pid in ids.items()
        }
        assert len(conn.execute(select(Person.id)).all()) == len(PEOPLE)
    return CycleOrg(ids, tokens)


def setup_body(**changes: Any) -> dict[str, Any]:
    """A valid set-up of 2026-H1 as the API takes it, with `changes` over it."""
    body: dict[str, Any] = {
        "title": "2026 H1 review",
        "time_zone": "Europe/Lisbon",
        "participants": {"cutoff": CUTOFF.isoformat()},
        "reviews": [
            "self_reflection",
            "peer_feedback",
            "manager_feedback",
            "promotion_packet",
            "calibration",
        ],
        "scale": {"min": 1, "max": 5, "labels": LABELS},
        "phases": {p: {"opens": o, "due": d} for p, (o, d) in PHASE_DATES.items()},
    }
    body.update(changes)
    return body


def start_cycle_org(engine: Engine, **changes: Any) -> CycleOrg:
    """The company with 2026-H1 set up (`setup_body(**changes)`) and started: what most
    cycle tests begin from."""
    from service.cycles.setup import CycleSetupIn
    from service.cycles.setup_store import create_cycle, start_cycle

    org = build_cycle_org(engine)
    with engine.begin() as conn:
        create_cycle(conn, PERIOD, CycleSetupIn.model_validate(setup_body(**changes)), actor="t")
        start_cycle(conn, PERIOD.name, actor="t")
    return org
