"""HR's view of a started cycle: how far each phase has come by department and by manager,
the overdue tasks, who has not nominated peers, the drafts still waiting for approval and
whether the cycle's bias report is current.

Everything is counted in the database with a few set-based statements (GROUP BY over the
cycle's tasks; one page of the overdue list), never a query per person, so the page stays
fast for a company of thousands. Tasks are grouped by their subject, the person whose
review they serve: "Payments" is how far the reviews of the people in Payments have come,
"Mia Stone" how far those of her direct reports have (whoever the assignee is). A task is
overdue when it is still open and its due day has passed in the cycle's time zone, the
rule "my tasks" uses.

HR only: the surfaces check the role; this module reads whatever it is asked.
"""

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal, TypedDict
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, TypeAdapter, computed_field
from sqlalchemy import Connection, and_, func, literal, select
from sqlalchemy.orm import aliased

from domain.errors import Conflict
from domain.phases import PHASES, CycleStatus, Phase, TaskKind, TaskStatus
from domain.spreadsheet import Cell, csv_text
from service.cycles.release import PhaseClosure, ReleaseLine, closures, releases
from service.cycles.setup_store import CycleNotSetUp
from service.db.models import BiasReport, CycleTask, Person, ReviewCycle
from service.drafting.store import DraftFilter, DraftLine, list_drafts
from service.ratings.workflow import current_report_at, last_rating_change

# Drafts still to approve: "draft" (not checked since its last version) or "checked".
AWAITING_STATUSES = ("draft", "checked")
DRAFTS_SHOWN = 50
NOT_NOMINATED_SHOWN = 100
NO_DEPARTMENT = "(no department)"
NO_MANAGER = "(no manager)"


class CycleNotStarted(Conflict):
    """A draft cycle has no tasks yet: nothing to show until it starts."""


class Counts(BaseModel):
    """Tasks by where they stand; `overdue` are open ones past their due day (so also
    counted in `open`)."""

    done: int = 0
    declined: int = 0
    open: int = 0
    overdue: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        return self.done + self.declined + self.open

    @computed_field  # type: ignore[prop-decorator]
    @property
    def completed_share(self) -> float:
        """Done or declined, of all: a declined request is finished too."""
        return round((self.done + self.declined) / self.total, 4) if self.total else 0.0


class PhaseCounts(Counts):
    phase: Phase


class GroupCompletion(BaseModel):
    """One department's or one manager's reviews, phase by phase (phases without tasks
    for the group left out) and in all."""

    group: str = Field(description="The department, or the manager's name.")
    manager_id: int | None = Field(default=None, description="For a manager's row.")
    phases: list[PhaseCounts]
    all: Counts


class OverdueTask(BaseModel):
    task_id: int
    kind: TaskKind
    phase: Phase
    assignee_id: int
    assignee: str
    subject_id: int
    subject: str
    department: str
    due_on: date
    days_late: int = Field(description="Whole days past the due day, in the cycle's zone.")


class OverduePage(BaseModel):
    items: list[OverdueTask]
    total: int
    limit: int
    offset: int


class NotNominated(BaseModel):
    """A participant whose peer list is still short (their nominate_peers task open)."""

    person_id: int
    name: str
    employee_id: str
    department: str
    manager: str | None
    due_on: date
    overdue: bool


class BiasReportState(BaseModel):
    """Whether the cycle's bias report has seen the ratings as they are: `none` never run,
    `stale` a rating changed after the latest run (calibration cannot close), `current`."""

    state: Literal["none", "current", "stale"]
    version: int | None
    created_at: datetime | None
    last_rating_change: datetime | None


class Dashboard(BaseModel):
    cycle: str = Field(examples=["2026-H2"])
    title: str
    time_zone: str
    today: date = Field(description="Today in the cycle's time zone: overdue is judged by it.")
    phases: list[PhaseCounts]
    by_department: list[GroupCompletion]
    by_manager: list[GroupCompletion] = Field(
        description="By name; where `managers` was asked, that many with the most overdue."
    )
    by_manager_total: int = Field(description="Managers with reports in the cycle.")
    overdue: OverduePage
    not_nominated: list[NotNominated] = Field(
        description=f"The first {NOT_NOMINATED_SHOWN}, soonest due and by name."
    )
    not_nominated_total: int
    drafts_awaiting: list[DraftLine] = Field(
        description=f"Drafts of the cycle's period not yet approved, newest first (at most "
        f"{DRAFTS_SHOWN})."
    )
    drafts_awaiting_total: int
    bias_report: BiasReportState
    closed: list[PhaseClosure] = Field(description="The phases HR closed, in phase order.")
    releases: list[ReleaseLine] = Field(description="Releases so far, oldest first.")

    @property
    def calibration_closed(self) -> PhaseClosure | None:
        return next((c for c in self.closed if c.phase == Phase.CALIBRATION), None)

    @property
    def released_to_everyone(self) -> bool:
        return any(r.department is None for r in self.releases)


# --- the parts ------------------------------------------------------------------------------


def today_in(time_zone: str, now: datetime) -> date:
    """The calendar day `now` falls on in the cycle's zone."""
    return now.astimezone(ZoneInfo(time_zone)).date()


def _counts(today: date) -> list[Any]:
    overdue = and_(CycleTask.status == TaskStatus.OPEN, CycleTask.due_on < today)
    return [
        func.count().filter(CycleTask.status == TaskStatus.DONE).label("done"),
        func.count().filter(CycleTask.status == TaskStatus.DECLINED).label("declined"),
        func.count().filter(CycleTask.status == TaskStatus.OPEN).label("open"),
        func.count().filter(overdue).label("overdue"),
    ]


_SUBJECT = aliased(Person, name="subject")
_MANAGER = aliased(Person, name="manager")
_ASSIGNEE = aliased(Person, name="assignee")
Tally = dict[Phase, list[int]]  # phase -> [done, declined, open, overdue]


class _CountsData(TypedDict):
    done: int
    declined: int
    open: int
    overdue: int


class _PhaseData(_CountsData):
    phase: Phase


class _GroupData(TypedDict):
    group: str
    manager_id: int | None
    phases: list[_PhaseData]
    all: _CountsData


def _add(tally: Tally, phase: Phase, counts: Sequence[int]) -> None:
    into = tally.setdefault(phase, [0, 0, 0, 0])
    for index, n in enumerate(counts):
        into[index] += n


def _phases_of(tally: Tally) -> list[_PhaseData]:
    return [
        _PhaseData(phase=p, done=c[0], declined=c[1], open=c[2], overdue=c[3])
        for p in PHASES
        if (c := tally.get(p)) is not None
    ]


def _group(name: str, tally: Tally, manager_id: int | None = None) -> _GroupData:
    """A group's counts as plain data, phases in their running order: validated into
    models all at once (pydantic-core builds hundreds of groups faster than Python)."""
    c = [0, 0, 0, 0]
    for counts in tally.values():
        c[0] += counts[0]
        c[1] += counts[1]
        c[2] += counts[2]
        c[3] += counts[3]
    return _GroupData(
        group=name,
        manager_id=manager_id,
        phases=_phases_of(tally),
        all=_CountsData(done=c[0], declined=c[1], open=c[2], overdue=c[3]),
    )


_GROUPS = TypeAdapter(list[GroupCompletion])
_PHASE_COUNTS = TypeAdapter(list[PhaseCounts])


def completion(
    connection: Connection, cycle_id: int, today: date, *, managers: int | None = None
) -> tuple[list[PhaseCounts], list[GroupCompletion], list[GroupCompletion], int]:
    """Counts per phase over the whole cycle, by the subject's department and by their
    manager: ONE grouped statement over the cycle's tasks (by phase, department and
    manager: a few thousand rows for a company of thousands), rolled up here, and one for
    the managers' names. `managers` keeps only that many managers, those with the most
    overdue tasks first (a page that cannot show hundreds); how many there are is last."""
    rows = connection.execute(
        select(
            CycleTask.phase,
            _SUBJECT.department,
            _SUBJECT.manager_id,
            *_counts(today),
        )
        .join(_SUBJECT, _SUBJECT.id == CycleTask.subject_id)
        .where(CycleTask.cycle_id == cycle_id)
        .group_by(CycleTask.phase, _SUBJECT.department, _SUBJECT.manager_id)
    ).all()
    overall: Tally = {}
    departments: dict[str, Tally] = {}
    by_manager_tally: dict[int | None, Tally] = {}
    for row in rows:
        phase = Phase(row.phase)
        counts = (int(row.done), int(row.declined), int(row.open), int(row.overdue))
        _add(overall, phase, counts)
        _add(departments.setdefault(row.department or NO_DEPARTMENT, {}), phase, counts)
        _add(by_manager_tally.setdefault(row.manager_id, {}), phase, counts)
    total = len(by_manager_tally)
    if managers is not None:
        worst = sorted(by_manager_tally, key=lambda i: (_overdue_of(by_manager_tally[i]), i or 0))
        by_manager_tally = {i: by_manager_tally[i] for i in worst[:managers]}
    ids = [i for i in by_manager_tally if i is not None]
    names: dict[int | None, str] = {None: NO_MANAGER}
    if ids:
        found = connection.execute(select(Person.id, Person.name).where(Person.id.in_(ids)))
        names.update({r.id: r.name for r in found})
    by_department = [_group(name, departments[name]) for name in sorted(departments)]
    by_manager = [
        _group(names.get(i, f"person {i}"), by_manager_tally[i], i)
        for i in sorted(by_manager_tally, key=lambda i: (names.get(i, ""), i or 0))
    ]
    return (
        _PHASE_COUNTS.validate_python(_phases_of(overall)),
        _GROUPS.validate_python(by_department),
        _GROUPS.validate_python(by_manager),
        total,
    )


def _overdue_of(tally: Tally) -> int:
    """Sort key: most overdue first."""
    return -sum(c[3] for c in tally.values())


def overdue_tasks(
    connection: Connection, cycle_id: int, today: date, *, limit: int | None, offset: int = 0
) -> OverduePage:
    """The open tasks past their due day, most days late first (then in the order they
    were made); a page of them (`limit` None: all, for the CSV) and how many there are.
    The page is chosen from the tasks alone and only its rows are joined to the people's
    names: thousands of overdue tasks are counted and ranked without joining each."""
    where = (
        CycleTask.cycle_id == cycle_id,
        CycleTask.status == TaskStatus.OPEN,
        CycleTask.due_on < today,
    )
    total = connection.execute(select(func.count()).where(*where)).scalar_one()
    chosen = select(CycleTask.id).where(*where).order_by(CycleTask.due_on, CycleTask.id)
    chosen = chosen.offset(offset) if limit is None else chosen.offset(offset).limit(limit)
    page = chosen.subquery()
    rows = connection.execute(
        select(
            CycleTask.id.label("task_id"),
            CycleTask.kind,
            CycleTask.phase,
            CycleTask.assignee_id,
            _ASSIGNEE.name.label("assignee"),
            CycleTask.subject_id,
            _SUBJECT.name.label("subject"),
            func.coalesce(_SUBJECT.department, NO_DEPARTMENT).label("department"),
            CycleTask.due_on,
            (literal(today) - CycleTask.due_on).label("days_late"),
        )
        .join(page, page.c.id == CycleTask.id)
        .join(_ASSIGNEE, _ASSIGNEE.id == CycleTask.assignee_id)
        .join(_SUBJECT, _SUBJECT.id == CycleTask.subject_id)
        .order_by(CycleTask.due_on, CycleTask.id)
    )
    items = [OverdueTask.model_validate(r._mapping) for r in rows]
    return OverduePage(items=items, total=int(total), limit=limit or len(items), offset=offset)


def not_nominated(
    connection: Connection, cycle_id: int, today: date, *, limit: int = NOT_NOMINATED_SHOWN
) -> tuple[list[NotNominated], int]:
    """Participants whose nominate_peers task is still open: soonest due, then by name."""
    where = (
        CycleTask.cycle_id == cycle_id,
        CycleTask.kind == TaskKind.NOMINATE_PEERS,
        CycleTask.status == TaskStatus.OPEN,
    )
    total = connection.execute(select(func.count()).where(*where)).scalar_one()
    rows = connection.execute(
        select(
            _SUBJECT.id.label("person_id"),
            _SUBJECT.name,
            _SUBJECT.employee_id,
            func.coalesce(_SUBJECT.department, NO_DEPARTMENT).label("department"),
            _MANAGER.name.label("manager"),
            CycleTask.due_on,
            (CycleTask.due_on < today).label("overdue"),
        )
        .join(_SUBJECT, _SUBJECT.id == CycleTask.subject_id)
        .outerjoin(_MANAGER, _MANAGER.id == _SUBJECT.manager_id)
        .where(*where)
        .order_by(CycleTask.due_on, _SUBJECT.name, _SUBJECT.id)
        .limit(limit)
    )
    return [NotNominated.model_validate(r._mapping) for r in rows], int(total)


def drafts_awaiting(connection: Connection, period: str) -> tuple[list[DraftLine], int]:
    """The period's drafts not yet approved, newest change first, with their open flags
    (the drafting store's list, once per status)."""
    lines: list[DraftLine] = []
    total = 0
    for status in AWAITING_STATUSES:
        page, count = list_drafts(
            connection, DraftFilter(period=period, status=status), limit=DRAFTS_SHOWN, offset=0
        )
        lines += page
        total += count
    lines.sort(key=lambda d: (d.updated_at, d.id), reverse=True)
    return lines[:DRAFTS_SHOWN], total


def bias_report_state(connection: Connection, cycle: str) -> BiasReportState:
    """Whether the report is current by the one rule finalising a rating and closing
    calibration hold it to (service.ratings.workflow.current_report_at); stale when a run
    exists but a rating changed after it."""
    latest = connection.execute(
        select(BiasReport.version, BiasReport.created_at)
        .where(BiasReport.cycle == cycle)
        .order_by(BiasReport.version.desc())
        .limit(1)
    ).one_or_none()
    changed = last_rating_change(connection, cycle)
    if latest is None:
        state: Literal["none", "current", "stale"] = "none"
    else:
        state = "stale" if current_report_at(connection, cycle) is None else "current"
    return BiasReportState(
        state=state,
        version=None if latest is None else latest.version,
        created_at=None if latest is None else latest.created_at,
        last_rating_change=changed,
    )


# --- the whole ------------------------------------------------------------------------------


def _started(connection: Connection, cycle: str) -> tuple[int, str, str]:
    """The cycle's id, title and zone (one indexed row, not the whole set-up); CycleNotSetUp
    (404) or CycleNotStarted (409)."""
    row = connection.execute(
        select(ReviewCycle.id, ReviewCycle.title, ReviewCycle.time_zone, ReviewCycle.status).where(
            ReviewCycle.name == cycle
        )
    ).one_or_none()
    if row is None or row.status is None:
        raise CycleNotSetUp(f"cycle {cycle} has no set-up", field="cycle")
    if row.status != CycleStatus.STARTED:
        raise CycleNotStarted(
            f"cycle {cycle} has not started: its dashboard fills once it starts", field="cycle"
        )
    return int(row.id), str(row.title), str(row.time_zone)


def dashboard(
    connection: Connection,
    cycle: str,
    *,
    now: datetime,
    limit: int = 50,
    offset: int = 0,
    managers: int | None = None,
) -> Dashboard:
    """The whole dashboard of a started cycle, with one page of the overdue list (and,
    where `managers` is given, only that many managers: those with the most overdue)."""
    cycle_id, title, zone = _started(connection, cycle)
    today = today_in(zone, now)
    phases, by_department, by_manager, managers_total = completion(
        connection, cycle_id, today, managers=managers
    )
    nominees, nominees_total = not_nominated(connection, cycle_id, today)
    drafts, drafts_total = drafts_awaiting(connection, cycle)
    return Dashboard(
        cycle=cycle,
        title=title,
        time_zone=zone,
        today=today,
        phases=phases,
        by_department=by_department,
        by_manager=by_manager,
        by_manager_total=managers_total,
        overdue=overdue_tasks(connection, cycle_id, today, limit=limit, offset=offset),
        not_nominated=nominees,
        not_nominated_total=nominees_total,
        drafts_awaiting=drafts,
        drafts_awaiting_total=drafts_total,
        bias_report=bias_report_state(connection, cycle),
        closed=closures(connection, cycle),
        releases=releases(connection, cycle),
    )


CSV_HEADER = (
    "section",
    "group",
    "phase",
    "done",
    "declined",
    "open",
    "overdue",
    "task",
    "assignee",
    "subject",
    "due_on",
    "days_late",
)


def dashboard_csv(connection: Connection, cycle: str, *, now: datetime) -> str:
    """Completion by department and by manager (a row per group and phase, and one for
    all phases), then every overdue task, in one table a spreadsheet opens safely
    (domain.spreadsheet neutralises formula-looking names)."""
    cycle_id, _, zone = _started(connection, cycle)
    today = today_in(zone, now)
    _, by_department, by_manager, _ = completion(connection, cycle_id, today)
    rows: list[tuple[Cell, ...]] = []
    for section, groups in (("department", by_department), ("manager", by_manager)):
        for g in groups:
            for part in (*g.phases, g.all):
                phase = part.phase.value if isinstance(part, PhaseCounts) else "all"
                counts = (part.done, part.declined, part.open, part.overdue)
                rows.append((section, g.group, phase, *counts, None, None, None, None, None))
    blank = (None, None, None, None)
    for t in overdue_tasks(connection, cycle_id, today, limit=None).items:
        what = (t.kind.value, t.assignee, t.subject, t.due_on, t.days_late)
        rows.append(("overdue", t.department, t.phase.value, *blank, *what))
    return csv_text(CSV_HEADER, rows)
