"""A bias report with every kind of finding in it, for the tests of the surfaces that show
reports: every text the report carries (attribute, group, scope and measure names) is the
given string, so a hostile one reaches every place a surface writes text."""

from datetime import UTC, datetime

from service.bias.ratings import (
    AdjustedGap,
    AdverseImpact,
    GroupDistribution,
    GroupGap,
    ImpactGroup,
    ManagerLeniency,
    MismatchedRating,
    RatingDistribution,
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
from service.bias.stats import Comparison, GroupStat

WHEN = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
FINDING_KINDS = frozenset(
    {"language", "adverse_impact", "evidence_adjusted_gap", "manager_harsh", "mismatched_rating"}
)


def impact_group(text: str) -> ImpactGroup:
    return ImpactGroup(
        group=text,
        n=7,
        top_count=1,
        rate=0.143,
        ratio=0.286,
        p_value=0.004,
        p_adjusted=0.008,
        below_four_fifths=True,
        flagged=True,
        suppressed=False,
    )


def group_gap(text: str) -> GroupGap:
    return GroupGap(
        group=text,
        n=7,
        raw_gap=-0.93,
        coefficient=-0.61,
        ci_low=-0.95,
        ci_high=-0.27,
        p_value=0.001,
        p_adjusted=0.002,
        flagged=True,
        suppressed=False,
    )


def harsh_manager(manager: int) -> ManagerLeniency:
    return ManagerLeniency(
        manager_id=manager,
        n=4,
        mean_residual=-0.74,
        z=-3.2,
        p_value=0.002,
        p_adjusted=0.006,
        direction="harsh",
        flagged=True,
    )


def mismatched(person: int, manager: int) -> MismatchedRating:
    return MismatchedRating(
        person_id=person, manager_id=manager, rating=1.0, expected=3.6, residual=-2.6, robust_z=-4.1
    )


def comparison(text: str) -> Comparison:
    return Comparison(
        attribute=text,
        measure=text,
        scope=text,
        groups=(GroupStat(group=text, n=7, mean=0.33), GroupStat(group="b", n=3, mean=None)),
        focal=text,
        reference="rest",
        effect_size=-0.82,
        p_value=0.0004,
        p_adjusted=0.0012,
        flagged=True,
        suppressed=False,
    )


def every_finding(text: str, *, person: int, manager: int) -> tuple[Finding, ...]:
    """One finding of each kind, about `text` (groups) or the given people."""
    c = comparison(text)
    return (
        LanguageFinding(
            attribute=c.attribute,
            scope=c.scope,
            measure=c.measure,
            focal=c.focal,
            reference=c.reference,
            effect_size=c.effect_size,
            p_adjusted=c.p_adjusted,
        ),
        ImpactFinding(attribute=text, **dict(impact_group(text))),
        GapFinding(attribute=text, **dict(group_gap(text))),
        ManagerFinding(what="manager_harsh", **dict(harsh_manager(manager))),
        MismatchFinding(**dict(mismatched(person, manager))),
    )


def attribute_ratings(text: str) -> AttributeRatings:
    return AttributeRatings(
        distribution=RatingDistribution(
            attribute=text,
            scale=(1, 5),
            groups=(
                GroupDistribution(
                    group=text,
                    n=7,
                    counts={1: 1, 2: 2, 3: 3, 4: 1, 5: 0},
                    mean=2.57,
                    suppressed=False,
                ),
                GroupDistribution(group=f"{text}2", n=2, counts=None, mean=None, suppressed=True),
            ),
            p_value=0.031,
        ),
        adverse_impact=AdverseImpact(
            attribute=text,
            top=4,
            reference=f"{text}3",
            groups=(
                impact_group(text),
                ImpactGroup(
                    group=f"{text}2",
                    top_count=None,
                    rate=None,
                    ratio=None,
                    p_value=None,
                    p_adjusted=None,
                    below_four_fifths=False,
                    flagged=False,
                    n=2,
                    suppressed=True,
                ),
            ),
        ),
        evidence_adjusted_gap=AdjustedGap(
            attribute=text,
            reference=f"{text}3",
            features=("work_records",),
            n=17,
            r_squared=0.61,
            groups=(group_gap(text),),
        ),
    )


def report_body(text: str, *, cycle: str, person: int, manager: int) -> BiasReportBody:
    """A report of `cycle` with every kind of finding and every table filled."""
    return BiasReportBody(
        cycle=cycle,
        findings=every_finding(text, person=person, manager=manager),
        language=(comparison(text),),
        ratings=RatingsAnalysis(
            ratings=17,
            by_attribute={text: attribute_ratings(text)},
            managers=(harsh_manager(manager),),
            mismatched=(mismatched(person, manager),),
        ),
    )


def data_seen(text: str) -> DataSeen:
    return DataSeen(
        drafts=17,
        drafts_by_kind={text: 9, "self_reflection": 8},
        edited_drafts=2,
        attributes=(text,),
        people_with_attributes=17,
        last_draft_version_at=WHEN,
        last_rating_change_at=None,
    )


def stored_report(text: str, *, cycle: str, person: int, manager: int) -> StoredBiasReport:
    return StoredBiasReport(
        cycle=cycle,
        version=3,
        created_by=text,
        created_at=WHEN,
        data_seen=data_seen(text),
        report=report_body(text, cycle=cycle, person=person, manager=manager),
    )
