"""What each kind of job does: a registry of plain functions from a payload to a result.

A handler returns a small JSON-able dict (ids and counts, never evidence text) that is
stored as the job's result; raising fails the attempt. Whether another attempt can help is
the error's class's to say (`domain.errors.FairdraftError.permanent`): a bad payload, an
unknown person or a refused file fail the job at once, a model server that is away
(`Unavailable`) or an unexpected error is tried again while attempts remain.
"""

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain.draft_options import TONES, DraftOptions, Tone
from domain.errors import FairdraftError, Invalid
from domain.kinds import DRAFT_KINDS, REVIEW_KINDS
from domain.periods import Period, parse_period
from retrieval.embedding import Embedder
from retrieval.queries import UnknownDraftKind
from service.bias.counterfactual import probe
from service.bias.nlp import SenseParser
from service.bias.report import build_report, check_cycle
from service.calibration.cohort import SUMMARY_KIND
from service.calibration.panels import cohort_people, panel
from service.connectors.registry import build
from service.connectors.sync import run_sync
from service.db.models import Person
from service.drafting.asks import DRAFT_JOB, DRAFT_PANEL_JOB
from service.drafting.llm import DraftingFailed
from service.drafting.run import (
    Drafting,
    DraftOutcome,
    cycle_people,
    draft_cycle,
    draft_person,
    drafter_from,
)
from service.ingest.directory import UnknownPerson
from service.ingest.progress import NoProgress
from service.ingest.run import Ingestor, ingest_path
from service.ingest.summary import IngestSummary
from service.ingest.uploads import remove_upload
from service.metrics import process_metrics
from service.settings import Settings

REFUSED_ROWS_KEPT = 100  # row errors listed in an ingest job's result; the count is exact


class JobRejected(Invalid):
    """The job can never succeed as asked (unknown kind, bad payload): refused or failed
    without retry."""


@dataclass(frozen=True)
class JobContext:
    """What a handler may use: the store, the settings, and who to record as the actor."""

    engine: Engine
    settings: Settings
    actor: str  # e.g. "job:12 for ana.lima@example.com"
    job_id: int
    embedder: Callable[[], Embedder]  # the worker's, loaded on first use
    parser: Callable[[], SenseParser]  # the worker's sense parser, loaded on first use


Handler = Callable[[JobContext, dict[str, Any]], dict[str, Any]]


def describe_error(exc: BaseException) -> str:
    """The message stored with a failed job. Only the messages of fairdraft's own errors are
    kept (composed from names, ids and the asker's values, never evidence); any other error
    (a database error quoting row values, a library error quoting its input) is named by
    type only, so evidence never lands in the jobs table."""
    if isinstance(exc, FairdraftError):
        return exc.reason
    return f"internal error ({type(exc).__name__})"


def is_permanent(exc: BaseException) -> bool:
    """No retry can change the outcome: the error's class says so. Unexpected errors are
    not permanent: the database or a library may fail once and not again."""
    return isinstance(exc, FairdraftError) and exc.permanent


# --- payload checks ---------------------------------------------------------------------


def _field(payload: dict[str, Any], name: str, kind: type, *, default: Any = ...) -> Any:
    """payload[name] checked against a type, or JobRejected naming the field and why. A
    field with a default may also be absent or null."""
    if payload.get(name) is None:
        if default is ...:
            raise JobRejected(f"payload field {name!r} is required")
        return default
    value = payload[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise JobRejected(f"payload field {name!r} must be {kind.__name__}")
    return value


def _draft_kinds(kinds: Sequence[Any]) -> list[str]:
    if not kinds:
        raise JobRejected("payload field 'kinds' must name at least one draft kind")
    unknown = [k for k in kinds if k not in DRAFT_KINDS]
    if unknown:
        raise UnknownDraftKind(f"unknown draft kinds {unknown!r}; use {', '.join(DRAFT_KINDS)}")
    return [str(k) for k in kinds]


def _period(payload: dict[str, Any], name: str = "period") -> Period:
    """The payload's period, parsed here, where the JSON is read, and passed on typed."""
    return parse_period(_field(payload, name, str))


def _drafting(context: JobContext) -> Drafting:
    settings = context.settings
    return Drafting(
        context.engine, settings, context.embedder(), drafter_from(settings), context.actor
    )


def _options(payload: dict[str, Any]) -> DraftOptions:
    """The writer's options a draft job carries (all optional), checked like the rest."""
    window = _field(payload, "evidence_period", str, default=None)
    excluded = _field(payload, "exclude_records", list, default=[])
    if not all(isinstance(r, int) and not isinstance(r, bool) for r in excluded):
        raise JobRejected("payload field 'exclude_records' must be a list of record ids")
    tone = _field(payload, "tone", str, default=None)
    if tone is not None and tone not in TONES:
        raise JobRejected(f"payload field 'tone' must be one of {', '.join(TONES)}")
    return DraftOptions(
        evidence_period=None if window is None else parse_period(window),
        exclude_records=frozenset(excluded),
        tone=None if tone is None else Tone(tone),
    )


# --- the handlers -----------------------------------------------------------------------


def draft_job(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """One draft for one person: {"person_id", "kind", "period"} and the writer's options
    ("evidence_period", "exclude_records", "tone"). DraftingFailed propagates so the attempt
    is recorded as failed (and retried: the model server may recover)."""
    person_id: int = _field(payload, "person_id", int)
    kind = _draft_kinds([_field(payload, "kind", str)])[0]
    period = _period(payload)
    options = _options(payload)
    with Session(context.engine) as session:
        person = session.get(Person, person_id)
    if person is None:
        raise UnknownPerson(f"no person with id {person_id}")
    run = _drafting(context)
    try:
        outcome = asyncio.run(draft_person(run, person, kind, period, options))
    except DraftingFailed:
        _count_drafts(run, [], failed=[kind])
        raise
    _count_drafts(run, [outcome])
    return {
        "draft_id": outcome.draft_id,
        "version": outcome.version,
        "message": outcome.message,
        "note": outcome.note,
    }


def draft_cycle_job(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Drafts for everyone with evidence in the period: {"period", "kinds"}. Finished drafts
    are skipped, so when some fail the job raises and its retry resumes where it stopped."""
    period = _period(payload)
    kinds = _draft_kinds(_field(payload, "kinds", list, default=list(REVIEW_KINDS)))
    run = _drafting(context)
    summary = asyncio.run(
        draft_cycle(run, period, kinds, concurrency=context.settings.llm_concurrency)
    )
    _count_drafts(run, [*summary.drafted, *summary.empty], failed=[k for _, k, _ in summary.failed])
    with context.engine.begin() as conn:  # the stored ones arrive with their flags
        checked = check_cycle(conn, period, actor=context.actor, parser=context.parser())
    if summary.failed:
        email, kind, reason = summary.failed[0]
        raise DraftingFailed(
            f"{len(summary.failed)} drafts failed ({len(summary.drafted)} stored, kept), "
            f"first {kind} for {email}: {reason}"
        )
    return {
        "drafted": len(summary.drafted),
        "skipped": summary.skipped,
        "empty": len(summary.empty),
        "failed": 0,
        "checked": checked,
        "seconds": round(summary.seconds, 3),
    }


def draft_panel_job(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A calibration panel's comparable-evidence summaries, one per person of its cohort
    with evidence in the panel's cycle: {"panel_id"}. Summaries already drafted are kept
    (ask again per person, from the draft, to write one anew)."""
    panel_id: int = _field(payload, "panel_id", int)
    with context.engine.connect() as conn:
        found = panel(conn, panel_id)
        if found is None:
            raise JobRejected(f"no calibration panel {panel_id}")
        cohort = {p.id for p in cohort_people(conn, found)}
    period = parse_period(found.cycle)
    run = _drafting(context)
    summary = asyncio.run(
        draft_cycle(
            run,
            period,
            [SUMMARY_KIND],
            concurrency=context.settings.llm_concurrency,
            only=cohort,
        )
    )
    _count_drafts(run, [*summary.drafted, *summary.empty], failed=[k for _, k, _ in summary.failed])
    if summary.failed:
        raise DraftingFailed(
            f"{len(summary.failed)} summaries failed ({len(summary.drafted)} stored, kept)"
        )
    return {
        "panel_id": panel_id,
        "drafted": len(summary.drafted),
        "skipped": summary.skipped,
        "empty": len(summary.empty),
    }


def bias_report_job(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The cycle's bias report, built and stored in one transaction: {"cycle"}."""
    cycle = _period(payload, "cycle")
    started, outcome = time.perf_counter(), "failed"
    try:
        with context.engine.begin() as conn:
            report = build_report(conn, cycle, actor=context.actor, parser=context.parser())
        outcome = "done"
    finally:
        process_metrics().bias_report(outcome, time.perf_counter() - started)
    return {"version": report.version, "findings": len(report.report.findings)}


def _count_drafts(
    run: Drafting, outcomes: Iterable[DraftOutcome], failed: Sequence[str] = ()
) -> None:
    """Each draft asked for into the metrics: a stored one with its own seconds, one with
    no evidence as empty, one whose drafter failed (by kind) as failed."""
    metrics = process_metrics()
    for outcome in outcomes:
        if outcome.draft_id is None:
            metrics.draft_not_stored(outcome.kind, "empty")
        else:
            seconds = outcome.outside_model_s + outcome.model_s
            metrics.draft(outcome.kind, run.drafter.origin, seconds)
    for kind in failed:
        metrics.draft_not_stored(kind, "failed")


def ingest_job(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Ingest a file or folder: {"path", "format", "skip_invalid", "filename"}. The result
    and any error name the file by `filename` (an upload's own name) or its base name, never
    by where the service keeps it. An upload (a file in uploads_dir) is deleted when the job
    ends, landed or refused: uploads get one attempt, and a refused one is for the sender
    to fix and send again, not to lie about on the server."""
    path = Path(_field(payload, "path", str))
    fmt: str | None = _field(payload, "format", str, default=None)
    skip_invalid: bool = _field(payload, "skip_invalid", bool, default=False)
    label: str = _field(payload, "filename", str, default=None) or path.name
    settings = context.settings
    ingestor = Ingestor(
        context.engine,
        settings,
        actor=context.actor,
        progress=NoProgress(),
        embedder_factory=context.embedder,
    )
    try:
        summaries = ingest_path(ingestor, path, fmt=fmt, skip_invalid=skip_invalid, label=label)
    finally:
        remove_upload(settings, path)
    return {"files": [_summary(s) for s in summaries]}


def _summary(summary: IngestSummary) -> dict[str, Any]:
    """The counts under the file's name, plus the first refused rows by line, field and
    reason."""
    refused = [
        {"line": e.line, "field": e.field, "reason": e.reason}
        for e in summary.refused[:REFUSED_ROWS_KEPT]
    ]
    counts = summary.counts()
    counts["file"] = counts.pop("path")
    return {**counts, "refused_rows": refused}


def bias_probe_job(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The counterfactual probe: {"period", "kind", "sample", "seed"}. The result holds the
    measures' shifts and counts only, not who was sampled: the job's result is read by
    whoever asked, and which swap a person got says something about their name."""
    period = _period(payload)
    kind = _draft_kinds([_field(payload, "kind", str)])[0]
    sample = _field(payload, "sample", int, default=20)
    seed = _field(payload, "seed", int, default=7)
    run = _drafting(context)
    people = cycle_people(context.engine, period, context.settings.embedding_model)
    result = asyncio.run(probe(run, people, kind, period, sample=sample, seed=seed))
    return {
        "kind": result.kind,
        "period": result.period,
        "model": result.model,
        "sample": result.sample,
        "probed": len(result.people),
        "skipped": result.skipped,
        "changed_share": result.changed_share,
        "no_evidence": len(result.no_evidence),
        "failed": len(result.failed),
        "measures": [asdict(m) for m in result.measures],
    }


def sync_connector_job(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """One connector run: {"connector", "full"}. The result is the run's figures; a run
    that paused on a rate limit or failed is a done job whose result says so (the next
    scheduled run resumes), not a retried one."""
    name: str = _field(payload, "connector", str)
    full: bool = _field(payload, "full", bool, default=False)
    connector = build(name, context.settings)
    summary = run_sync(
        context.engine,
        context.settings,
        connector,
        actor=context.actor,
        full=full,
        embedder=context.embedder,
    )
    return summary.report().model_dump()


HANDLERS: dict[str, Handler] = {
    DRAFT_JOB: draft_job,
    "draft_cycle": draft_cycle_job,
    DRAFT_PANEL_JOB: draft_panel_job,
    "bias_report": bias_report_job,
    "bias_probe": bias_probe_job,
    "ingest": ingest_job,
    "sync_connector": sync_connector_job,
}


def register(kind: str, handler: Handler) -> None:
    """Add (or replace) the handler of a kind; for tests and extensions."""
    HANDLERS[kind] = handler


def handler_for(kind: str, handlers: Mapping[str, Handler] = HANDLERS) -> Handler:
    """The handler of a kind, or JobRejected: an unknown kind is refused when it is queued,
    rather than left for a worker that has no task for it."""
    handler = handlers.get(kind)
    if handler is None:
        known = ", ".join(sorted(handlers))
        raise JobRejected(f"unknown job kind {kind!r}; known kinds: {known}")
    return handler
