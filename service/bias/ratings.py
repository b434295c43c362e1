"""The ratings half of the bias check: distributions by group, adverse impact of the top
rating, the gap that remains once evidence is accounted for, managers who rate harder or
softer than their reports' evidence, and single ratings far from the evidence.

Pure functions over `PersonRating`s (one per rated person in a cycle) and, for the group
analyses, a mapping from person id to the person's group for one attribute (None or absent
when unknown). No database access: the caller loads ratings and demographics and computes
the evidence features.

Evidence features (proposal, implemented in `service.bias.evidence_features`): from the
person's records in the cycle period, the count of work records, the measured outcomes
they and the person's recognition state (`retrieval.outcomes.outcome_count`), the count of
recognition, goal progress from goal-record `metadata.status` (met/ahead +1, on track 0,
missed/at risk -1), the share of work records reporting setbacks, the shares of 1:1 notes
with concerns and with praise, the share of 1:1 follow-ups done, and the share of peer
feedback that is growth-focused, and (issue 14) the measured gain of "from A to B"
results and the share of targets said met. On the synthetic org these explain R^2 ~ 0.6
of the fair rating from one half-year of records in the trimmed fit, about 0.53 by plain
least squares over everyone (residual SD ~ 0.6 rating points). Every analysis
here that compares a rating with "what the evidence predicts" is only as good as that
fit, so `EvidenceModel.r_squared` travels with the results for the report to print.

Thresholds, and why:
- `MIN_GROUP` (5): design rule, no group statistic over fewer than 5 people.
- Four-fifths (`FOUR_FIFTHS` = 0.8): EEOC Uniform Guidelines on Employee Selection
  Procedures (1978), 29 CFR 1607.4(D). The ratio alone is a rule of thumb that small
  groups fail by chance, so a group is *flagged* only when it is also significant by
  Fisher's exact test against the highest-rate group, Holm-adjusted across groups.
- `GAP_THRESHOLD` (0.25 points): an evidence-adjusted group gap smaller than a quarter of
  a rating step changes few ratings; flagged only when also significant (Holm).
- `MIN_REPORTS` (3): fewer rated reports say nothing about a manager's habits.
- `LENIENCY_CLIP` (1 point): residuals are clipped before a manager's mean, so one
  mismatched rating in a small team does not pass for a habit (without the clip, false
  manager flags appeared in 5 of 10 synthetic seeds; with it, in 1 of 10).
- Manager leniency (issue 14): a mixed model (random manager intercept, REML) shrinks
  each team's mean residual; flagged when the shrunken offset's 95% interval excludes
  `FLAG_THRESHOLD` (0 points) *and* the managers are shown to differ at all: the one-way
  ANOVA F test of the clipped residuals by manager, the exact test of tau^2 = 0, at
  ALPHA (`between_managers_p`). Shrinkage guards against the hundreds of managers tested
  once tau^2 is known; the F test guards against the tau^2 that REML finds in a fair org
  by chance (about 30 managers at 120 people), with which the most extreme team's
  interval excludes zero: on 60 clean synthetic orgs of 120 people, 5 had a false
  manager flag without the test, 2 with it (the cost: 71 rather than 80 of 120 planted
  managers found at 120 people; none at 2,400, where the test passes in every planted
  org). `LENIENCY_THRESHOLD` (0.5 points, half a rating step) decides what is said of a
  manager not flagged: "within" when the unshrunken 95% interval of the team mean rules
  out an offset that size, else "not enough rated reports to tell". See
  `manager_leniency`.
- Mismatched rating (issue 14): outside the evidence model's textbook prediction interval
  (t * s * sqrt(1 + h)) at level 1 - ALPHA / N (Bonferroni over the N rated people) and
  |residual| >= `MISMATCH_POINTS` (1.5: more than one full step beyond the normal
  one-step disagreement of two fair raters). A flagged manager's shrunken offset is
  removed first: that rating is explained by the manager, and reported there. A rating
  1.5+ points off but inside the interval is listed "not enough evidence", not flagged.
  The class of error fixed in the second round: s was the residual SD of the trimmed fit
  (the one without every rating 1.5+ points off), so the interval left out the very tail
  it must describe: 8-10 % too narrow (0.55 against 0.60 at 2,400 people) with a normal
  quantile, where the residuals of discrete ratings are heavier-tailed than normal
  (excess kurtosis 0.4-0.9: 15 % of fair ratings are a step off). At the Bonferroni tail
  (3.3-4.3 SD) that put false flags in 4 of 10 clean synthetic orgs at 120 people (5
  ratings 1.96-2.51 points off against half-widths of 1.8-2.3) and 2 of 10 at 2,400. Now
  s is the SD over every rating but those already outside (`_interval_halves`) with
  Student t quantiles: 0 of 10 clean orgs at either size (1 of 60 at 120 people). The
  old robust z (`MISMATCH_Z`, Iglewicz & Hoaglin 1993) is still reported; it flagged 10
  of 10 clean synthetic orgs (21 flags at 120 people) because a MAD scale of discrete
  ratings is too narrow. What this cannot find, said with numbers in
  docs/bias-measures.md: the synthetic org's planted mismatches (fair +- 2 steps) lie a
  median 1.8 points from the prediction, inside the range a clean org of the same size
  reaches by itself.
"""

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from math import isfinite, sqrt
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field
from scipy import stats as sps  # type: ignore[import-untyped]
from statsmodels.regression.linear_model import OLS
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.tools.sm_exceptions import SingularMatrixWarning

from service.bias.stats import ALPHA, MIN_GROUP, Value, adjust_p

FOUR_FIFTHS = 0.8
GAP_THRESHOLD = 0.25
MIN_REPORTS = 3
LENIENCY_THRESHOLD = 0.5
MISMATCH_POINTS = 1.5
LENIENCY_CLIP = 1.0
MISMATCH_Z = 2.5  # before issue 14; robust_z is still reported, no longer decides
FLAG_THRESHOLD = 0.0
CI_Z = 1.959963984540054  # two-sided 95 %
_MAD_TO_SD = 1.4826  # MAD of a normal sample times this estimates its SD

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PersonRating:
    person_id: int
    manager_id: int | None
    rating: float
    evidence: dict[str, float]  # evidence features computed by the caller


# ---------------------------------------------------------------- distributions


class GroupDistribution(Value):
    group: str
    n: int
    counts: dict[int, int] | None = Field(description="Rating -> people; None when suppressed.")
    mean: float | None
    suppressed: bool


class RatingDistribution(Value):
    attribute: str
    scale: tuple[int, int]
    groups: tuple[GroupDistribution, ...]
    p_value: float | None = Field(
        description="Kruskal-Wallis across the unsuppressed groups; None with fewer than two."
    )


def rating_distribution(
    ratings: Sequence[PersonRating],
    groups: Mapping[int, str | None],
    scale: tuple[int, int],
    *,
    attribute: str = "",
) -> RatingDistribution:
    """Counts per rating (rounded to the scale) per group, and whether the groups' ratings
    differ (Kruskal & Wallis 1952; rank based, suits a five-point scale)."""
    low, high = scale
    split = _split(ratings, groups)
    out = []
    testable = []
    for group, values in split.items():
        if len(values) < MIN_GROUP:
            out.append(
                GroupDistribution(
                    group=group, n=len(values), counts=None, mean=None, suppressed=True
                )
            )
            continue
        points = np.clip(np.rint(values), low, high).astype(int)
        counts = {r: int((points == r).sum()) for r in range(low, high + 1)}
        out.append(
            GroupDistribution(
                group=group,
                n=len(values),
                counts=counts,
                mean=float(values.mean()),
                suppressed=False,
            )
        )
        testable.append(values)
    p = None
    if len(testable) >= 2 and np.ptp(np.concatenate(testable)) > 0:
        p = float(sps.kruskal(*testable).pvalue)
    return RatingDistribution(attribute=attribute, scale=scale, groups=tuple(out), p_value=p)


# ---------------------------------------------------------------- adverse impact


class ImpactGroup(Value):
    group: str
    n: int
    top_count: int | None = Field(description="People at the top; None when suppressed.")
    rate: float | None = Field(description="Share of the group at or above `top`.")
    ratio: float | None = Field(description="Rate / the highest group's (adverse-impact ratio).")
    p_value: float | None = Field(description="Fisher exact, two-sided, vs the highest group.")
    p_adjusted: float | None = Field(description="Holm across the groups of this attribute.")
    below_four_fifths: bool = Field(description="Ratio under 0.8, the EEOC rule of thumb alone.")
    flagged: bool = Field(description="Below four fifths and significant after adjustment.")
    suppressed: bool


class AdverseImpact(Value):
    attribute: str
    top: float
    reference: str | None = Field(description="The highest-rate unsuppressed group.")
    groups: tuple[ImpactGroup, ...]


def adverse_impact(
    ratings: Sequence[PersonRating],
    groups: Mapping[int, str | None],
    *,
    top: float,
    attribute: str = "",
) -> AdverseImpact:
    """Top-rating rate per group and its ratio to the highest rate (four-fifths rule)."""
    split = _split(ratings, groups)
    shown = {g: v for g, v in split.items() if v.size >= MIN_GROUP}
    tops = {g: int((v >= top).sum()) for g, v in shown.items()}
    rates = {g: tops[g] / shown[g].size for g in shown}
    reference = max(rates, key=lambda g: (rates[g], shown[g].size, g)) if rates else None
    raw: dict[str, float] = {}
    if reference is not None:
        ref_top, ref_n = tops[reference], shown[reference].size
        for g in shown:
            if g != reference:
                table = [[tops[g], shown[g].size - tops[g]], [ref_top, ref_n - ref_top]]
                raw[g] = float(sps.fisher_exact(table).pvalue)
    adjusted = dict(zip(raw, adjust_p(list(raw.values())), strict=True))
    out = []
    for g, values in split.items():
        if g not in shown:
            out.append(_suppressed_impact(g, values.size))
            continue
        best = rates[reference] if reference is not None else 0.0
        ratio = rates[g] / best if best > 0 else None
        below = ratio is not None and ratio < FOUR_FIFTHS
        p_adj = adjusted.get(g)
        flagged = below and p_adj is not None and p_adj < ALPHA
        out.append(
            ImpactGroup(
                group=g,
                n=values.size,
                top_count=tops[g],
                rate=rates[g],
                ratio=ratio,
                p_value=raw.get(g),
                p_adjusted=p_adj,
                below_four_fifths=below,
                flagged=flagged,
                suppressed=False,
            )
        )
    return AdverseImpact(attribute=attribute, top=top, reference=reference, groups=tuple(out))


def _suppressed_impact(group: str, n: int) -> ImpactGroup:
    return ImpactGroup(
        group=group,
        n=n,
        top_count=None,
        rate=None,
        ratio=None,
        p_value=None,
        p_adjusted=None,
        below_four_fifths=False,
        flagged=False,
        suppressed=True,
    )


# ---------------------------------------------------------------- evidence model


@dataclass(frozen=True)
class EvidenceModel:
    """Ordinary least squares of rating on the evidence features (plus an intercept)."""

    features: list[str]  # the features used (constant ones are dropped)
    coefficients: dict[str, float]  # "intercept" and one per feature
    n: int
    r_squared: float
    residual_sd: float  # sqrt(RSS / (n - parameters))


def fit_evidence_model(
    ratings: Sequence[PersonRating], *, robust: bool = True
) -> tuple[EvidenceModel, Array]:
    """The fit, and each rating's residual (rating - predicted), in input order.

    With `robust` (the default) the fit is done twice: the second time without the
    ratings the first fit marks as far off (|residual| >= MISMATCH_POINTS) and without
    the reports of managers whose mean residual is both >= LENIENCY_THRESHOLD and
    nominally significant. A one-step trimmed least squares: a harsh manager's or a
    mismatched rating's own offset then neither bends the evidence coefficients nor
    inflates the residual SD that every test here is scaled by. Residuals are then
    computed for everyone, and `n`, `r_squared` and `residual_sd` describe the kept fit.
    """
    y = _ratings(ratings)
    x, names = _evidence_matrix(ratings)
    design = np.column_stack([np.ones(len(y)), x])
    keep = np.ones(len(y), dtype=bool)
    first_fit = _ols(design, y)
    beta, residuals = first_fit.beta, first_fit.residuals
    if robust and len(y):
        keep = _typical(ratings, residuals, _residual_sd(residuals, design.shape[1]))
        if keep.sum() > 2 * design.shape[1] and not keep.all():
            beta = _ols(design[keep], y[keep]).beta
            residuals = y - design @ beta
        else:
            keep[:] = True
    kept, kept_y = residuals[keep], y[keep]
    rss = float(kept @ kept)
    tss = float(((kept_y - kept_y.mean()) ** 2).sum()) if kept_y.size else 0.0
    model = EvidenceModel(
        features=names,
        coefficients=dict(zip(["intercept", *names], map(float, beta), strict=True)),
        n=int(kept_y.size),
        r_squared=1.0 - rss / tss if tss > 0 else 0.0,
        residual_sd=_residual_sd(kept, design.shape[1]),
    )
    return model, residuals


def _residual_sd(residuals: Array, parameters: int) -> float:
    df = residuals.size - parameters
    return sqrt(float(residuals @ residuals) / df) if df > 0 else 0.0


def _typical(ratings: Sequence[PersonRating], residuals: Array, sd: float) -> npt.NDArray[np.bool_]:
    """The ratings a first fit does not already mark as off (see fit_evidence_model)."""
    keep = np.abs(residuals) < MISMATCH_POINTS
    teams: dict[int, list[int]] = {}
    for i, r in enumerate(ratings):
        if r.manager_id is not None:
            teams.setdefault(r.manager_id, []).append(i)
    for members in teams.values():
        if len(members) < MIN_REPORTS or sd <= 0:
            continue
        mean = float(residuals[members].mean())
        z = mean / (sd / sqrt(len(members)))
        if abs(mean) >= LENIENCY_THRESHOLD and 2 * sps.norm.sf(abs(z)) < ALPHA:
            keep[members] = False
    return keep


# ---------------------------------------------------------------- adjusted gap


class GroupGap(Value):
    group: str
    n: int
    raw_gap: float | None = Field(description="Group mean rating - reference mean rating.")
    coefficient: float | None = Field(
        description="The same gap with the evidence held equal (OLS dummy)."
    )
    ci_low: float | None = Field(description="95% confidence interval of the coefficient.")
    ci_high: float | None
    p_value: float | None = Field(description="t test of the coefficient.")
    p_adjusted: float | None = Field(description="Holm across the groups of this attribute.")
    flagged: bool = Field(description="Significant after adjustment and at least 0.25 points.")
    suppressed: bool


class AdjustedGap(Value):
    attribute: str
    reference: str | None = Field(description="The largest group: the baseline of the dummies.")
    features: tuple[str, ...]
    n: int
    r_squared: float | None
    groups: tuple[GroupGap, ...] = Field(description="One per group other than the reference.")


def evidence_adjusted_gap(
    ratings: Sequence[PersonRating], groups: Mapping[int, str | None], *, attribute: str = ""
) -> AdjustedGap:
    """OLS of rating on the evidence features plus one dummy per group (the largest group
    is the baseline). A dummy's coefficient is the rating gap between that group and the
    baseline among people with the same evidence; a raw gap that the evidence explains
    shrinks to ~0. People of unknown group are left out. Small groups keep their dummy
    (so they do not distort the others) but their row is suppressed."""
    known = [r for r in ratings if groups.get(r.person_id) is not None]
    labels = [str(groups[r.person_id]) for r in known]
    sizes = {g: labels.count(g) for g in sorted(set(labels))}
    if len(sizes) < 2:
        return AdjustedGap(
            attribute=attribute,
            reference=next(iter(sizes), None),
            features=(),
            n=len(known),
            r_squared=None,
            groups=(),
        )
    reference = max(sizes, key=lambda g: (sizes[g], g))
    others = [g for g in sizes if g != reference]
    y = _ratings(known)
    x, names = _evidence_matrix(known)
    dummies = np.array([[1.0 if lab == g else 0.0 for g in others] for lab in labels])
    design = np.column_stack([np.ones(len(y)), x, dummies])
    fit = _ols(design, y)
    rss = float(fit.residuals @ fit.residuals)
    tss = float(((y - y.mean()) ** 2).sum())
    ref_mean = float(y[np.array(labels) == reference].mean())
    first = 1 + x.shape[1]
    rows: list[tuple[str, _Term]] = []
    for k, g in enumerate(others):
        if sizes[g] >= MIN_GROUP and sizes[reference] >= MIN_GROUP and fit.df > 0:
            rows.append((g, fit.term(first + k)))
    adjusted = dict(zip([r[0] for r in rows], adjust_p([r[1].p for r in rows]), strict=True))
    tested = dict(rows)
    out = []
    for g in others:
        if g not in tested:
            out.append(_suppressed_gap(g, sizes[g]))
            continue
        term = tested[g]
        raw_gap = float(y[np.array(labels) == g].mean()) - ref_mean
        p_adj = adjusted[g]
        out.append(
            GroupGap(
                group=g,
                n=sizes[g],
                raw_gap=raw_gap,
                coefficient=term.coef,
                ci_low=term.low,
                ci_high=term.high,
                p_value=term.p,
                p_adjusted=p_adj,
                flagged=p_adj < ALPHA and abs(term.coef) >= GAP_THRESHOLD,
                suppressed=False,
            )
        )
    return AdjustedGap(
        attribute=attribute,
        reference=reference,
        features=tuple(names),
        n=len(known),
        r_squared=1.0 - rss / tss if tss > 0 else None,
        groups=tuple(out),
    )


def _suppressed_gap(group: str, n: int) -> GroupGap:
    return GroupGap(
        group=group,
        n=n,
        raw_gap=None,
        coefficient=None,
        ci_low=None,
        ci_high=None,
        p_value=None,
        p_adjusted=None,
        flagged=False,
        suppressed=True,
    )


# ---------------------------------------------------------------- managers


Verdict = Literal["harsh", "generous", "within", "not_enough_evidence"]


class ManagerLeniency(Value):
    manager_id: int
    n: int = Field(description="Rated reports.")
    mean_residual: float = Field(
        description="Mean of the clipped (rating - evidence-predicted rating) over the reports."
    )
    z: float = Field(description="mean_residual / (residual_sd / sqrt(n)), before shrinkage.")
    p_value: float
    p_adjusted: float = Field(description="Benjamini-Hochberg across managers (informative).")
    direction: Literal["harsh", "generous"] = Field(
        description="harsh: below the evidence; generous: above it."
    )
    flagged: bool = Field(
        description="The shrunken estimate's 95% interval excludes zero, and the managers "
        "are shown to differ at all (one-way F test, p < 0.05)."
    )
    # issue 14; None in reports stored before it
    estimate: float | None = Field(
        default=None, description="The mixed model's shrunken offset (BLUP), rating points."
    )
    ci_low: float | None = Field(default=None, description="95% interval of `estimate`.")
    ci_high: float | None = None
    verdict: Verdict | None = Field(
        default=None,
        description="harsh/generous (flagged), within (offset under half a step, told "
        "apart from it), not_enough_evidence (too few rated reports to tell).",
    )


@dataclass(frozen=True)
class _Components:
    """The random-intercept model's variance components and fixed intercept."""

    between_var: float  # tau^2: variance of the managers' true offsets
    within_var: float  # sigma^2: variance of a report's clipped residual around its manager
    intercept: float


def manager_leniency(ratings: Sequence[PersonRating]) -> list[ManagerLeniency]:
    """Managers whose ratings sit consistently above or below what their reports'
    evidence predicts, flagged first, then by the size of the offset.

    Two stages. The evidence model is fitted on everyone (robustly, see
    `fit_evidence_model`); each residual is clipped to +-LENIENCY_CLIP (1 point), so one
    far-off rating, which `mismatched_ratings` reports on its own, cannot make a team of
    three look harsh. Then a linear mixed model (statsmodels MixedLM, REML) with a random
    intercept per manager is fitted to the clipped residuals of everyone with a manager:
    it estimates how much managers really differ (tau^2) against the noise of one report
    (sigma^2). Each manager's offset is its best linear unbiased prediction, the team mean
    shrunk toward zero by tau^2 / (tau^2 + sigma^2 / n): a manager with three reports is
    pulled far toward "like everyone else", one with twelve hardly. Its 95% interval is
    the prediction's conditional SD, sqrt(shrink * sigma^2 / n), times 1.96.

    Flagged (threshold `FLAG_THRESHOLD`, 0 points) when that interval lies wholly on
    one side of zero and the one-way F test shows that the managers differ at all
    (`between_managers_p` < ALPHA): the shrinkage is the multiplicity guard once tau^2 is
    known (on a clean org tau^2 is estimated near 0 and every interval shrinks onto
    zero), and the F test keeps a tau^2 that REML finds by chance among a few dozen
    managers from flagging the most extreme of them; measured by evals/eval_ratings.py
    (see the module docstring). Not flagged managers get a verdict from
    the unshrunken 95% interval of their team mean (mean +- 1.96 sigma / sqrt(n)):
    "within" when it lies inside +-LENIENCY_THRESHOLD (half a step: the data rule out an
    offset that size), otherwise "not_enough_evidence": too few rated reports to tell,
    said rather than left silent. Managers with fewer than MIN_REPORTS are not listed.
    """
    return check_ratings(ratings).managers


def _components(residuals: Array, managers: Sequence[int]) -> _Components:
    """REML fit of residual ~ 1 + (1 | manager). BFGS: L-BFGS-B stops at tau^2 = 0 from
    statsmodels' start on these data. Falls back to no between-manager variance when the
    fit fails (fewer than two managers, or a degenerate sample)."""
    total = float(np.var(residuals)) if residuals.size else 0.0
    if len(set(managers)) < 2 or residuals.size < 3 or total <= 0:
        return _Components(0.0, total, float(residuals.mean()) if residuals.size else 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boundary (tau^2 = 0) and convergence notes
        try:
            fit = MixedLM(residuals, np.ones((residuals.size, 1)), groups=np.asarray(managers))
            result = fit.fit(reml=True, method="bfgs")
        except (ValueError, np.linalg.LinAlgError):
            return _Components(0.0, total, float(residuals.mean()))
    between = float(np.asarray(result.cov_re)[0, 0])
    within = float(result.scale)
    if not (isfinite(between) and isfinite(within)) or within <= 0:
        return _Components(0.0, total, float(residuals.mean()))
    return _Components(max(between, 0.0), within, float(np.asarray(result.fe_params)[0]))


def _leniency(
    ratings: Sequence[PersonRating], residuals: Array, model: EvidenceModel
) -> list[ManagerLeniency]:
    clipped = np.clip(residuals, -LENIENCY_CLIP, LENIENCY_CLIP)
    teams: dict[int, list[float]] = {}
    for r, res in zip(ratings, clipped, strict=True):
        if r.manager_id is not None:
            teams.setdefault(r.manager_id, []).append(float(res))
    eligible = sorted(m for m, v in teams.items() if len(v) >= MIN_REPORTS)
    if not eligible:
        return []
    members = [m for m, v in teams.items() for _ in v]
    values = np.asarray([x for v in teams.values() for x in v], dtype=np.float64)
    parts = _components(values, members)
    df = max(model.n - len(model.features) - 1, 1)
    differ = between_managers_p(teams.values()) < ALPHA
    rows = [_manager(m, np.asarray(teams[m]), parts, df, differ=differ) for m in eligible]
    adjusted = adjust_p([row.p_value for row in rows], method="bh")
    out = [row.model_copy(update={"p_adjusted": p}) for row, p in zip(rows, adjusted, strict=True)]
    return sorted(out, key=lambda m: (not m.flagged, -abs(m.estimate or 0.0), m.manager_id))


def between_managers_p(teams: Iterable[Sequence[float]]) -> float:
    """One-way ANOVA F test that the managers' mean (clipped) residuals differ at all:
    under normal errors it is the exact test of tau^2 = 0 in the random-intercept model,
    balanced teams or not (Searle, Casella & McCulloch, Variance Components, 1992).
    1.0 (nothing shown) when there are fewer than two teams or no team of two."""
    groups = [np.asarray(t, dtype=np.float64) for t in teams if len(t)]
    within_df = sum(g.size for g in groups) - len(groups)
    if len(groups) < 2 or within_df < 1:
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: no difference to show
        p = float(sps.f_oneway(*groups).pvalue)
    return p if isfinite(p) else 1.0


def _manager(
    manager: int, values: Array, parts: _Components, df: int, *, differ: bool
) -> ManagerLeniency:
    """One manager's shrunken offset, its interval and verdict (see manager_leniency):
    flagged only where the managers are shown to differ at all (`differ`)."""
    n = values.size
    mean = float(values.mean())
    noise = parts.within_var / n
    shrink = parts.between_var / (parts.between_var + noise) if parts.between_var > 0 else 0.0
    estimate = shrink * (mean - parts.intercept)
    half = CI_Z * sqrt(shrink * noise)
    low, high = estimate - half, estimate + half
    raw_half = CI_Z * sqrt(noise)
    z = mean / sqrt(noise) if noise > 0 else 0.0
    verdict: Verdict
    if differ and high < -FLAG_THRESHOLD:
        verdict = "harsh"
    elif differ and low > FLAG_THRESHOLD:
        verdict = "generous"
    elif abs(mean) + raw_half < LENIENCY_THRESHOLD:
        verdict = "within"
    else:
        verdict = "not_enough_evidence"
    return ManagerLeniency(
        manager_id=manager,
        n=n,
        mean_residual=mean,
        z=z,
        p_value=float(2 * sps.t.sf(abs(z), df)),
        p_adjusted=1.0,
        direction="harsh" if estimate < 0 or (estimate == 0 and mean < 0) else "generous",
        flagged=verdict in ("harsh", "generous"),
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        verdict=verdict,
    )


# ---------------------------------------------------------------- single ratings


MismatchVerdict = Literal["mismatch", "not_enough_evidence"]


class MismatchedRating(Value):
    person_id: int
    manager_id: int | None
    rating: float
    expected: float = Field(
        description="What the evidence predicts (plus a flagged manager's offset)."
    )
    residual: float = Field(description="rating - expected.")
    robust_z: float = Field(description="(residual - median) / (1.4826 * MAD) over everyone.")
    # issue 14; None in reports stored before it
    pi_low: float | None = Field(
        default=None, description="Prediction interval of the rating, at `level`."
    )
    pi_high: float | None = None
    level: float | None = Field(
        default=None, description="The prediction interval's level: 1 - 0.05 / rated people."
    )
    verdict: MismatchVerdict | None = Field(
        default=None,
        description="mismatch: outside the prediction interval (a finding); "
        "not_enough_evidence: at least 1.5 points off but inside it, so the evidence model's "
        "own error cannot be ruled out. None in reports stored before it.",
    )


@dataclass(frozen=True)
class RatingsCheck:
    """The evidence model, the managers and the single ratings of one fit."""

    model: EvidenceModel
    managers: list[ManagerLeniency]
    mismatched: list[MismatchedRating]  # outside the prediction interval, largest first
    undecided: list[MismatchedRating]  # >= MISMATCH_POINTS off but inside it, largest first
    residuals: Array  # rating - predicted, per input rating (see fit_evidence_model)


def check_ratings(ratings: Sequence[PersonRating]) -> RatingsCheck:
    """Managers and single ratings against the evidence from one evidence fit and one
    mixed model (the bias report and the panel page call this once rather than fitting
    twice)."""
    if not ratings:
        empty = EvidenceModel([], {}, 0, 0.0, 0.0)
        return RatingsCheck(empty, [], [], [], np.zeros(0))
    model, residuals = fit_evidence_model(ratings)
    managers = _leniency(ratings, residuals, model)
    off = _far_from_evidence(ratings, residuals, model, managers)
    mismatched = [m for m in off if m.verdict == "mismatch"]
    undecided = [m for m in off if m.verdict == "not_enough_evidence"]
    return RatingsCheck(model, managers, mismatched, undecided, residuals)


def mismatched_ratings(ratings: Sequence[PersonRating]) -> list[MismatchedRating]:
    """Single ratings outside the evidence model's prediction interval, largest first.

    The interval is the textbook prediction interval of a linear model (e.g. Weisberg,
    Applied Linear Regression, 4th ed., 2014): prediction +- t * s * sqrt(1 +
    h), h the rating's leverage, t the Student t quantile of s's degrees of freedom, at
    level 1 - ALPHA / N for N rated people (Bonferroni over everyone rated in the
    cycle): on an org with no far-off rating the chance that any rating is flagged is then
    at most about 5 %, the family-wise error the group tests keep. A 95 % interval per
    person would flag one rating in twenty of a fair org: 120 false flags at 2,400 people.

    s is the residual SD over every rating analysed but those already outside their
    interval (`_interval_halves`), not the trimmed fit's: the trimmed SD leaves out every
    rating 1.5+ points off, the very tail the interval must describe (see the module
    docstring for what that cost). A flagged manager's shrunken offset is
    removed first: that rating is explained by the manager, and reported there. A rating at
    least MISMATCH_POINTS (1.5) off but inside the interval is not flagged: `check_ratings`
    lists it as "not_enough_evidence" (the evidence model's own error cannot be ruled
    out), said rather than left silent."""
    return check_ratings(ratings).mismatched


def _far_from_evidence(
    ratings: Sequence[PersonRating],
    residuals: Array,
    model: EvidenceModel,
    managers: Sequence[ManagerLeniency],
) -> list[MismatchedRating]:
    """Every rating at least MISMATCH_POINTS from the evidence, with its prediction
    interval and verdict (see mismatched_ratings), outside the interval first, then by
    the size of the residual."""
    offsets = {m.manager_id: m.estimate or 0.0 for m in managers if m.flagged}
    shift = np.array(
        [offsets.get(r.manager_id, 0.0) if r.manager_id is not None else 0.0 for r in ratings]
    )
    adjusted = residuals - shift
    n, parameters = len(ratings), len(model.features) + 1
    if n - parameters < 1:
        return []
    halves = _interval_halves(adjusted, _leverage(ratings), parameters)
    center = float(np.median(adjusted))
    mad = float(np.median(np.abs(adjusted - center))) * _MAD_TO_SD
    spread = mad if mad > 0 else (float(np.std(adjusted)) or 1.0)
    level = 1.0 - ALPHA / n
    out = []
    for r, res, half in zip(ratings, adjusted, halves, strict=True):
        if abs(res) < MISMATCH_POINTS:
            continue
        expected = r.rating - float(res)
        out.append(
            MismatchedRating(
                person_id=r.person_id,
                manager_id=r.manager_id,
                rating=r.rating,
                expected=expected,
                residual=float(res),
                robust_z=(float(res) - center) / spread,
                pi_low=expected - float(half),
                pi_high=expected + float(half),
                level=level,
                verdict="mismatch" if abs(res) > half else "not_enough_evidence",
            )
        )
    return sorted(out, key=lambda m: (m.verdict != "mismatch", -abs(m.residual), m.person_id))


def _interval_halves(adjusted: Array, leverage: Array, parameters: int) -> Array:
    """Half-widths of the prediction intervals at level 1 - ALPHA / N: t * s * sqrt(1 + h).

    s is the residual SD over every rating but those already outside their interval: a
    first pass over everyone, then again without the ratings it put outside, until no
    more leave (they only can: s falls as they go). On a fair org the first pass puts
    none outside and that is the answer, so the family-wise error stays the first
    pass's; where a few ratings are far off, they do not widen the others' intervals."""
    n = adjusted.size
    outside = np.zeros(n, dtype=bool)
    while True:
        kept = adjusted[~outside]
        df = kept.size - parameters
        if df < 1:
            return np.full(n, np.inf)
        scale = sqrt(float(kept @ kept) / df)
        halves = float(sps.t.isf(ALPHA / (2 * n), df)) * scale * np.sqrt(1.0 + leverage)
        now = (np.abs(adjusted) > halves) & (np.abs(adjusted) >= MISMATCH_POINTS)
        if not (now & ~outside).any():
            return halves
        outside |= now


def _leverage(ratings: Sequence[PersonRating]) -> Array:
    """Each rating's leverage in the evidence fit: diag(X (X'X)^+ X')."""
    x, _ = _evidence_matrix(ratings)
    design = np.column_stack([np.ones(len(ratings)), x])
    inverse = np.linalg.pinv(design.T @ design)
    return np.asarray(np.einsum("ij,jk,ik->i", design, inverse, design), dtype=np.float64)


# ---------------------------------------------------------------- helpers


def _split(ratings: Sequence[PersonRating], groups: Mapping[int, str | None]) -> dict[str, Array]:
    split: dict[str, list[float]] = {}
    for r in ratings:
        group = groups.get(r.person_id)
        if group is not None and isfinite(r.rating):
            split.setdefault(group, []).append(float(r.rating))
    return {g: np.asarray(v, dtype=np.float64) for g, v in sorted(split.items())}


def _ratings(ratings: Sequence[PersonRating]) -> Array:
    return np.asarray([r.rating for r in ratings], dtype=np.float64)


def _evidence_matrix(ratings: Sequence[PersonRating]) -> tuple[Array, list[str]]:
    """One column per evidence feature seen; a missing or non-finite value takes the
    feature's mean; constant columns are dropped (they carry no information)."""
    names = sorted({k for r in ratings for k in r.evidence})
    x = np.full((len(ratings), len(names)), np.nan)
    for i, r in enumerate(ratings):
        for j, name in enumerate(names):
            value = r.evidence.get(name)
            if value is not None and isfinite(value):
                x[i, j] = value
    keep = []
    for j in range(len(names)):
        column = x[:, j]
        present = column[~np.isnan(column)]
        if present.size == 0:
            continue
        column[np.isnan(column)] = present.mean()
        if np.ptp(column) > 0:
            keep.append(j)
    return x[:, keep], [names[j] for j in keep]


@dataclass(frozen=True)
class _Term:
    """One coefficient of a fit with its 95% confidence interval and two-sided t-test."""

    coef: float
    low: float
    high: float
    p: float  # 1.0 when the standard error is 0 (no evidence either way)


@dataclass(frozen=True)
class _Fit:
    """An OLS fit by statsmodels, kept as plain arrays so callers need no statsmodels types.

    `se`, `low` and `high` are NaN when there are no residual degrees of freedom."""

    beta: Array
    residuals: Array
    df: int  # residual degrees of freedom: n - rank of the design
    se: Array
    low: Array
    high: Array
    p: Array

    def term(self, k: int) -> _Term:
        se = float(self.se[k])
        p = float(self.p[k]) if se > 0 else 1.0
        return _Term(float(self.beta[k]), float(self.low[k]), float(self.high[k]), p)


def _ols(design: Array, y: Array) -> _Fit:
    """Ordinary least squares through statsmodels (pseudo-inverse, so a rank-deficient
    design gets the minimum-norm solution and df = n - rank), with classical standard
    errors, 95% t intervals and t-test p-values. Done by statsmodels rather than by hand
    so the interval arithmetic is a library's tested code, not ours."""
    k = design.shape[1]
    nan = np.full(k, np.nan)
    if len(y) == 0:
        return _Fit(np.zeros(k), np.zeros(0), 0, nan, nan, nan, nan)
    with warnings.catch_warnings():
        # a rank-deficient design (a feature that copies a group dummy) is expected here:
        # the minimum-norm fit and df = n - rank are the intended answer, not a fault
        warnings.simplefilter("ignore", category=SingularMatrixWarning)
        result = OLS(y, design).fit()
    beta = np.asarray(result.params, dtype=np.float64)
    residuals = np.asarray(result.resid, dtype=np.float64)
    df = round(float(result.df_resid))
    if df <= 0:
        return _Fit(beta, residuals, df, nan, nan, nan, nan)
    interval = np.asarray(result.conf_int(alpha=0.05), dtype=np.float64)
    return _Fit(
        beta,
        residuals,
        df,
        np.asarray(result.bse, dtype=np.float64),
        interval[:, 0],
        interval[:, 1],
        np.asarray(result.pvalues, dtype=np.float64),
    )
