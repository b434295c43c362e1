"""The approval gate: draft -> checked -> approved, and finalising ratings.

A draft can be approved only when a bias check of its current version exists (so no edit
came after the check) and every flag of that check is either gone (the text was changed
and checked again: a new check of the new version no longer raises it) or acknowledged by
a named person with a reason. Besides the language flags, the check raises a
`prompt_injection` flag on every sentence that relies on evidence reading as instructions
to a model (it cites such an item, repeats what one asks for, or reads as instructions
itself: `service/drafting/injection_flags.py`), so such a draft is never approved unseen.
A rating can be finalised only after the cycle's bias report (which checks the ratings)
ran on the ratings as they are now. Every transition is an audit event, and a refusal says
exactly what is missing.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from domain.errors import Conflict
from service.audit import audit
from service.bias.language import LanguageProfile, name_words, profile_draft
from service.bias.nlp import SenseParser
from service.bias.stored_language import language_key, stored_language
from service.bias.suggestions import CitedItem, fitted_flags, flag_sources
from service.cycles.approval_tasks import complete_review_task
from service.db.models import (
    Draft,
    DraftCheck,
    FlagAcknowledgement,
    Person,
)
from service.drafting.citations import CitationReport
from service.drafting.injection_flags import (
    InjectionFinding,
    detector_version,
    draft_findings,
    evidence_marks,
)
from service.drafting.store import DraftNotFound, draft_evidence, load_version
from service.drafting.structure import DraftBody

INJECTION_MEASURE = "prompt_injection"


class GateRefused(Conflict):
    """The transition is not allowed yet; the message says what is missing."""


@dataclass(frozen=True)
class CheckResult:
    check_id: int
    draft_id: int
    version: int
    flags: list[dict[str, Any]]
    measures: dict[str, float]


def check_draft(
    connection: Connection, draft_id: int, *, actor: str, parser: SenseParser
) -> CheckResult:
    """Profile the draft's current version, store the check with its flags (keyed F1, F2,
    ...) and its language profile (which the cycle's report reuses) and move a draft in
    `draft` to `checked` (an approved one stays approved: its text has not changed since it
    was approved, which any edit would have undone). `parser` keeps only the flags whose
    phrase describes the draft's person."""
    current = load_version(connection, draft_id)
    names = people_names(connection)
    profile = profile_draft(
        current.body, names, parser=parser, subject=subject_name(connection, draft_id)
    )
    injection = stored_injection(current.citations)
    if injection is None:
        injection = injection_findings(current.body, draft_evidence(connection, draft_id))
    sources = flag_sources(connection, {draft_id: (profile, current.body)})
    flags = draft_flags(profile, injection, current.body, sources.get(draft_id, {}))
    check_id = connection.execute(
        insert(DraftCheck)
        .values(
            draft_id=draft_id,
            version=current.version,
            checked_by=actor,
            profile=profile.measures,
            flags=flags,
            language=stored_language(profile, language_key(parser, names)),
        )
        .returning(DraftCheck.id)
    ).scalar_one()
    status = connection.execute(select(Draft.status).where(Draft.id == draft_id)).scalar_one()
    if status == "draft":  # a re-check of approved text records the check, keeps the approval
        _move(connection, draft_id, "checked", actor, {"check": check_id, "flags": len(flags)})
    return CheckResult(check_id, draft_id, current.version, flags, profile.measures)


def subject_name(connection: Connection, draft_id: int) -> str:
    """The name of the person the draft is about."""
    return connection.execute(
        select(Person.name).join(Draft, Draft.subject_id == Person.id).where(Draft.id == draft_id)
    ).scalar_one()


def people_names(connection: Connection) -> frozenset[str]:
    """Everyone's name words, so a colleague called Harsh is not read as harsh wording."""
    return name_words(connection.execute(select(Person.name)).scalars())


def draft_flags(
    profile: LanguageProfile,
    injection: Sequence[InjectionFinding],
    body: DraftBody,
    sources: Mapping[str, CitedItem],
) -> list[dict[str, Any]]:
    """A check's flags as stored, keyed F1, F2, ... for acknowledgements to name: the
    profile's language flags, each suggestion fitted to its sentence's own evidence (the
    `sources` that `suggestions.flag_sources` reads for the draft), then flags (shaped
    alike) on sentences that rely on evidence reading as instructions to a model. Every
    check, whoever runs it (a person, the cycle's report), stores exactly these."""
    rows = [_injection_row(finding) for finding in injection]
    return keyed(fitted_flags(profile.flags, body, sources, injection) + rows)


def stored_injection(citations: CitationReport) -> list[InjectionFinding] | None:
    """The findings the citation check kept when the version was saved, if the detector
    that read them is today's; None when the version must be read again."""
    if citations.detector != detector_version():
        return None
    return list(citations.injection)


def injection_findings(
    body: DraftBody, evidence: Sequence[Mapping[str, Any]]
) -> list[InjectionFinding]:
    """The version read again against its evidence (a version saved before the detector
    existed, or by another version of it, is checked like a new one)."""
    return draft_findings(body, evidence_marks(evidence))


def keyed(flags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"key": f"F{n}", **flag} for n, flag in enumerate(flags, start=1)]


def _injection_row(finding: InjectionFinding) -> dict[str, Any]:
    return {
        "section": finding.section,
        "sentence": finding.sentence,
        "start": finding.start,
        "end": finding.end,
        "phrase": finding.phrase,
        "measure": INJECTION_MEASURE,
        "suggestion": finding.suggestion,
    }


def latest_check(connection: Connection, draft_id: int) -> Any:
    return connection.execute(
        select(DraftCheck.__table__)
        .where(DraftCheck.draft_id == draft_id)
        .order_by(DraftCheck.id.desc())
        .limit(1)
    ).one_or_none()


def acknowledge_flag(
    connection: Connection, draft_id: int, flag: str, *, by: str, reason: str
) -> None:
    """Keep a flagged phrase on the record, with who decided and why."""
    if not reason.strip():
        raise GateRefused(
            "an acknowledgement needs a reason: say why the wording stays", field="reason"
        )
    if not by.strip():
        raise GateRefused("an acknowledgement needs the name of the person making it")
    check = latest_check(connection, draft_id)
    if check is None or flag not in {f["key"] for f in check.flags}:
        raise GateRefused(f"draft {draft_id} has no flag {flag} on its latest check", field="flag")
    added = connection.execute(
        insert(FlagAcknowledgement)
        .values(check_id=check.id, flag=flag, acknowledged_by=by, reason=reason.strip())
        .on_conflict_do_nothing(index_elements=["check_id", "flag"])
        .returning(FlagAcknowledgement.id)
    ).scalar_one_or_none()
    if added is None:
        raise _already_acknowledged(connection, draft_id, check.id, flag)
    audit(
        connection,
        actor=by,
        action="flag.acknowledged",
        entity="draft",
        entity_id=str(draft_id),
        after={"check": check.id, "flag": flag, "reason": reason.strip()},
    )


def _already_acknowledged(
    connection: Connection, draft_id: int, check_id: int, flag: str
) -> GateRefused:
    """The refusal of a second acknowledgement of one flag, naming the first."""
    first = connection.execute(
        select(FlagAcknowledgement.acknowledged_by, FlagAcknowledgement.reason).where(
            FlagAcknowledgement.check_id == check_id, FlagAcknowledgement.flag == flag
        )
    ).one()
    return GateRefused(
        f"flag {flag} of draft {draft_id} is already acknowledged by {first.acknowledged_by} "
        f"({first.reason!r}); nothing changed",
        field="flag",
    )


def open_flags(connection: Connection, draft_id: int) -> list[dict[str, Any]]:
    """Flags of the latest check that nobody has acknowledged."""
    check = latest_check(connection, draft_id)
    if check is None:
        return []
    acknowledged = set(
        connection.execute(
            select(FlagAcknowledgement.flag).where(FlagAcknowledgement.check_id == check.id)
        ).scalars()
    )
    return [f for f in check.flags if f["key"] not in acknowledged]


def approve_draft(connection: Connection, draft_id: int, *, by: str) -> None:
    draft = connection.execute(
        select(Draft.current_version, Draft.status).where(Draft.id == draft_id)
    ).one_or_none()
    if draft is None:
        raise DraftNotFound(f"no draft {draft_id}")
    if draft.status == "approved":
        raise GateRefused(f"draft {draft_id} is already approved")
    check = latest_check(connection, draft_id)
    if check is None or check.version != draft.current_version:
        raise GateRefused(
            f"draft {draft_id} needs a bias check of its current version "
            f"{draft.current_version} before approval"
        )
    remaining = open_flags(connection, draft_id)
    if remaining:
        keys = ", ".join(f"{f['key']} ({f['measure']}: {f['phrase']!r})" for f in remaining)
        raise GateRefused(
            f"draft {draft_id} has open flags: {keys}. Change the text and check again, or "
            "acknowledge each with a reason"
        )
    _move(connection, draft_id, "approved", by, {"version": draft.current_version})
    complete_review_task(connection, draft_id)  # its cycle task done (issue 16)


def _move(
    connection: Connection, draft_id: int, status: str, actor: str, detail: dict[str, Any]
) -> None:
    before = connection.execute(select(Draft.status).where(Draft.id == draft_id)).scalar_one()
    connection.execute(
        update(Draft).where(Draft.id == draft_id).values(status=status, updated_at=func.now())
    )
    audit(
        connection,
        actor=actor,
        action=f"draft.{status}",
        entity="draft",
        entity_id=str(draft_id),
        before={"status": before},
        after={"status": status, **detail},
    )
