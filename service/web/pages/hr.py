"""HR's page: a cycle's latest bias report as tables and charts, the flagged findings
first, and running the report again (a background job, like the API's).

The report is read as stored (service/bias/report.py builds it); this page only arranges
it. Group statistics the report suppressed (fewer than MIN_GROUP people) are said to be
suppressed, never shown as numbers, and the page shows no person's demographic attribute:
only groups, and people by name where a finding is about their rating. HR only; anyone
else is told the page needs the role (403), like the API's HR endpoints.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import Connection, func, select

from service.access.principal import Principal
from service.bias.gate import last_rating_change
from service.bias.stats import MIN_GROUP
from service.calibration.cohort import ManagerRow
from service.db.models import BiasReport, Job, Person, ReviewCycle
from service.http.deps import ConnectionDep, SettingsDep
from service.http.errors import forbidden
from service.http.params import cycle_name
from service.jobs.queue import enqueue
from service.web.charts import RateBar, leniency_chart, rate_chart
from service.web.flash import redirect_with
from service.web.pages.employee import DEFAULT_PERIOD
from service.web.session import PagePrincipal, SameOrigin
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
class Finding:
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
    findings: list[Finding]
    ratings: int
    ratings_note: str | None
    attributes: list[AttributeView]
    managers: list[ManagerRow]
    leniency: Markup | None
    language: tuple[int, int, int]  # comparisons run, flagged, not run (a group too small)


@dataclass(frozen=True)
class Run:
    job_id: int
    cycle: str
    status: str
    created_at: datetime


def _require_hr(principal: Principal) -> None:
    if not principal.hr_admin:
        raise forbidden("this page needs the HR admin role")


@router.get("/hr")
def hr_page(
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    cycle: str = DEFAULT_PERIOD,
) -> Response:
    _require_hr(principal)
    name = cycle_name(cycle)
    stored = connection.execute(
        select(BiasReport.__table__)
        .where(BiasReport.cycle == name)
        .order_by(BiasReport.version.desc())
        .limit(1)
    ).one_or_none()
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
    _require_hr(principal)
    name = cycle_name(cycle)
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


def report_view(connection: Connection, stored: Any) -> ReportView:
    """The stored report arranged for the page: findings in words, one block per
    attribute, the managers by name."""
    report: Mapping[str, Any] = stored.report
    ratings: Mapping[str, Any] = report.get("ratings", {})
    names = _names(connection, report)
    last_change = last_rating_change(connection, stored.cycle)
    managers = [
        ManagerRow(
            label=names.get(m["manager_id"], f"person {m['manager_id']}"),
            manager_id=m["manager_id"],
            n=m["n"],
            mean_residual=round(m["mean_residual"], 2),
            direction=m["direction"],
            flagged=m["flagged"],
        )
        for m in ratings.get("managers", [])
    ]
    language = report.get("language", [])
    return ReportView(
        cycle=stored.cycle,
        version=stored.version,
        created_by=stored.created_by,
        created_at=stored.created_at,
        stale=last_change is not None and stored.created_at < last_change,
        data_seen=_data_seen(stored.data_seen),
        findings=[finding(f, names) for f in report.get("findings", [])],
        ratings=int(ratings.get("ratings", 0)),
        ratings_note=ratings.get("note"),
        attributes=[
            _attribute(name, parts)
            for name, parts in sorted(ratings.get("by_attribute", {}).items())
        ],
        managers=managers,
        leniency=leniency_chart(managers, chart_id="hr-leniency") if managers else None,
        language=(
            sum(c.get("p_value") is not None for c in language),
            sum(bool(c.get("flagged")) for c in language),
            sum(bool(c.get("suppressed")) for c in language),
        ),
    )


def _names(connection: Connection, report: Mapping[str, Any]) -> dict[int, str]:
    """Names of the people the report's findings and manager rows are about, in one
    query: HR may see who they are; the report itself keeps only ids."""
    ratings = report.get("ratings", {})
    ids = {
        int(value)
        for item in [*report.get("findings", []), *ratings.get("managers", [])]
        for key in ("person_id", "manager_id")
        if (value := item.get(key)) is not None
    }
    if not ids:
        return {}
    rows = connection.execute(
        select(Person.id, Person.name, Person.employee_id).where(Person.id.in_(ids))
    )
    return {r.id: f"{r.name} ({r.employee_id})" for r in rows}


def _f(value: Any, spec: str) -> str:
    """A number as the page writes it, or a dash where the report has none."""
    return NONE if value is None else format(value, spec)


def finding(item: Mapping[str, Any], names: Mapping[int, str]) -> Finding:
    """One flagged finding in words: what was found, about whom or which group, and the
    numbers behind it."""
    kind = str(item.get("what", ""))
    what = WHAT.get(kind, kind.replace("_", " "))
    p = f"p adjusted {_f(item.get('p_adjusted'), '.3f')}"
    if kind == "language":
        return Finding(
            what,
            f"{item['attribute']}: {item['focal']} against {item['reference']}",
            f"{str(item['measure']).replace('_', ' ')} in {item['scope']}: effect "
            f"{_f(item.get('effect_size'), '+.2f')} (Cliff's delta), {p}",
        )
    if kind == "adverse_impact":
        return Finding(
            what,
            f"{item['attribute']}: {item['group']}",
            f"{_f(item.get('rate'), '.0%')} at the top ratings, "
            f"{_f(item.get('ratio'), '.2f')} of the highest group's rate, {p}",
        )
    if kind == "evidence_adjusted_gap":
        return Finding(
            what,
            f"{item['attribute']}: {item['group']}",
            f"{_f(item.get('coefficient'), '+.2f')} points (95% CI "
            f"{_f(item.get('ci_low'), '+.2f')} to {_f(item.get('ci_high'), '+.2f')}), raw "
            f"gap {_f(item.get('raw_gap'), '+.2f')}, {p}",
        )
    if kind.startswith("manager_"):
        return Finding(
            what,
            names.get(item["manager_id"], f"person {item['manager_id']}"),
            f"{_f(item.get('mean_residual'), '+.2f')} points on average over {item['n']} "
            f"rated reports, {p}",
        )
    if kind == "mismatched_rating":
        rater = item.get("manager_id")
        return Finding(
            what,
            names.get(item["person_id"], f"person {item['person_id']}"),
            f"rated {_f(item.get('rating'), 'g')}, the evidence predicts "
            f"{_f(item.get('expected'), '.1f')} (robust z {_f(item.get('robust_z'), '.1f')})"
            + ("" if rater is None else f"; rated by {names.get(rater, f'person {rater}')}"),
        )
    return Finding(what, str(item.get("attribute", NONE)), NONE)


def _attribute(name: str, parts: Mapping[str, Any]) -> AttributeView:
    distribution = parts["distribution"]
    low, high = distribution["scale"]
    scale = list(range(int(low), int(high) + 1))
    impact = parts["adverse_impact"]
    gap = parts["evidence_adjusted_gap"]
    return AttributeView(
        name=name,
        scale=scale,
        distribution=[
            GroupRow(
                g["group"],
                None
                if g["suppressed"]
                else [
                    str(g["n"]),
                    *(str(g["counts"].get(str(v), 0)) for v in scale),
                    _f(g["mean"], ".2f"),
                ],
            )
            for g in distribution["groups"]
        ],
        distribution_p=_f(distribution.get("p_value"), ".3f")
        if distribution.get("p_value") is not None
        else f"not tested (fewer than two groups of {MIN_GROUP} or more)",
        top=f"{_f(impact['top'], 'g')} or higher",
        impact_chart=_impact_chart(name, impact),
        impact=[_impact_row(g, impact.get("reference")) for g in impact["groups"]],
        gap_reference=str(gap.get("reference") or NONE),
        gaps=[_gap_row(g) for g in gap["groups"]],
    )


def _impact_chart(name: str, impact: Mapping[str, Any]) -> Markup | None:
    bars = [_rate_bar(g, impact.get("reference")) for g in impact["groups"]]
    if all(b.rate is None for b in bars):
        return None
    return rate_chart(
        bars,
        top=f"{_f(impact['top'], 'g')} or higher",
        small=MIN_GROUP,
        chart_id=f"impact-{_slug(name)}",
    )


def _rate_bar(g: Mapping[str, Any], reference: str | None) -> RateBar:
    shown = not g["suppressed"]
    return RateBar(
        group=g["group"],
        n=g["n"] if shown else 0,
        rate=g["rate"] if shown else None,
        ratio=g["ratio"] if shown else None,
        reference=g["group"] == reference,
        flagged=bool(g["flagged"]),
    )


def _impact_row(g: Mapping[str, Any], reference: str | None) -> GroupRow:
    if g["suppressed"]:
        return GroupRow(g["group"], None)
    return GroupRow(
        g["group"] + (" (highest rate)" if g["group"] == reference else ""),
        [
            str(g["n"]),
            str(g["top_count"]),
            _f(g["rate"], ".0%"),
            _f(g["ratio"], ".2f"),
            _f(g["p_adjusted"], ".3f"),
        ],
        bool(g["flagged"]),
    )


def _gap_row(g: Mapping[str, Any]) -> GroupRow:
    if g["suppressed"]:
        return GroupRow(g["group"], None)
    return GroupRow(
        g["group"],
        [
            str(g["n"]),
            _f(g["raw_gap"], "+.2f"),
            _f(g["coefficient"], "+.2f"),
            f"{_f(g['ci_low'], '+.2f')} to {_f(g['ci_high'], '+.2f')}",
            _f(g["p_adjusted"], ".3f"),
        ],
        bool(g["flagged"]),
    )


def _data_seen(seen: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the report read, so a reader can tell whether it is still current."""
    by_kind = seen.get("drafts_by_kind") or {}
    kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(by_kind.items()))
    return [
        ("Drafts", f"{seen.get('drafts', 0)}" + (f" ({kinds})" if kinds else "")),
        ("Drafts people edited", str(seen.get("edited_drafts", 0))),
        ("Attributes compared", ", ".join(seen.get("attributes") or []) or NONE),
        ("People with attributes on file", str(seen.get("people_with_attributes", 0))),
        ("Last draft version seen", _when(seen.get("last_draft_version_at"))),
        ("Last rating change seen", _when(seen.get("last_rating_change_at"))),
    ]


def _when(iso: str | None) -> str:
    """A stored timestamp as the rest of the page writes times (UTC)."""
    if not iso:
        return NONE
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%d %b %Y %H:%M:%S UTC")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())
