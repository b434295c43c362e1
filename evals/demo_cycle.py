"""The demo's review cycle: set up and started by the demo's HR admin, with dates around
today, so that every cycle page has something to show: everyone's tasks (the employee's
self-reflection due in a few days), the employee's peers nominated, approved and three of
them answered (so the employee sees their feedback, without authors), and a teammate's
request for the employee's own feedback waiting.

Run again on the same store it changes nothing: a cycle already set up is left as it is.
"""

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Connection, select

from domain.periods import Period
from domain.phases import PHASES, CycleReview, Phase
from evals.demo_cast import Cast, OrgPerson, org_people
from retrieval.embedding import Embedder
from service.cycles.nominations import approve_nominations, set_nominations
from service.cycles.peer_feedback import AnswersIn, requests_of, submit
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.db.models import ReviewCycle
from service.ingest.records import ChunkSettings

ANSWERS = Path(__file__).parent / "data" / "demo_peer_answers.toml"
LABELS = ["Below expectations", "Partially meets", "Meets", "Exceeds", "Exceptional"]
# Each phase's (opens, due) in days from today: self-reflections are due in three days,
# peer feedback is open, the manager review and what follows are still to come.
PHASE_DAYS: dict[Phase, tuple[int, int]] = {
    Phase.SELF_REFLECTION: (-14, 3),
    Phase.PEER_FEEDBACK: (-7, 10),
    Phase.MANAGER_REVIEW: (0, 20),
    Phase.CALIBRATION: (21, 30),
    Phase.RELEASE: (31, 33),
    Phase.SIGN_OFF: (33, 45),
}
REVIEWS = [
    CycleReview.SELF_REFLECTION,
    CycleReview.PEER_FEEDBACK,
    CycleReview.MANAGER_FEEDBACK,
    CycleReview.PROMOTION_PACKET,
    CycleReview.CALIBRATION,
]


@dataclass(frozen=True)
class DemoCycle:
    name: str
    tasks: int  # created when it started (0: it was set up by an earlier run)
    answered: int  # peer answers submitted for the employee


def phase_dates(period: Period, today: date) -> dict[str, dict[str, str]]:
    """The phases around `today`, moved earlier as a whole where the last would fall past
    what a cycle of `period` may date (a year after its end)."""
    latest = period.end + timedelta(days=365)
    last_due = today + timedelta(days=max(d for _, d in PHASE_DAYS.values()))
    shift = min(timedelta(0), latest - last_due)
    start = max(today + shift, period.start + timedelta(days=14))
    return {
        str(p): {
            "opens": (start + timedelta(days=PHASE_DAYS[p][0])).isoformat(),
            "due": (start + timedelta(days=PHASE_DAYS[p][1])).isoformat(),
        }
        for p in PHASES
    }


def run_demo_cycle(
    connection: Connection,
    cast: Cast,
    period: Period,
    *,
    today: date,
    actor: str,
    embedder: Callable[[], Embedder],
    chunking: ChunkSettings,
) -> DemoCycle:
    """Set the cycle up and start it, then play the first steps of peer feedback."""
    status = connection.execute(
        select(ReviewCycle.status).where(ReviewCycle.name == period.name)
    ).scalar_one_or_none()
    if status is not None:
        return DemoCycle(period.name, 0, 0)
    setup = CycleSetupIn.model_validate(
        {
            "title": f"{period.name} performance review",
            "time_zone": "UTC",
            "participants": {"cutoff": period.end.isoformat()},
            "reviews": [str(r) for r in REVIEWS],
            "scale": {"min": 1, "max": 5, "labels": LABELS},
            "phases": phase_dates(period, today),
        }
    )
    create_cycle(connection, period, setup, actor=actor)
    tasks = sum(start_cycle(connection, period.name, actor=actor).tasks.values())
    employee = cast.employee.person
    peers = _peers(connection, employee, exclude={cast.manager.person.id})
    _nominate(connection, period.name, employee, peers[:3], actor=actor)
    answered = _answer(connection, period.name, employee, peers[:3], embedder, chunking)
    teammate = next((p for p in cast.team if p.id != employee.id), None)
    if teammate is not None:
        others = [p for p in peers if p.id != teammate.id][:2]
        _nominate(connection, period.name, teammate, [employee, *others], actor=actor)
    return DemoCycle(period.name, tasks, answered)


def _peers(connection: Connection, subject: OrgPerson, *, exclude: set[int]) -> list[OrgPerson]:
    """Who works closest to the subject: their teammates, then their job family."""
    near = [
        p
        for p in org_people(connection)
        if p.id != subject.id
        and p.id not in exclude
        and (p.manager_id == subject.manager_id or p.job_family == subject.job_family)
    ]
    return sorted(near, key=lambda p: (p.manager_id != subject.manager_id, p.employee_id))[:8]


def _nominate(
    connection: Connection,
    cycle: str,
    subject: OrgPerson,
    peers: Sequence[OrgPerson],
    *,
    actor: str,
) -> None:
    ids = [p.id for p in peers]
    set_nominations(connection, cycle, subject.id, ids, actor=actor, by_manager=False)
    approve_nominations(connection, cycle, subject.id, actor=actor)


def _answer(
    connection: Connection,
    cycle: str,
    subject: OrgPerson,
    peers: Sequence[OrgPerson],
    embedder: Callable[[], Embedder],
    chunking: ChunkSettings,
) -> int:
    answers = tomllib.loads(ANSWERS.read_text(encoding="utf-8"))["answers"]
    answered = 0
    for peer, given in zip(peers, answers, strict=False):
        request = next(
            r
            for r in requests_of(connection, peer.id)
            if r.cycle == cycle and r.subject_id == subject.id
        )
        submit(
            connection,
            request.id,
            peer.id,
            AnswersIn(answers=given["texts"]),
            actor=f"demo for {peer.email}",
            embedder=embedder,
            chunking=chunking,
        )
        answered += 1
    return answered
