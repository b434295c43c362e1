"""The cycle's bias report: the language of every draft and the ratings, across groups.

`build_report` reads the drafts of a period (their current versions, and separately the
versions people edited), the ratings of the cycle, the evidence behind them and, from the
restricted table, the demographic attributes. It stores a check of every draft version not
yet checked, compares language profiles and ratings across each attribute, and stores the
report, versioned, with the data it saw. A version's language is profiled once: a check
keeps the profile with the rules and names it was read with (`stored_language.py`), and
later reports rebuild it from there unless the rules or the names changed since. Flagged
findings come first. Group statistics of fewer than MIN_GROUP people are suppressed, and
the report names no person's attributes: only group counts and means, and people by id
where the finding is about their rating.
The report is typed (service/bias/report_model.py): built, stored and read back as one
model, which the API returns and the command line and the HR page render.
"""

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from pydantic import ValidationError
from sqlalchemy import (
    Connection,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
    text,
    true,
    update,
)

from domain.errors import Misconfigured
from domain.periods import Period
from service.audit import audit, audit_rows
from service.bias.evidence_features import features_from_cues
from service.bias.evidence_store import people_cues
from service.bias.gate import draft_flags, injection_findings, people_names, stored_injection
from service.bias.language import MEASURES, RATE_LISTS, LanguageProfile, profile_drafts
from service.bias.nlp import SenseParser
from service.bias.ratings import (
    ManagerLeniency,
    PersonRating,
    adverse_impact,
    check_ratings,
    evidence_adjusted_gap,
    rating_distribution,
)
from service.bias.report_model import (
    AttributeRatings,
    BiasReportBody,
    DataSeen,
    Finding,
    GapFinding,
    ImpactFinding,
    LanguageFinding,
    ManagerFinding,
    MismatchFinding,
    RatingsAnalysis,
    StoredBiasReport,
)
from service.bias.stats import REST, Comparison, adjust, compare_groups
from service.bias.stored_language import (
    LanguageKey,
    language_key,
    reused_profile,
    stored_language,
)
from service.bias.suggestions import flag_sources
from service.bias.wordlists import FLAG_MEASURES
from service.cycles.store import stored_cycle
from service.db.models import (
    BiasReport,
    Draft,
    DraftCheck,
    DraftVersion,
    Person,
    Rating,
)
from service.drafting.citations import CitationReport
from service.drafting.injection_flags import InjectionFinding
from service.drafting.store import drafts_evidence
from service.drafting.structure import DraftBody
from service.ratings.workflow import last_rating_change


@dataclass(frozen=True)
class _Draft:
    draft_id: int
    subject_id: int
    subject_name: str
    kind: str
    version: int
    origin: str
    author: str
    body_json: str  # the version's text as stored, parsed only where it is read (`body`)
    check_id: int | None  # the latest check of the version; None when it was never checked
    language: str | None  # that check's stored language profile (JSON), None before 0010
    citations: str  # the version's citation report as stored (JSON), read when checked here

    @property
    def checked(self) -> bool:
        return self.check_id is not None

    @cached_property
    def body(self) -> DraftBody:
        """Parsed and validated by pydantic-core in one step, when the report profiles or
        checks the version: a report that reuses every profile parses none (a second of a
        cycle's report)."""
        return DraftBody.model_validate_json(self.body_json)


def build_report(
    connection: Connection, period: Period, *, actor: str, parser: SenseParser
) -> StoredBiasReport:
    """Check, compare, store; returns the stored report (with its version). The cycle is
    the one named by `period`. Drafts whose current version was not checked yet are
    checked here as `check_draft` checks them (`parser` keeps the flags whose phrase
    describes the person). A version whose check kept its profile under today's rules and
    names is not profiled again: the report is the same either way."""
    cycle = period.name
    drafts = _drafts(connection, cycle)
    profiles, _ = _checked_profiles(connection, drafts, actor, parser)
    groups = _demographics(connection)
    language, language_found = _language(drafts, profiles, groups)
    ratings = _ratings(connection, cycle, groups)
    body = BiasReportBody(
        cycle=cycle,
        findings=tuple(_findings(language_found, ratings)),
        language=tuple(language),
        ratings=ratings,
    )
    return _store(connection, actor, body, _data_seen(connection, cycle, drafts, groups))


def check_cycle(connection: Connection, period: Period, *, actor: str, parser: SenseParser) -> int:
    """Check every draft of the cycle whose current version has no check yet, exactly as
    the report would, and keep each profile for the report; returns how many were checked.
    The cycle's drafting runs it when it ends, so new drafts arrive with their flags and
    the report that follows profiles only what was edited since."""
    drafts = _drafts(connection, period.name)
    _, fresh = _checked_profiles(connection, drafts, actor, parser)
    return sum(not d.checked for d in fresh)


def _checked_profiles(
    connection: Connection, drafts: Sequence[_Draft], actor: str, parser: SenseParser
) -> tuple[dict[int, LanguageProfile], list[_Draft]]:
    """Every draft's profile, and the drafts profiled now: those never checked get a
    check stored, those checked under other rules or names get their kept profile
    replaced."""
    names = people_names(connection)
    key = language_key(parser, names)
    profiles, fresh = _profiles(drafts, names, key, parser)
    _store_checks(connection, [d for d in fresh if not d.checked], profiles, actor, key)
    _refresh_language(connection, [d for d in fresh if d.checked], profiles, key)
    return profiles, fresh


def latest_report(connection: Connection, cycle: str) -> StoredBiasReport | None:
    """The cycle's latest stored report, or None when it was never run; `Misconfigured`
    when it is stored in a form this version does not read. Read as text and validated by
    pydantic-core in one step, like the drafts above."""
    row = connection.execute(
        select(
            BiasReport.cycle,
            BiasReport.version,
            BiasReport.created_by,
            BiasReport.created_at,
            cast(BiasReport.data_seen, Text).label("data_seen"),
            cast(BiasReport.report, Text).label("report"),
        )
        .where(BiasReport.cycle == cycle)
        .order_by(BiasReport.version.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    try:
        data_seen = DataSeen.model_validate_json(row.data_seen)
        body = BiasReportBody.model_validate_json(row.report)
    except ValidationError:
        # written by another version of fairdraft (a newer format): the operator's to fix
        raise Misconfigured(
            f"bias report {row.version} of {cycle} is stored in a form this version of "
            "fairdraft does not read; run the report again or upgrade fairdraft",
            field="cycle",
        ) from None
    return StoredBiasReport(
        cycle=row.cycle,
        version=row.version,
        created_by=row.created_by,
        created_at=row.created_at,
        data_seen=data_seen,
        report=body,
    )


def _profiles(
    drafts: Sequence[_Draft], names: frozenset[str], key: LanguageKey, parser: SenseParser
) -> tuple[dict[int, LanguageProfile], list[_Draft]]:
    """Each draft's profile, and the drafts profiled now (all in one batch): the others'
    are rebuilt from their check, which kept one read with `key`."""
    profiles: dict[int, LanguageProfile] = {}
    fresh: list[_Draft] = []
    for d in drafts:
        stored = reused_profile(d.language, key)
        if stored is None:
            fresh.append(d)
        else:
            profiles[d.draft_id] = stored
    profiled = profile_drafts([(d.body, d.subject_name) for d in fresh], names, parser=parser)
    profiles.update((d.draft_id, p) for d, p in zip(fresh, profiled, strict=True))
    return profiles, fresh


def _drafts(connection: Connection, cycle: str) -> list[_Draft]:
    """The current version of every draft of the cycle, with the latest check of that
    version and the language profile it kept (one index probe per draft, in one query)."""
    checked = (
        select(DraftCheck.id, cast(DraftCheck.language, Text).label("language"))
        .where(DraftCheck.draft_id == Draft.id, DraftCheck.version == Draft.current_version)
        .order_by(DraftCheck.id.desc())
        .limit(1)
        .lateral("checked")
    )
    rows = connection.execute(
        select(
            Draft.id,
            Draft.subject_id,
            Person.name,
            Draft.kind,
            DraftVersion.version,
            DraftVersion.origin,
            DraftVersion.author,
            # as text, parsed only if profiled (`_Draft.body`): 40% faster than psycopg
            # decoding the JSON and pydantic validating the dicts
            cast(DraftVersion.body, Text).label("body"),
            checked.c.id.label("check_id"),
            checked.c.language,
            cast(DraftVersion.citations, Text).label("citations"),
        )
        .join(DraftVersion, DraftVersion.draft_id == Draft.id)
        .join(Person, Person.id == Draft.subject_id)
        .outerjoin(checked, true())
        .where(Draft.period == cycle, DraftVersion.version == Draft.current_version)
        .order_by(Draft.id)
    ).all()
    return [
        _Draft(
            r.id,
            r.subject_id,
            r.name,
            r.kind,
            r.version,
            r.origin,
            r.author,
            r.body,
            r.check_id,
            r.language,
            r.citations,
        )
        for r in rows
    ]


def _demographics(connection: Connection) -> dict[str, dict[int, str]]:
    """attribute -> person id -> value. The one read of the restricted table outside HR."""
    rows = connection.execute(
        text("SELECT person_id, attribute, value FROM restricted.demographics")
    ).all()
    by_attribute: dict[str, dict[int, str]] = defaultdict(dict)
    for person_id, attribute, value in rows:
        by_attribute[attribute][int(person_id)] = value
    return dict(sorted(by_attribute.items()))


def _store_checks(
    connection: Connection,
    drafts: Sequence[_Draft],
    profiles: Mapping[int, LanguageProfile],
    actor: str,
    key: LanguageKey,
) -> None:
    """One check per draft version the report saw unchecked, in two statements, each
    with the language profile the report read."""
    if not drafts:
        return
    injection = _injection(connection, drafts)
    sources = flag_sources(connection, {d.draft_id: (profiles[d.draft_id], d.body) for d in drafts})
    flags = {
        d.draft_id: draft_flags(
            profiles[d.draft_id], injection[d.draft_id], d.body, sources.get(d.draft_id, {})
        )
        for d in drafts
    }
    rows = [
        {
            "draft_id": d.draft_id,
            "version": d.version,
            "checked_by": actor,
            "profile": profiles[d.draft_id].measures,
            "flags": flags[d.draft_id],
            "language": stored_language(profiles[d.draft_id], key),
        }
        for d in drafts
    ]
    connection.execute(insert(DraftCheck), rows)
    ids = [d.draft_id for d in drafts]
    connection.execute(
        update(Draft)
        .where(Draft.id.in_(ids), Draft.status == "draft")
        .values(status="checked", updated_at=func.now())
    )
    audit_rows(
        connection,
        actor=actor,
        action="draft.checked",
        entity="draft",
        changes=[
            (
                str(d.draft_id),
                None,
                {"version": d.version, "flags": len(flags[d.draft_id])},
            )
            for d in drafts
        ],
    )


def _refresh_language(
    connection: Connection,
    drafts: Sequence[_Draft],
    profiles: Mapping[int, LanguageProfile],
    key: LanguageKey,
) -> None:
    """Keep the profile of each checked version the report profiled again (its check was
    made before migration 0010, or under other rules or names) on that check, so the next
    report reuses it. Only `language` changes: the check's `profile` and `flags` stay what
    the gate and the acknowledgements read."""
    rows = [
        {"check": d.check_id, "stored": stored_language(profiles[d.draft_id], key)}
        for d in drafts
        if d.check_id is not None
    ]
    if not rows:
        return
    table = DraftCheck.__table__
    connection.execute(
        update(DraftCheck)
        .where(DraftCheck.id == bindparam("check"))
        .values(language=bindparam("stored", type_=table.c.language.type)),
        rows,
    )


def _injection(
    connection: Connection, drafts: Sequence[_Draft]
) -> dict[int, list[InjectionFinding]]:
    """Each draft's sentences relying on instructions: as kept when its version was saved,
    or read again against its evidence (fetched in one query) when another detector kept
    them."""
    found: dict[int, list[InjectionFinding]] = {}
    again: list[_Draft] = []
    for d in drafts:
        stored = stored_injection(CitationReport.model_validate_json(d.citations))
        if stored is None:
            again.append(d)
        else:
            found[d.draft_id] = stored
    evidence = drafts_evidence(connection, [d.draft_id for d in again])
    for d in again:
        found[d.draft_id] = injection_findings(d.body, evidence.get(d.draft_id, []))
    return found


Profiled = tuple[int, LanguageProfile]  # (subject's person id, the draft's profile)
COUNT_MEASURES = tuple(m for m in MEASURES if m in RATE_LISTS)  # hits of a word list
MAX_PHRASES = 3  # example phrases a share finding quotes


def _language(
    drafts: Sequence[_Draft],
    profiles: Mapping[int, LanguageProfile],
    groups: Mapping[str, Mapping[int, str]],
) -> tuple[list[Comparison], list[LanguageFinding]]:
    """Each attribute x measure, by draft kind, for all current texts and for the texts
    people edited, and by the author of the edits (does one editor write differently about
    one group?); adjusted (Holm) over the whole family, with the flagged ones as findings.
    Small groups are suppressed, so an author's scope is tested only once they edited for 5
    people of each group compared."""
    scopes: dict[str, list[Profiled]] = defaultdict(list)
    for draft in drafts:
        item = (draft.subject_id, profiles[draft.draft_id])
        scopes[draft.kind].append(item)
        if draft.origin == "edit":
            scopes[f"{draft.kind}/edited"].append(item)
            scopes[f"author:{draft.author}"].append(item)
    language = compare_language(scopes, groups)
    return language, language_findings(language, scopes, groups)


def compare_language(
    scopes: Mapping[str, Sequence[Profiled]], groups: Mapping[str, Mapping[int, str]]
) -> list[Comparison]:
    """Every attribute x scope x measure comparison, adjusted as one family. Count measures
    (the word-list rates) also get the share test (`service.bias.stats.ShareTest`): the share
    of drafts with a hit, and the rate with the words as exposure. Pure, for the evals."""
    family: list[Comparison] = []
    for attribute, members in groups.items():
        for scope, scoped in sorted(scopes.items()):
            labels = [members.get(subject) for subject, _ in scoped]
            words = [p.measures["words"] for _, p in scoped]
            for measure in MEASURES:
                values = [p.measures[measure] for _, p in scoped]
                counted = measure in COUNT_MEASURES
                family += compare_groups(
                    values,
                    labels,
                    attribute=attribute,
                    measure=measure,
                    scope=scope,
                    counts=[hit_count(p, measure) for _, p in scoped] if counted else None,
                    words=words if counted else None,
                )
    return adjust(family)


def hit_count(profile: LanguageProfile, measure: str) -> int:
    """Hits of a rate measure's word list in one draft: the rate per 100 words times the
    words, which the profile already holds (no second scan)."""
    return round(profile.measures[measure] * profile.measures["words"] / 100.0)


def language_findings(
    language: Sequence[Comparison],
    scopes: Mapping[str, Sequence[Profiled]],
    groups: Mapping[str, Mapping[int, str]],
) -> list[LanguageFinding]:
    """The flagged comparisons as findings; a flagged share quotes the commonest phrases of
    the side with more hits (draft text: each surface shows it as plain, escaped text)."""
    found = []
    for c in language:
        if not c.flagged or c.effect_size is None or c.p_adjusted is None:
            continue
        phrases: tuple[str, ...] = ()
        if c.share is not None and c.share.flagged:
            phrases = _phrases(c, scopes.get(c.scope, ()), groups.get(c.attribute, {}))
        found.append(
            LanguageFinding(
                attribute=c.attribute,
                scope=c.scope,
                measure=c.measure,
                focal=c.focal,
                reference=c.reference,
                effect_size=c.effect_size,
                p_adjusted=c.p_adjusted,
                share=c.share,
                phrases=phrases,
            )
        )
    return found


def _phrases(
    c: Comparison, scoped: Sequence[Profiled], members: Mapping[int, str]
) -> tuple[str, ...]:
    """The MAX_PHRASES commonest flagged phrases of the measure's word list (lower case)
    in the drafts of the side with the larger share. Measures whose list raises no flag
    (agentic, standout, ...) quote none; masculine- and feminine-coded share one flag kind
    (gender_coded), so their phrases may mix both lists."""
    flag = FLAG_MEASURES.get(RATE_LISTS.get(c.measure, ""))
    if flag is None or c.share is None:
        return ()
    focal_side = c.share.difference > 0

    def on_side(subject: int) -> bool:
        group = members.get(subject)
        if group is None:
            return False
        if focal_side:
            return group == c.focal
        return group != c.focal if c.reference == REST else group == c.reference

    counted: Counter[str] = Counter()
    for subject, profile in scoped:
        if on_side(subject) and hit_count(profile, c.measure) > 0:
            counted.update(f.phrase.lower() for f in profile.flags if f.measure == flag)
    return tuple(phrase for phrase, _ in counted.most_common(MAX_PHRASES))


def _ratings(
    connection: Connection, cycle: str, groups: Mapping[str, Mapping[int, str]]
) -> RatingsAnalysis:
    found = stored_cycle(connection, cycle)
    if found is None:
        return RatingsAnalysis(
            ratings=0, note=f"no review cycle named {cycle}: no ratings to check"
        )
    people = _rated_people(connection, found.id, found.period)
    if not people:
        return RatingsAnalysis(ratings=0, note=f"cycle {cycle} has no ratings yet")
    scale = (found.low, found.high)
    checked = check_ratings(people)
    return RatingsAnalysis(
        ratings=len(people),
        by_attribute={
            attribute: AttributeRatings(
                distribution=rating_distribution(people, members, scale, attribute=attribute),
                adverse_impact=adverse_impact(
                    people, members, top=scale[1] - 1, attribute=attribute
                ),
                evidence_adjusted_gap=evidence_adjusted_gap(people, members, attribute=attribute),
            )
            for attribute, members in groups.items()
        },
        # one evidence fit and one mixed model for both (issue 14); the ratings inside
        # their prediction interval follow the mismatches, said "not enough evidence"
        managers=tuple(checked.managers),
        mismatched=(*checked.mismatched, *checked.undecided),
    )


def rated_people(connection: Connection, cycle: str) -> list[PersonRating]:
    """The cycle's `PersonRating`s as the report sees them, for other readers of the same
    analyses (calibration panels), so both compare ratings with the same evidence. Empty
    when there is no such cycle."""
    found = stored_cycle(connection, cycle)
    return [] if found is None else _rated_people(connection, found.id, found.period)


def _rated_people(connection: Connection, cycle_id: int, period: Period) -> list[PersonRating]:
    """Each rated person's rating (calibrated when there is one), the rater, and the
    evidence features of their records in the cycle's period."""
    rows = connection.execute(
        select(
            Rating.person_id,
            Rating.rater_id,
            func.coalesce(Rating.calibrated_rating, Rating.rating).label("value"),
        ).where(Rating.cycle_id == cycle_id)
    ).all()
    cues = people_cues(connection, {row.person_id for row in rows}, period)
    return [
        PersonRating(
            person_id=row.person_id,
            manager_id=row.rater_id,
            rating=float(row.value),
            evidence=features_from_cues(cues.get(row.person_id, [])),
        )
        for row in rows
    ]


def _findings(language: Sequence[LanguageFinding], ratings: RatingsAnalysis) -> list[Finding]:
    """What a reader must look at, most important first: each flagged result of the
    analyses, with the attribute it is about where the result itself does not say."""
    found: list[Finding] = list(language)
    for attribute, parts in ratings.by_attribute.items():
        found += [
            ImpactFinding(attribute=attribute, **dict(g))
            for g in parts.adverse_impact.groups
            if g.flagged
        ]
        found += [
            GapFinding(attribute=attribute, **dict(g))
            for g in parts.evidence_adjusted_gap.groups
            if g.flagged
        ]
    found += [
        ManagerFinding(what=_manager_what(m), **dict(m)) for m in ratings.managers if m.flagged
    ]
    found += [
        MismatchFinding(**dict(m)) for m in ratings.mismatched if m.verdict != "not_enough_evidence"
    ]
    return found


def _manager_what(m: ManagerLeniency) -> Literal["manager_harsh", "manager_generous"]:
    return "manager_harsh" if m.direction == "harsh" else "manager_generous"


def _data_seen(
    connection: Connection,
    cycle: str,
    drafts: Sequence[_Draft],
    groups: Mapping[str, Mapping[int, str]],
) -> DataSeen:
    last_edit = connection.execute(
        select(func.max(DraftVersion.created_at))
        .join(Draft, Draft.id == DraftVersion.draft_id)
        .where(Draft.period == cycle)
    ).scalar_one()
    return DataSeen(
        drafts=len(drafts),
        drafts_by_kind=dict(sorted(Counter(d.kind for d in drafts).items())),
        edited_drafts=sum(d.origin == "edit" for d in drafts),
        attributes=tuple(sorted(groups)),
        people_with_attributes=len({p for m in groups.values() for p in m}),
        last_draft_version_at=last_edit,
        last_rating_change_at=last_rating_change(connection, cycle),
    )


def _store(
    connection: Connection, actor: str, body: BiasReportBody, data_seen: DataSeen
) -> StoredBiasReport:
    """The report as the next version of its cycle's, audited."""
    version = (
        connection.execute(
            select(func.max(BiasReport.version)).where(BiasReport.cycle == body.cycle)
        ).scalar_one()
        or 0
    ) + 1
    created = connection.execute(
        insert(BiasReport)
        .values(
            cycle=body.cycle,
            version=version,
            created_by=actor,
            data_seen=data_seen.model_dump(mode="json"),
            report=body.model_dump(mode="json"),
        )
        .returning(BiasReport.id, BiasReport.created_at)
    ).one()
    audit(
        connection,
        actor=actor,
        action="bias_report.created",
        entity="bias_report",
        entity_id=str(created.id),
        after={"cycle": body.cycle, "version": version, "findings": len(body.findings)},
    )
    return StoredBiasReport(
        cycle=body.cycle,
        version=version,
        created_by=actor,
        created_at=created.created_at,
        data_seen=data_seen,
        report=body,
    )
