"""A review cycle's set-up as HR writes it: the typed shape (pydantic, with a limit on every
string and list) and the checks a shape cannot say (a known time zone, phases in order and
inside the period's bounds, one label per scale point, questions for every review asked).

One model and one check for every surface: the API takes `CycleSetupIn` as its body, the
CLI reads the same fields from a TOML file (`read_setup_file`); both end in `check_setup`,
which raises `Invalid` naming the field (`phases.peer_feedback.due`, `scale.labels`) and
the reason. No database here (the CLI imports this module before anything heavy loads);
service.cycles.setup_store stores what passed.
"""

import tomllib
import unicodedata
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from domain.errors import Invalid
from domain.periods import FIRST_YEAR, Period
from domain.phases import (
    PHASES,
    QUESTIONED_REVIEWS,
    CycleReview,
    Phase,
    needed_phases,
)

DEFAULT_QUESTIONS = Path(__file__).parent / "data" / "questions.toml"
MAX_TITLE = 200
MAX_LABEL = 80
MAX_QUESTION = 300
MAX_QUESTIONS = 10
MAX_FILTER_VALUES = 100
MAX_SCALE_POINTS = 10
MAX_FILE_BYTES = 256 * 1024
# Phase dates run from the period's start to a year after its end: a cycle reviews a
# period while or after it runs, never years later.
LATEST_AFTER_PERIOD = timedelta(days=366)

Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE, examples=["2026 H2 review"])]
Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL, examples=["Meets expectations"])]
Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION)]
Department = Annotated[str, Field(min_length=1, max_length=128)]
Level = Annotated[str, Field(min_length=1, max_length=32)]
JobFamily = Annotated[str, Field(min_length=1, max_length=128)]
Questions = Annotated[list[Question], Field(min_length=1, max_length=MAX_QUESTIONS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParticipantsIn(_Strict):
    """Who takes part: hired on or before `cutoff` (people without a hire date too), and,
    where a list is given, only those in one of its departments, levels and job families."""

    cutoff: date = Field(description="Joiners after this day are not in the cycle.")
    departments: list[Department] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    levels: list[Level] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    job_families: list[JobFamily] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)


class ScaleIn(_Strict):
    """The rating scale: whole numbers `min` to `max` within 1 to 10 (the ratings' own
    bounds), one label for each, lowest first."""

    min: int = Field(ge=1, le=MAX_SCALE_POINTS - 1, strict=True, examples=[1])
    max: int = Field(ge=2, le=MAX_SCALE_POINTS, strict=True, examples=[5])
    labels: list[Label] = Field(
        min_length=2,
        max_length=MAX_SCALE_POINTS,
        examples=[["Below", "Partially meets", "Meets", "Exceeds", "Exceptional"]],
    )


class PhaseDatesIn(_Strict):
    """The day a phase opens and the day its tasks are due, in the cycle's time zone."""

    opens: date
    due: date


class CycleSetupIn(_Strict):
    """Everything HR decides about a cycle before it starts."""

    title: Title
    time_zone: str = Field(
        min_length=1, max_length=64, description="An IANA name.", examples=["Europe/Berlin"]
    )
    participants: ParticipantsIn
    reviews: list[CycleReview] = Field(min_length=1, max_length=len(CycleReview))
    scale: ScaleIn
    questions: dict[CycleReview, Questions] | None = Field(
        default=None,
        description="Questions per review kind; omitted: the built-in questions.",
    )
    phases: dict[Phase, PhaseDatesIn] = Field(
        min_length=1, max_length=len(Phase), description="Each phase's opening and due day."
    )


class CycleSetupPatch(_Strict):
    """A change to a draft cycle's set-up: the fields given replace the stored ones (phases
    one by one). Once the cycle has started, only phase dates may change."""

    title: Title | None = None
    time_zone: str | None = Field(default=None, min_length=1, max_length=64)
    participants: ParticipantsIn | None = None
    reviews: list[CycleReview] | None = Field(
        default=None, min_length=1, max_length=len(CycleReview)
    )
    scale: ScaleIn | None = None
    questions: dict[CycleReview, Questions] | None = None
    phases: dict[Phase, PhaseDatesIn] | None = Field(
        default=None, min_length=1, max_length=len(Phase)
    )


# --- the checks a shape cannot say ----------------------------------------------------------


def check_setup(setup: CycleSetupIn, period: Period) -> CycleSetupIn:
    """The set-up as it will be stored (reviews and filters without repeats, the questions
    of the reviews asked filled from the built-in file when none were given), or Invalid
    naming the first field at fault and why."""
    _check_text("title", setup.title)
    _check_time_zone(setup.time_zone)
    reviews = list(dict.fromkeys(setup.reviews))
    _check_scale(setup.scale)
    questions = _checked_questions(setup.questions, frozenset(reviews))
    _check_phases(setup.phases, frozenset(reviews), period)
    participants = _checked_participants(setup.participants, setup.phases)
    ordered = {p: setup.phases[p] for p in PHASES if p in setup.phases}
    return setup.model_copy(
        update={
            "reviews": reviews,
            "questions": questions,
            "phases": ordered,
            "participants": participants,
        }
    )


def _check_text(field: str, value: str) -> None:
    """One line of text a person reads: something besides spaces, no control characters
    (a NUL the database refuses, an escape a terminal would act on) and no unpaired
    surrogate (not text: it cannot be stored as UTF-8). Markup is text like any other:
    stored and returned as typed, escaped where it is shown."""
    if not value.strip():
        raise Invalid("must not be blank", field=field)
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise Invalid(
            f"U+{ord(bad):04X} is not allowed (a control character or an unpaired surrogate)",
            field=field,
        )


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_time_zone(name: str) -> None:
    if name not in _zones():
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise Invalid(
            f"{shown!r} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)",
            field="time_zone",
        )


def _check_scale(scale: ScaleIn) -> None:
    if scale.min >= scale.max:
        raise Invalid(f"min {scale.min} must be below max {scale.max}", field="scale.max")
    points = scale.max - scale.min + 1
    if len(scale.labels) != points:
        raise Invalid(
            f"{len(scale.labels)} labels for a scale of {points} points "
            f"({scale.min} to {scale.max}): give one label per point",
            field="scale.labels",
        )
    seen: set[str] = set()
    for index, label in enumerate(scale.labels):
        _check_text(f"scale.labels.{index}", label)
        key = label.strip().casefold()
        if key in seen:
            raise Invalid(f"{label!r} labels two points", field=f"scale.labels.{index}")
        seen.add(key)


def _checked_questions(
    given: dict[CycleReview, list[str]] | None, reviews: frozenset[CycleReview]
) -> dict[CycleReview, list[str]]:
    questions = given if given is not None else default_questions()
    for kind, texts in questions.items():
        for index, text in enumerate(texts):
            _check_text(f"questions.{kind}.{index}", text)
    for kind in QUESTIONED_REVIEWS:
        if kind in reviews and not questions.get(kind):
            raise Invalid(
                f"the cycle asks for {kind}: give its questions (1 to {MAX_QUESTIONS})",
                field=f"questions.{kind}",
            )
    return {k: list(questions[k]) for k in CycleReview if k in questions and k in reviews}


def _check_phases(
    phases: dict[Phase, PhaseDatesIn], reviews: frozenset[CycleReview], period: Period
) -> None:
    """Every phase the reviews need, each opening on or before its due day, inside the
    period's bounds, and in the order phases run: none opens or is due before the one
    before it."""
    missing = [p for p in needed_phases(reviews) if p not in phases]
    if missing:
        raise Invalid(
            f"give the dates of {', '.join(missing)} (the reviews asked need them)",
            field=f"phases.{missing[0]}",
        )
    earliest, latest = period.start, period.end + LATEST_AFTER_PERIOD
    previous: tuple[Phase, PhaseDatesIn] | None = None
    for phase in PHASES:
        dates = phases.get(phase)
        if dates is None:
            continue
        for name, day in (("opens", dates.opens), ("due", dates.due)):
            if not earliest <= day <= latest:
                raise Invalid(
                    f"{day} is outside {earliest}..{latest} (from the start of {period.name} "
                    "to a year after its end)",
                    field=f"phases.{phase}.{name}",
                )
        if dates.opens > dates.due:
            raise Invalid(
                f"opens {dates.opens}, after it is due ({dates.due})", field=f"phases.{phase}.due"
            )
        if previous is not None:
            _check_order(previous, (phase, dates))
        previous = (phase, dates)


def _check_order(before: tuple[Phase, PhaseDatesIn], after: tuple[Phase, PhaseDatesIn]) -> None:
    (first, a), (second, b) = before, after
    order = ", ".join(PHASES)
    if b.opens < a.opens:
        raise Invalid(
            f"opens {b.opens}, before {first} opens ({a.opens}); phases run in the order {order}",
            field=f"phases.{second}.opens",
        )
    if b.due < a.due:
        raise Invalid(
            f"due {b.due}, before {first} is due ({a.due}); phases run in the order {order}",
            field=f"phases.{second}.due",
        )


def _checked_participants(
    participants: ParticipantsIn, phases: dict[Phase, PhaseDatesIn]
) -> ParticipantsIn:
    last_due = max(d.due for d in phases.values())
    if not date(FIRST_YEAR, 1, 1) <= participants.cutoff <= last_due:
        raise Invalid(
            f"{participants.cutoff} must fall between {FIRST_YEAR}-01-01 and the last phase's "
            f"due day ({last_due})",
            field="participants.cutoff",
        )
    lists: dict[str, list[str]] = {}
    for name in ("departments", "levels", "job_families"):
        values: list[str] = getattr(participants, name)
        for index, value in enumerate(values):
            _check_text(f"participants.{name}.{index}", value)
        lists[name] = list(dict.fromkeys(values))
    return participants.model_copy(update=lists)


# --- files ------------------------------------------------------------------------------------


class QuestionSet(_Strict):
    questions: Questions


_QUESTIONS_FILE = TypeAdapter(dict[CycleReview, QuestionSet])


def read_questions(path: Path, *, field: str = "questions") -> dict[CycleReview, list[str]]:
    """The questions of a questions file (TOML: one table per review kind, each with a
    `questions` list), or Invalid naming the file's key at fault."""
    document = _toml(path, field=field)
    try:
        parsed = _QUESTIONS_FILE.validate_python(document)
    except ValidationError as exc:
        raise _invalid(exc, prefix=field) from None
    return {kind: list(entry.questions) for kind, entry in parsed.items()}


@cache
def default_questions() -> dict[CycleReview, list[str]]:
    """The built-in questions (service/cycles/data/questions.toml)."""
    return read_questions(DEFAULT_QUESTIONS)


def read_setup_file(path: Path) -> CycleSetupIn:
    """A set-up from a TOML file with the API body's fields; `questions_file` (relative to
    the set-up file) may name a questions file instead of inline `questions`. Shape errors
    are Invalid naming the key, as the API names the body's field."""
    document = _toml(path, field="setup")
    questions_file = document.pop("questions_file", None)
    if questions_file is not None:
        if not isinstance(questions_file, str) or "questions" in document:
            raise Invalid("give a file name, or inline questions, not both", field="questions_file")
        document["questions"] = {
            str(k): v
            for k, v in read_questions(path.parent / questions_file, field="questions_file").items()
        }
    try:
        return CycleSetupIn.model_validate(document)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _toml(path: Path, *, field: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise Invalid(f"cannot read {path.name!r}: {exc.strerror}", field=field) from None
    if len(raw) > MAX_FILE_BYTES:
        raise Invalid(f"{path.name!r} is over {MAX_FILE_BYTES // 1024} KiB", field=field)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise Invalid(f"{path.name!r} is not UTF-8 TOML: {exc}", field=field) from None


def _invalid(exc: ValidationError, *, prefix: str = "") -> Invalid:
    """The first problem of a validation, as Invalid naming its place (`scale.labels.2`)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if p != "[key]")
    field = ".".join(p for p in (prefix, where) if p) or None
    return Invalid(str(first["msg"]), field=field)
