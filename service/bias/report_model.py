"""The cycle's bias report as typed values: what `build_report` stores, what the API returns,
and what the command line and the HR page render, each by walking these models.

Stored in `bias_reports` as `model_dump(mode="json")` (the `report` and `data_seen`
columns) and read back with `model_validate_json`, so a report is written and read through
one contract. The stored shape is the one reports had as plain JSON before these models
(format "fairdraft-bias-report/1"), with one difference, made explicit: `ratings` now
always carries `note`, `by_attribute`, `managers` and `mismatched` (empty or null where
there is nothing), where older reports left out what did not apply; the defaults below
read those older reports unchanged. Timestamps in `data_seen` are ISO 8601 either way
(pydantic writes UTC as "Z" where Python's isoformat wrote "+00:00").

A finding is one of five kinds, told apart by `what`; each carries the numbers of the
analysis it comes from. Findings name groups and people by id only, never a person's
attributes; group statistics of fewer than 5 people are suppressed before they get here.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import Field

from service.bias.ratings import (
    AdjustedGap,
    AdverseImpact,
    GroupGap,
    ImpactGroup,
    ManagerLeniency,
    MismatchedRating,
    RatingDistribution,
)
from service.bias.stats import REST, Comparison, ShareTest, Value

REPORT_FORMAT: Final = "fairdraft-bias-report/1"


class LanguageFinding(Value):
    """A measure of the drafts' language that differs between groups, flagged: by Cliff's
    delta (every draft shifted) or, for a count measure, by the share of drafts with a hit
    (a rare pattern, `share`), which then quotes the commonest phrases (`phrases`)."""

    what: Literal["language"] = "language"
    attribute: str
    scope: str
    measure: str
    focal: str
    reference: str
    effect_size: float = Field(description="Cliff's delta, focal vs reference.")
    p_adjusted: float = Field(description="Of the Mann-Whitney test, adjusted.")
    share: ShareTest | None = Field(
        default=None, description="Count measures: the share of drafts with a hit."
    )
    phrases: tuple[str, ...] = Field(
        default=(),
        description="The commonest flagged phrases of the side with the larger share, "
        "lower case. Draft text: shown escaped, never as markup.",
    )


# how a share sentence names a count measure: "... contain personality criticism"
MEASURE_WORDS: Final = {
    "agentic_rate": "agentic words",
    "communal_rate": "communal words",
    "standout_rate": "standout words",
    "grindstone_rate": "grindstone words",
    "personality_criticism_rate": "personality criticism",
    "behaviour_criticism_rate": "behaviour criticism",
    "vague_praise_rate": "vague praise",
    "hedging_rate": "hedging",
    "doubt_raiser_rate": "doubt raisers",
    "masculine_coded_rate": "masculine-coded words",
    "feminine_coded_rate": "feminine-coded words",
    "age_coded_rate": "age-coded words",
}


@dataclass(frozen=True)
class _Side:
    """One side of a share comparison, as the sentence names it."""

    name: str
    share: float
    with_hit: int
    n: int
    rate: float | None


def share_sentence(finding: LanguageFinding) -> str | None:
    """The finding as one plain sentence every surface shows the same way, the side with
    the larger share first: "21% of the drafts about woman vs 2% of the drafts about man
    contain personality criticism (manager_feedback; ...), e.g. "abrasive"". None when no
    share flagged it."""
    share = finding.share
    if share is None or not share.flagged:
        return None
    words = MEASURE_WORDS.get(finding.measure, finding.measure.replace("_", " "))
    reference = "the other groups" if finding.reference == REST else finding.reference
    high = _Side(
        finding.focal, share.focal_share, share.focal_with, share.focal_n, share.focal_rate
    )
    low = _Side(
        reference,
        share.reference_share,
        share.reference_with,
        share.reference_n,
        share.reference_rate,
    )
    ratio, ci_low, ci_high, rate_ratio = (
        share.risk_ratio,
        share.ci_low,
        share.ci_high,
        share.rate_ratio,
    )
    if share.difference < 0:  # the reference has the larger share: say it first
        high, low = low, high
        ratio, ci_low, ci_high = _inverse(ratio), _inverse(ci_high), _inverse(ci_low)
        rate_ratio = _inverse(rate_ratio)
    sentence = (
        f"{high.share:.0%} of the drafts about {high.name} vs {low.share:.0%} of the drafts "
        f"about {low.name} contain {words} ({finding.scope}; {high.with_hit} of {high.n} vs "
        f"{low.with_hit} of {low.n}, risk ratio {_number(ratio)} [95% CI {_number(ci_low)} "
        f"to {_number(ci_high)}], adjusted p {_number(share.p_adjusted, '.2g')}; per 100 "
        f"words {_number(high.rate)} vs {_number(low.rate)}, rate ratio {_number(rate_ratio)})"
    )
    if finding.phrases:
        sentence += ", e.g. " + ", ".join(f"\u201c{p}\u201d" for p in finding.phrases)
    return sentence


def _inverse(value: float | None) -> float | None:
    return None if value is None or value == 0 else 1 / value


def _number(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


class ImpactFinding(ImpactGroup):
    """A group with fewer top ratings than four fifths of the highest group's rate, flagged."""

    what: Literal["adverse_impact"] = "adverse_impact"
    attribute: str


class GapFinding(GroupGap):
    """A group rated apart from the largest one with the evidence held equal, flagged."""

    what: Literal["evidence_adjusted_gap"] = "evidence_adjusted_gap"
    attribute: str


class ManagerFinding(ManagerLeniency):
    """A manager who rates below or above what their reports' evidence predicts, flagged:
    the shrunken offset's 95% interval excludes zero (`estimate`, `ci_low`, `ci_high`)."""

    what: Literal["manager_harsh", "manager_generous"]


class MismatchFinding(MismatchedRating):
    """One rating outside the prediction interval of what the person's evidence predicts
    (`pi_low`, `pi_high` at `level`); the ratings inside it are not findings."""

    what: Literal["mismatched_rating"] = "mismatched_rating"


Finding = Annotated[
    LanguageFinding | ImpactFinding | GapFinding | ManagerFinding | MismatchFinding,
    Field(discriminator="what"),
]


class AttributeRatings(Value):
    """The ratings analyses of one demographic attribute."""

    distribution: RatingDistribution
    adverse_impact: AdverseImpact
    evidence_adjusted_gap: AdjustedGap


class RatingsAnalysis(Value):
    """The cycle's ratings across groups, and its managers and single ratings against the
    evidence. With no cycle or no ratings, `note` says why and the rest is empty."""

    ratings: int = Field(description="Rated people.")
    note: str | None = Field(default=None, description="Why there is nothing to analyse.")
    by_attribute: dict[str, AttributeRatings] = Field(default_factory=dict)
    managers: tuple[ManagerLeniency, ...] = Field(
        default=(), description="Managers with 3 or more rated reports, flagged first."
    )
    mismatched: tuple[MismatchedRating, ...] = Field(
        default=(),
        description="Ratings far from the evidence: those outside the prediction interval "
        "(verdict mismatch, each also a finding), then those at least 1.5 points off but "
        "inside it (verdict not_enough_evidence, issue 14), each largest first.",
    )


class BiasReportBody(Value):
    """What the report found: flagged findings first, then every comparison it ran."""

    format: Literal["fairdraft-bias-report/1"] = REPORT_FORMAT
    cycle: str
    findings: tuple[Finding, ...] = Field(description="What to look at, most important first.")
    language: tuple[Comparison, ...] = Field(
        description="Every language comparison run or suppressed, adjusted as one family."
    )
    ratings: RatingsAnalysis


class DataSeen(Value):
    """What the report read, so a reader can tell whether it is still current."""

    drafts: int
    drafts_by_kind: dict[str, int]
    edited_drafts: int = Field(description="Drafts whose current version a person edited.")
    attributes: tuple[str, ...] = Field(description="Demographic attributes compared.")
    people_with_attributes: int
    last_draft_version_at: datetime | None
    last_rating_change_at: datetime | None


class StoredBiasReport(Value):
    """One stored version of a cycle's bias report."""

    cycle: str
    version: int
    created_by: str
    created_at: datetime
    data_seen: DataSeen
    report: BiasReportBody
