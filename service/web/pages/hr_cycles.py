"""HR's cycle pages: the list of cycles (set up a new one, start a draft, copy one to the
next period), a cycle's set-up form, and a started cycle's dashboard (completion by
department and by manager, the overdue list, who has not nominated peers, drafts awaiting
approval, the bias report's state, CSV download, closing calibration and releasing).

The set-up form posts to the same service functions as the API (service.cycles.setup_store)
through the same models and checks (service.cycles.setup), so a value the API refuses is
refused here with the same field and reason. A refusal re-renders the form with what was
typed and each reason next to its field (422): an error that loses nothing. The write is
made in a savepoint, so a refused set-up leaves nothing behind. HR only; anyone else is
told the page needs the role (403), like the API's HR endpoints.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import Connection, func, select
from starlette.datastructures import FormData

from domain.errors import Conflict, Invalid
from domain.periods import PeriodError, parse_period
from domain.phases import CYCLE_REVIEWS, PHASES, CycleReview, CycleStatus, Phase
from service.cycles.dashboard import (
    NO_DEPARTMENT,
    Counts,
    GroupCompletion,
    dashboard,
    dashboard_csv,
)
from service.cycles.setup import CycleSetupIn, CycleSetupPatch
from service.cycles.setup_store import (
    StoredSetup,
    copy_cycle,
    create_cycle,
    cycle_setup,
    start_cycle,
    update_setup,
)
from service.db.models import CycleTask, ReviewCycle
from service.http.deps import ConnectionDep
from service.http.downloads import csv_download
from service.http.params import required_period
from service.web.flash import back_to, redirect_with
from service.web.session import PagePrincipal, SameOrigin, require_hr
from service.web.templating import render

router = APIRouter(include_in_schema=False)
OVERDUE_PAGE = 50
MANAGERS_SHOWN = 25
DEFAULT_LABELS = ["Below expectations", "Partially meets", "Meets", "Exceeds", "Exceptional"]
LIST_FIELDS = ("participants.departments", "participants.levels", "participants.job_families")
# The form's fields, and the groups a refusal may name instead of one field.
FIELDS = (
    "period",
    "title",
    "time_zone",
    "participants.cutoff",
    *LIST_FIELDS,
    "reviews",
    "scale.min",
    "scale.max",
    "scale.labels",
    *(f"phases.{p}.{end}" for p in PHASES for end in ("opens", "due")),
)
GROUPS = ("participants", "scale", "phases", "questions")
PHASE_TITLES = {p: p.value.replace("_", " ").capitalize() for p in PHASES}
# How the form names its fields in the list of problems above it.
FIELD_LABELS = {
    "period": "Period it reviews",
    "title": "Title",
    "time_zone": "Time zone",
    "participants.cutoff": "Cut-off day",
    "participants.departments": "Departments",
    "participants.levels": "Levels",
    "participants.job_families": "Job families",
    "reviews": "Reviews asked",
    "scale.min": "Lowest rating",
    "scale.max": "Highest rating",
    "scale.labels": "Rating labels",
    "participants": "Participants",
    "scale": "Rating scale",
    "phases": "Phases",
    "questions": "Questions",
    **{f"phases.{p}.{end}": f"{PHASE_TITLES[p]} {end}" for p in PHASES for end in ("opens", "due")},
}
REVIEW_TITLES = {r: r.value.replace("_", " ").capitalize() for r in CYCLE_REVIEWS}


# --- the list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CycleRow:
    period: str
    title: str
    status: str
    tasks: int
    started_at: datetime | None


def cycle_rows(connection: Connection) -> list[CycleRow]:
    """Every set-up cycle with its task count, newest period first: one query."""
    tasks = (
        select(CycleTask.cycle_id, func.count().label("n")).group_by(CycleTask.cycle_id).subquery()
    )
    rows = connection.execute(
        select(
            ReviewCycle.name,
            ReviewCycle.title,
            ReviewCycle.status,
            ReviewCycle.started_at,
            func.coalesce(tasks.c.n, 0).label("tasks"),
        )
        .outerjoin(tasks, tasks.c.cycle_id == ReviewCycle.id)
        .where(ReviewCycle.status.is_not(None))
        .order_by(ReviewCycle.name.desc())
    )
    return [CycleRow(r.name, r.title or r.name, r.status, int(r.tasks), r.started_at) for r in rows]


@router.get("/hr/cycles")
def cycles_page(request: Request, principal: PagePrincipal, connection: ConnectionDep) -> Response:
    require_hr(principal)
    return render(request, "hr_cycles.html.j2", cycles=cycle_rows(connection))


@router.post(
    "/hr/cycles/{cycle}/start", dependencies=[SameOrigin, back_to("/hr/cycles/{cycle}/setup")]
)
def start(cycle: str, principal: PagePrincipal, connection: ConnectionDep) -> Response:
    require_hr(principal)
    name = required_period(cycle, field="cycle").name
    summary = start_cycle(connection, name, actor=principal.actor)
    tasks = sum(summary.tasks.values())
    return redirect_with(
        f"/hr/cycles/{name}/dashboard",
        notice=f"Started {name}: {tasks} tasks for {summary.participants} participants.",
    )


@router.post("/hr/cycles/{cycle}/copy", dependencies=[SameOrigin, back_to("/hr/cycles")])
def copy(
    cycle: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    period: Annotated[str, Form(max_length=64)],
) -> Response:
    require_hr(principal)
    source = required_period(cycle, field="cycle").name
    target = required_period(period, field="period")
    copy_cycle(connection, source, target, actor=principal.actor)
    return redirect_with(
        f"/hr/cycles/{target.name}/setup",
        notice=f"Copied {source} to {target.name}, dates shifted: check them, then start it.",
    )


# --- the set-up form ------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupForm:
    """What the form shows: the values as typed (or stored), the reviews ticked, and the
    reason for each field refused, keyed by the field's name (`phases.calibration.due`)."""

    values: dict[str, str]
    reviews: list[str]
    errors: dict[str, str] = field(default_factory=dict)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def stored_form(stored: StoredSetup) -> SetupForm:
    values = {
        "period": stored.period,
        "title": stored.title,
        "time_zone": stored.time_zone,
        "participants.cutoff": stored.participants.cutoff.isoformat(),
        "participants.departments": "\n".join(stored.participants.departments),
        "participants.levels": "\n".join(stored.participants.levels),
        "participants.job_families": "\n".join(stored.participants.job_families),
        "scale.min": str(stored.scale.min),
        "scale.max": str(stored.scale.max),
        "scale.labels": "\n".join(stored.scale.labels),
    }
    for phase, dates in stored.phases.items():
        values[f"phases.{phase}.opens"] = dates.opens.isoformat()
        values[f"phases.{phase}.due"] = dates.due.isoformat()
    return SetupForm(values, [r.value for r in stored.reviews])


def blank_form(period: str = "") -> SetupForm:
    """A new cycle's form: every review asked, a 1-5 scale with the usual labels."""
    values = {
        "period": period,
        "time_zone": "UTC",
        "scale.min": "1",
        "scale.max": "5",
        "scale.labels": "\n".join(DEFAULT_LABELS),
    }
    return SetupForm(values, [r.value for r in CYCLE_REVIEWS])


def posted_form(form: FormData) -> SetupForm:
    """The form as posted: every known field's text (nothing else is read)."""
    values = {}
    for name in FIELDS:
        raw = form.get(name)
        values[name] = raw if isinstance(raw, str) else ""
    reviews = [r for r in form.getlist("reviews") if isinstance(r, str)]
    return SetupForm(values, reviews)


def _number(text: str) -> int | str:
    """A scale bound as a number where it is one; otherwise the text, for the model to
    refuse with its reason."""
    try:
        return int(text.strip())
    except ValueError:
        return text


def _phases(values: Mapping[str, str]) -> dict[str, dict[str, str | None]]:
    """The phases given a date (a phase with neither left out: the check names it if the
    reviews need it)."""
    out: dict[str, dict[str, str | None]] = {}
    for phase in PHASES:
        opens, due = values[f"phases.{phase}.opens"], values[f"phases.{phase}.due"]
        if opens.strip() or due.strip():
            out[phase.value] = {"opens": opens.strip() or None, "due": due.strip() or None}
    return out


def setup_document(form: SetupForm) -> dict[str, object]:
    """The form as the API's body (CycleSetupIn's fields)."""
    v = form.values
    return {
        "title": v["title"],
        "time_zone": v["time_zone"].strip(),
        "participants": {
            "cutoff": v["participants.cutoff"].strip() or None,
            **{name.split(".")[1]: _lines(v[name]) for name in LIST_FIELDS},
        },
        "reviews": form.reviews,
        "scale": {
            "min": _number(v["scale.min"]),
            "max": _number(v["scale.max"]),
            "labels": _lines(v["scale.labels"]),
        },
        "phases": _phases(v),
    }


def form_field(where: str | None) -> str:
    """The form field (or group) a refusal names: the longest known prefix of its path
    (`scale.labels.2` is the labels box); "form" where it names none."""
    parts = (where or "").split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in FIELDS or name in GROUPS:
            return name
    return "form"


def validation_errors(exc: ValidationError) -> dict[str, str]:
    """Every problem of a validation, the first reason for each field."""
    errors: dict[str, str] = {}
    for item in exc.errors():
        where = ".".join(str(p) for p in item["loc"] if p != "[key]")
        errors.setdefault(form_field(where), str(item["msg"]))
    return errors


async def _posted(request: Request) -> FormData:
    """The form's fields (read once, as a dependency, so the route itself stays sync)."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(_posted)]


def _setup_page(
    request: Request,
    *,
    form: SetupForm,
    period: str | None,
    status: CycleStatus | None,
    questions: Mapping[CycleReview, Sequence[str]],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "hr_cycle_setup.html.j2",
        status_code=status_code,
        period=period,
        status=None if status is None else status.value,
        form=form,
        phases=[(p.value, PHASE_TITLES[p]) for p in PHASES],
        reviews=[(r.value, REVIEW_TITLES[r]) for r in CYCLE_REVIEWS],
        questions=[(REVIEW_TITLES[k], list(v)) for k, v in questions.items()],
        field_labels=FIELD_LABELS,
    )


@router.get("/hr/cycles/new")
def new_cycle_page(
    request: Request,
    principal: PagePrincipal,
    period: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    require_hr(principal)
    return _setup_page(
        request, form=blank_form(period or ""), period=None, status=None, questions={}
    )


@router.post("/hr/cycles", dependencies=[SameOrigin])
def create(
    request: Request, principal: PagePrincipal, connection: ConnectionDep, posted: PostedForm
) -> Response:
    require_hr(principal)
    form = posted_form(posted)
    refused: dict[str, str] = {}
    try:
        target = parse_period(form.values["period"].strip())
    except PeriodError as exc:
        refused["period"] = str(exc)
    try:
        setup = CycleSetupIn.model_validate(setup_document(form))
    except ValidationError as exc:
        refused.update(validation_errors(exc))
    if not refused:
        try:
            with connection.begin_nested():
                create_cycle(connection, target, setup, actor=principal.actor)
        except (Invalid, Conflict) as exc:
            refused[form_field(exc.field)] = str(exc)
        else:
            return redirect_with(
                f"/hr/cycles/{target.name}/setup", notice=f"Set up {target.name} as a draft."
            )
    return _refused(request, form, refused, period=None, status=None, questions={})


def _refused(
    request: Request,
    form: SetupForm,
    errors: dict[str, str],
    *,
    period: str | None,
    status: CycleStatus | None,
    questions: Mapping[CycleReview, Sequence[str]],
) -> Response:
    """The form again, as typed, with every reason next to its field (422)."""
    return _setup_page(
        request,
        form=SetupForm(form.values, form.reviews, errors),
        period=period,
        status=status,
        questions=questions,
        status_code=422,
    )


@router.get("/hr/cycles/{cycle}/setup")
def setup_page(
    cycle: str, request: Request, principal: PagePrincipal, connection: ConnectionDep
) -> Response:
    require_hr(principal)
    stored = cycle_setup(connection, required_period(cycle, field="cycle").name)
    return _setup_page(
        request,
        form=stored_form(stored),
        period=stored.period,
        status=stored.status,
        questions=stored.questions,
    )


@router.post("/hr/cycles/{cycle}/setup", dependencies=[SameOrigin])
def change_setup(
    cycle: str,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    posted: PostedForm,
) -> Response:
    """Save the form: the whole set-up of a draft; a started cycle's phase dates only (its
    other fields are shown but not sent)."""
    require_hr(principal)
    stored = cycle_setup(connection, required_period(cycle, field="cycle").name)
    form = posted_form(posted)
    if stored.status is CycleStatus.STARTED:
        kept = stored_form(stored)
        dates = {k: v for k, v in form.values.items() if k.startswith("phases.")}
        form = SetupForm({**kept.values, **dates, "period": stored.period}, kept.reviews)
    refused: dict[str, str] = {}
    try:
        with connection.begin_nested():
            update_setup(connection, stored.period, _patch(form, stored), actor=principal.actor)
    except ValidationError as exc:
        refused = validation_errors(exc)
    except (Invalid, Conflict) as exc:
        refused = {form_field(exc.field): str(exc)}
    if refused:
        form = SetupForm({**form.values, "period": stored.period}, form.reviews)
        return _refused(
            request,
            form,
            refused,
            period=stored.period,
            status=stored.status,
            questions=stored.questions,
        )
    return redirect_with(f"/hr/cycles/{stored.period}/setup", notice="Set-up saved.")


def _patch(form: SetupForm, stored: StoredSetup) -> CycleSetupPatch:
    """The form as a change: every field of a draft; phase dates alone once started."""
    document = setup_document(form)
    if stored.status is CycleStatus.STARTED:
        return CycleSetupPatch.model_validate({"phases": document["phases"] or None})
    return CycleSetupPatch.model_validate(document)


# --- the dashboard --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class CompletionRow:
    """One department's or manager's row: a cell per phase shown, then all phases."""

    group: str
    cells: list[str]


def _cell(counts: Counts) -> str:
    """ "7 of 11 (1 declined), 3 overdue": finished (done or declined) of all."""
    text = f"{counts.done + counts.declined} of {counts.total}"
    if counts.declined:
        text += f" ({counts.declined} declined)"
    if counts.overdue:
        text += f", {counts.overdue} overdue"
    return text


def completion_rows(
    groups: Sequence[GroupCompletion], phases: Sequence[Phase]
) -> list[CompletionRow]:
    """The table's text, made here rather than by template macros: a company of thousands
    has hundreds of managers, and the page must stay fast (evals/bench_cycle.py)."""
    rows = []
    for group in groups:
        by_phase = {c.phase: c for c in group.phases}
        cells = [_cell(by_phase[p]) if p in by_phase else "—" for p in phases]
        rows.append(CompletionRow(group.group, [*cells, _cell(group.all)]))
    return rows


@router.get("/hr/cycles/{cycle}/dashboard")
def dashboard_page(
    cycle: str,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    managers: Annotated[Literal["all"] | None, Query()] = None,
) -> Response:
    """Everything of the cycle's dashboard; the MANAGERS_SHOWN managers with the most
    overdue tasks unless all are asked for (hundreds of rows read badly and slowly)."""
    require_hr(principal)
    name = required_period(cycle, field="cycle").name
    board = dashboard(
        connection,
        name,
        now=datetime.now(UTC),
        limit=OVERDUE_PAGE,
        offset=(page - 1) * OVERDUE_PAGE,
        managers=None if managers == "all" else MANAGERS_SHOWN,
    )
    total = board.overdue.total
    departments = [g.group for g in board.by_department if g.group != NO_DEPARTMENT]
    phases = [c.phase for c in board.phases]
    return render(
        request,
        "hr_cycle_dashboard.html.j2",
        board=board,
        phase_titles={p.value: t for p, t in PHASE_TITLES.items()},
        phases=[p.value for p in phases],
        by_department=completion_rows(board.by_department, phases),
        by_manager=completion_rows(board.by_manager, phases),
        all_managers=managers == "all",
        pager=Pager(page, max(1, -(-total // OVERDUE_PAGE)), total),
        departments=departments,
    )


@router.get("/hr/cycles/{cycle}/dashboard.csv")
def dashboard_csv_file(cycle: str, principal: PagePrincipal, connection: ConnectionDep) -> Response:
    """The API's CSV, for the page's download link (the page's session, not a token)."""
    require_hr(principal)
    name = required_period(cycle, field="cycle").name
    return csv_download(
        dashboard_csv(connection, name, now=datetime.now(UTC)), f"dashboard-{name}.csv"
    )
