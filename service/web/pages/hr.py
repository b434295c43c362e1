"""HR's page: a cycle's latest bias report as tables and charts, the flagged findings
first, and running the report again (a background job, like the API's).

The report is read as stored (service/bias/report.py builds it, typed by
service/bias/report_model.py); this page only arranges it, one wording per finding kind.
Group statistics the report suppressed (fewer than MIN_GROUP people) are said to be
suppressed, never shown as numbers, and the page shows no person's demographic attribute:
only groups, and people by name where a finding is about their rating. HR only; anyone
else is told the page needs the role (403), like the API's HR endpoints.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, assert_never

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import Connection, func, select

from service.bias.display import interval_text, leniency_detail, level_text
from service.bias.ratings import (
    AdverseImpact,
    GroupDistribution,
    GroupGap,
    ImpactGroup,
    MismatchedRating,
)
from service.bias.report import latest_report
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
    StoredBiasReport,
    share_sentence,
)
from service.bias.stats import MIN_GROUP
from service.calibration.cohort import ManagerRow
from service.db.models import BiasReport, Job, Person, ReviewCycle
from service.http.deps import ConnectionDep, SettingsDep
from service.http.params import page_period, required_period
from service.jobs.queue import enqueue
from service.ratings.workflow import last_rating_change
from service.web.charts import RateBar, leniency_chart, rate_chart
from service.web.flash import redirect_with
from service.web.session import PagePrincipal, SameOrigin, require_hr
from service.web.templating import render

router = APIRouter(include_in_schema=False)
SUPPRESSED = f"suppressed (fewer than {MIN_GROUP})"
NONE = "—"
RECENT_RUNS = 5
WHAT = {
    "language": "Language differs between groups",
    "adverse_impact": "Fewer top ratings in a group",
    "evidence_adjusted_gap": "Rating gap with the evidence held equal",
    "manager_harsh": "Manager rates below the evidence",
    "manager_generous": "Manager rates above the evidence",
    "mismatched_rating": "Rating far from the evidence",
}


@dataclass(frozen=True)
class CycleLine:
    name: str
    version: int | None  # the latest report's, None when never run
    created_at: datetime | None


@dataclass(frozen=True)
class FindingRow:
    what: str
    about: str
    detail: str


@dataclass(frozen=True)
class GroupRow:
    """One group in one table; `cells` is None when the group is suppressed."""

    group: str
    cells: list[str] | None
    flagged: bool = False


@dataclass(frozen=True)
class AttributeView:
    name: str
    scale: list[int]
    distribution: list[GroupRow]  # n, a count per scale value, mean
    distribution_p: str
    top: str  # "4 or higher"
    impact_chart: Markup | None  # None when every group is suppressed: nothing to draw
    impact: list[GroupRow]  # n, at the top, rate, ratio, p adjusted
    gap_reference: str
    gaps: list[GroupRow]  # n, raw gap, with evidence equal, 95% CI, p adjusted


@dataclass(frozen=True)
class ReportView:
    cycle: str
    version: int
    created_by: str
    created_at: datetime
    stale: bool  # ratings changed after the report: finalising waits for a new run
    data_seen: list[tuple[str, str]]
    findings: list[FindingRow]
    ratings: int
    ratings_note: str | None
    attributes: list[AttributeView]
    managers: list[ManagerRow]
    leniency: Markup | None
    language: tuple[int, int, int]  # comparisons run, flagged, not run (a group too small)
    # ratings 1.5+ points from the evidence but inside their prediction interval: "not
    # enough evidence to tell", said rather than left silent (issue 14)
    undecided: list[FindingRow] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    job_id: int
    cycle: str
    status: str
    created_at: datetime


@router.get("/hr")
def hr_page(
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    cycle: str | None = None,
) -> Response:
    require_hr(principal)
    name = page_period(connection, cycle, field="cycle").name
    stored = latest_report(connection, name)
    return render(
        request,
        "hr.html.j2",
        cycle=name,
        cycles=_cycles(connection, name),
        report=None if stored is None else report_view(connection, stored),
        runs=_runs(connection),
        suppressed=SUPPRESSED,
    )


@router.post("/hr/bias-report", dependencies=[SameOrigin])
def run_report(
    principal: PagePrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    cycle: Annotated[str, Form(max_length=64)],
) -> Response:
    require_hr(principal)
    name = required_period(cycle, field="cycle").name
    job_id = enqueue(
        connection,
        "bias_report",
        {"cycle": name},
        requested_by=principal.person_id,
        max_attempts=settings.job_max_attempts,
        actor=principal.actor,
    )
    return redirect_with(
        f"/hr?cycle={name}",
        notice=f"The bias report for {name} is queued as job {job_id}; "
        "follow it under “Report runs”.",
    )


def _cycles(connection: Connection, current: str) -> list[CycleLine]:
    """Every cycle with a rating scale or a report, newest name first, with its latest
    report: two queries."""
    latest = {
        row.cycle: row
        for row in connection.execute(
            select(
                BiasReport.cycle,
                func.max(BiasReport.version).label("version"),
                func.max(BiasReport.created_at).label("created_at"),
            ).group_by(BiasReport.cycle)
        )
    }
    names = set(connection.execute(select(ReviewCycle.name)).scalars()) | set(latest) | {current}
    return [
        CycleLine(
            n,
            latest[n].version if n in latest else None,
            latest[n].created_at if n in latest else None,
        )
        for n in sorted(names, reverse=True)
    ]


def _runs(connection: Connection) -> list[Run]:
    rows = connection.execute(
        select(Job.id, Job.status, Job.payload["cycle"].astext.label("cycle"), Job.created_at)
        .where(Job.kind == "bias_report")
        .order_by(Job.id.desc())
        .limit(RECENT_RUNS)
    )
    return [Run(r.id, r.cycle or NONE, r.status, r.created_at) for r in rows]


def report_view(connection: Connection, stored: StoredBiasReport) -> ReportView:
    """The stored report arranged for the page: findings in words, one block per
    attribute, the managers by name."""
    report = stored.report
    ratings = report.ratings
    names = _names(connection, report)
    last_change = last_rating_change(connection, stored.cycle)
    managers = [
        ManagerRow.of(m, label=_person(names, m.manager_id), manager_id=m.manager_id)
        for m in ratings.managers
    ]
    language = report.language
    return ReportView(
        cycle=stored.cycle,
        version=stored.version,
        created_by=stored.created_by,
        created_at=stored.created_at,
        stale=last_change is not None and stored.created_at < last_change,
        data_seen=_data_seen(stored.data_seen),
        findings=[finding(f, names) for f in report.findings],
        ratings=ratings.ratings,
        ratings_note=ratings.note,
        attributes=[
            _attribute(name, parts) for name, parts in sorted(ratings.by_attribute.items())
        ],
        managers=managers,
        leniency=leniency_chart(managers, chart_id="hr-leniency") if managers else None,
        language=(
            sum(c.p_value is not None for c in language),
            sum(c.flagged for c in language),
            sum(c.suppressed for c in language),
        ),
        undecided=[
            _undecided(m, names) for m in ratings.mismatched if m.verdict == "not_enough_evidence"
        ],
    )


def _names(connection: Connection, report: BiasReportBody) -> dict[int, str]:
    """Names of the people the report's findings and manager rows are about, in one
    query: HR may see who they are; the report itself keeps only ids."""
    ids = {m.manager_id for m in report.ratings.managers}
    ids.update(i for f in report.findings for i in _people_in(f))
    ids.update(i for m in report.ratings.mismatched for i in _rated_and_rater(m))
    if not ids:
        return {}
    rows = connection.execute(
        select(Person.id, Person.name, Person.employee_id).where(Person.id.in_(ids))
    )
    return {r.id: f"{r.name} ({r.employee_id})" for r in rows}


def _people_in(item: Finding) -> tuple[int, ...]:
    """The ids of the people a finding is about (none for a group's finding)."""
    match item:
        case ManagerFinding():
            return (item.manager_id,)
        case MismatchFinding():
            return _rated_and_rater(item)
        case _:
            return ()


def _rated_and_rater(item: MismatchedRating) -> tuple[int, ...]:
    return (item.person_id,) if item.manager_id is None else (item.person_id, item.manager_id)


def _person(names: Mapping[int, str], person_id: int) -> str:
    return names.get(person_id, f"person {person_id}")


def _f(value: float | None, spec: str) -> str:
    """A number as the page writes it, or a dash where the report has none."""
    return NONE if value is None else format(value, spec)


def finding(item: Finding, names: Mapping[int, str]) -> FindingRow:
    """One flagged finding in words: what was found, about whom or which group, and the
    numbers behind it."""
    what = WHAT[item.what]
    match item:
        case LanguageFinding():
            return FindingRow(
                what,
                f"{item.attribute}: {item.focal} against {item.reference}",
                share_sentence(item)
                or f"{item.measure.replace('_', ' ')} in {item.scope}: effect "
                f"{item.effect_size:+.2f} (Cliff's delta), {_p(item.p_adjusted)}",
            )
        case ImpactFinding():
            return FindingRow(
                what,
                f"{item.attribute}: {item.group}",
                f"{_f(item.rate, '.0%')} at the top ratings, "
                f"{_f(item.ratio, '.2f')} of the highest group's rate, {_p(item.p_adjusted)}",
            )
        case GapFinding():
            return FindingRow(
                what,
                f"{item.attribute}: {item.group}",
                f"{_f(item.coefficient, '+.2f')} points (95% CI {_f(item.ci_low, '+.2f')} to "
                f"{_f(item.ci_high, '+.2f')}), raw gap {_f(item.raw_gap, '+.2f')}, "
                f"{_p(item.p_adjusted)}",
            )
        case ManagerFinding():
            return FindingRow(
                what,
                _person(names, item.manager_id),
                leniency_detail(item),
            )
        case MismatchFinding():
            rater = item.manager_id
            return FindingRow(
                what,
                _person(names, item.person_id),
                f"rated {item.rating:g}, the evidence predicts {item.expected:.1f}"
                + (interval_text(item) or f" (robust z {item.robust_z:.1f})")
                + ("" if rater is None else f"; rated by {_person(names, rater)}"),
            )
        case _:
            assert_never(item)


def _undecided(item: MismatchedRating, names: Mapping[int, str]) -> FindingRow:
    """A rating far from the evidence but inside its prediction interval."""
    inside = ""
    if item.pi_low is not None and item.pi_high is not None and item.level is not None:
        inside = (
            f", inside its {level_text(item.level)} prediction interval "
            f"{item.pi_low:.1f} to {item.pi_high:.1f}"
        )
    rater = item.manager_id
    return FindingRow(
        "Not enough evidence to tell",
        _person(names, item.person_id),
        f"rated {item.rating:g}, the evidence predicts {item.expected:.1f} "
        f"({item.residual:+.1f}){inside}"
        + ("" if rater is None else f"; rated by {_person(names, rater)}"),
    )


def _p(p_adjusted: float | None) -> str:
    return f"p adjusted {_f(p_adjusted, '.3f')}"


def _attribute(name: str, parts: AttributeRatings) -> AttributeView:
    distribution = parts.distribution
    low, high = distribution.scale
    scale = list(range(low, high + 1))
    impact = parts.adverse_impact
    gap = parts.evidence_adjusted_gap
    return AttributeView(
        name=name,
        scale=scale,
        distribution=[_distribution_row(g, scale) for g in distribution.groups],
        distribution_p=_f(distribution.p_value, ".3f")
        if distribution.p_value is not None
        else f"not tested (fewer than two groups of {MIN_GROUP} or more)",
        top=f"{impact.top:g} or higher",
        impact_chart=_impact_chart(name, impact),
        impact=[_impact_row(g, impact.reference) for g in impact.groups],
        gap_reference=gap.reference or NONE,
        gaps=[_gap_row(g) for g in gap.groups],
    )


def _distribution_row(g: GroupDistribution, scale: list[int]) -> GroupRow:
    if g.suppressed or g.counts is None:
        return GroupRow(g.group, None)
    counts = g.counts
    return GroupRow(g.group, [str(g.n), *(str(counts.get(v, 0)) for v in scale), _f(g.mean, ".2f")])


def _impact_chart(name: str, impact: AdverseImpact) -> Markup | None:
    bars = [_rate_bar(g, impact.reference) for g in impact.groups]
    if all(b.rate is None for b in bars):
        return None
    return rate_chart(
        bars,
        top=f"{impact.top:g} or higher",
        small=MIN_GROUP,
        chart_id=f"impact-{_slug(name)}",
    )


def _rate_bar(g: ImpactGroup, reference: str | None) -> RateBar:
    shown = not g.suppressed
    return RateBar(
        group=g.group,
        n=g.n if shown else 0,
        rate=g.rate if shown else None,
        ratio=g.ratio if shown else None,
        reference=g.group == reference,
        flagged=g.flagged,
    )


def _impact_row(g: ImpactGroup, reference: str | None) -> GroupRow:
    if g.suppressed:
        return GroupRow(g.group, None)
    return GroupRow(
        g.group + (" (highest rate)" if g.group == reference else ""),
        [
            str(g.n),
            str(g.top_count),
            _f(g.rate, ".0%"),
            _f(g.ratio, ".2f"),
            _f(g.p_adjusted, ".3f"),
        ],
        g.flagged,
    )


def _gap_row(g: GroupGap) -> GroupRow:
    if g.suppressed:
        return GroupRow(g.group, None)
    return GroupRow(
        g.group,
        [
            str(g.n),
            _f(g.raw_gap, "+.2f"),
            _f(g.coefficient, "+.2f"),
            f"{_f(g.ci_low, '+.2f')} to {_f(g.ci_high, '+.2f')}",
            _f(g.p_adjusted, ".3f"),
        ],
        g.flagged,
    )


def _data_seen(seen: DataSeen) -> list[tuple[str, str]]:
    """What the report read, so a reader can tell whether it is still current."""
    kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(seen.drafts_by_kind.items()))
    return [
        ("Drafts", f"{seen.drafts}" + (f" ({kinds})" if kinds else "")),
        ("Drafts people edited", str(seen.edited_drafts)),
        ("Attributes compared", ", ".join(seen.attributes) or NONE),
        ("People with attributes on file", str(seen.people_with_attributes)),
        ("Last draft version seen", _when(seen.last_draft_version_at)),
        ("Last rating change seen", _when(seen.last_rating_change_at)),
    ]


def _when(at: datetime | None) -> str:
    """A stored timestamp as the rest of the page writes times (UTC)."""
    if at is None:
        return NONE
    return at.astimezone(UTC).strftime("%d %b %Y %H:%M:%S UTC")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())
