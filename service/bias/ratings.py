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
feedback that is growth-focused. On the synthetic org these explain R^2 ~ 0.6 of the fair
rating from one half-year of records (residual SD ~ 0.5 rating points). Every analysis
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
- `LENIENCY_THRESHOLD` (0.5 points): a manager is harsh or generous when their reports'
  ratings sit on average at least half a rating step from what the evidence predicts and
  the difference is significant after Benjamini-Hochberg (1995) across managers. Under a
  clean org (no manager effect at all) BH bounds the chance of any flag by `ALPHA`, like
  Holm, and with real effects present it loses less power, which matters with three to
  eight reports a manager.
- Mismatched rating: |residual| >= `MISMATCH_POINTS` (1.5: more than one full step beyond
  the normal one-step disagreement of two fair raters) and a robust z >= `MISMATCH_Z`
  (2.5, median/MAD scale, Iglewicz & Hoaglin 1993) so that a noisy evidence model does
  not make everything an outlier. A flagged manager's systematic offset is removed first:
  that rating is explained by the manager, and reported there.
"""

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import isfinite, sqrt
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field
from scipy import stats as sps  # type: ignore[import-untyped]
from statsmodels.regression.linear_model import OLS
from statsmodels.tools.sm_exceptions import SingularMatrixWarning

from service.bias.stats import ALPHA, MIN_GROUP, Value, adjust_p

FOUR_FIFTHS = 0.8
GAP_THRESHOLD = 0.25
MIN_REPORTS = 3
LENIENCY_THRESHOLD = 0.5
MISMATCH_POINTS = 1.5
LENIENCY_CLIP = 1.0
MISMATCH_Z = 2.5
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


class ManagerLeniency(Value):
    manager_id: int
    n: int = Field(description="Rated reports.")
    mean_residual: float = Field(
        description="Mean of the clipped (rating - evidence-predicted rating) over the reports."
    )
    z: float = Field(description="mean_residual / (residual_sd / sqrt(n)).")
    p_value: float
    p_adjusted: float = Field(description="Benjamini-Hochberg across managers.")
    direction: Literal["harsh", "generous"] = Field(
        description="harsh: below the evidence; generous: above it."
    )
    flagged: bool = Field(description="Significant after adjustment and at least half a step.")


def manager_leniency(ratings: Sequence[PersonRating]) -> list[ManagerLeniency]:
    """Managers whose ratings sit consistently above or below what their reports'
    evidence predicts, most extreme first (flagged ones before the rest).

    The evidence model is fitted on everyone (robustly, see `fit_evidence_model`); each
    residual is clipped to +-LENIENCY_CLIP (1 point) so that one far-off rating, which
    `mismatched_ratings` reports on its own, cannot make a team of three look harsh; each
    manager's mean clipped residual is tested against 0 with the org-wide RMS of the
    clipped residuals (a z test, via the t distribution with the fit's degrees of
    freedom): a per-manager sample SD from three to eight reports would leave the test
    almost powerless, while the org-wide one is estimated from every rated person. The
    p-values are Benjamini-Hochberg adjusted across all managers tested.
    """
    if not ratings:
        return []
    model, residuals = fit_evidence_model(ratings)
    return _leniency(ratings, residuals, model)


def _leniency(
    ratings: Sequence[PersonRating], residuals: Array, model: EvidenceModel
) -> list[ManagerLeniency]:
    teams: dict[int, list[float]] = {}
    for r, res in zip(ratings, residuals, strict=True):
        if r.manager_id is not None:
            teams.setdefault(r.manager_id, []).append(float(res))
    eligible = sorted(m for m, v in teams.items() if len(v) >= MIN_REPORTS)
    df = max(model.n - len(model.features) - 1, 1)
    clipped = np.clip(residuals, -LENIENCY_CLIP, LENIENCY_CLIP)
    sd = float(np.sqrt(np.mean(clipped**2)))
    rows = []
    for manager in eligible:
        values = np.clip(np.asarray(teams[manager]), -LENIENCY_CLIP, LENIENCY_CLIP)
        mean = float(values.mean())
        scale = sd / sqrt(values.size)
        z = mean / scale if scale > 0 else 0.0
        rows.append((manager, values.size, mean, z, float(2 * sps.t.sf(abs(z), df))))
    adjusted = adjust_p([row[4] for row in rows], method="bh")
    out = [
        ManagerLeniency(
            manager_id=manager,
            n=n,
            mean_residual=mean,
            z=z,
            p_value=p,
            p_adjusted=p_adj,
            direction="harsh" if mean < 0 else "generous",
            flagged=p_adj < ALPHA and abs(mean) >= LENIENCY_THRESHOLD,
        )
        for (manager, n, mean, z, p), p_adj in zip(rows, adjusted, strict=True)
    ]
    return sorted(out, key=lambda m: (not m.flagged, -abs(m.mean_residual), m.manager_id))


# ---------------------------------------------------------------- single ratings


class MismatchedRating(Value):
    person_id: int
    manager_id: int | None
    rating: float
    expected: float = Field(
        description="What the evidence predicts (plus a flagged manager's offset)."
    )
    residual: float = Field(description="rating - expected.")
    robust_z: float = Field(description="(residual - median) / (1.4826 * MAD) over everyone.")


def mismatched_ratings(ratings: Sequence[PersonRating]) -> list[MismatchedRating]:
    """Single ratings far from what the evidence predicts, largest first: |residual| >=
    MISMATCH_POINTS and |robust z| >= MISMATCH_Z. The residual of a report of a flagged
    harsh or generous manager is taken after removing that manager's mean offset."""
    if not ratings:
        return []
    model, residuals = fit_evidence_model(ratings)
    offsets = {
        m.manager_id: m.mean_residual for m in _leniency(ratings, residuals, model) if m.flagged
    }
    shift = np.array(
        [offsets.get(r.manager_id, 0.0) if r.manager_id is not None else 0.0 for r in ratings]
    )
    adjusted = residuals - shift
    center = float(np.median(adjusted))
    mad = float(np.median(np.abs(adjusted - center))) * _MAD_TO_SD
    scale = mad if mad > 0 else (model.residual_sd or 1.0)
    out = []
    for r, res in zip(ratings, adjusted, strict=True):
        z = (float(res) - center) / scale
        if abs(res) >= MISMATCH_POINTS and abs(z) >= MISMATCH_Z:
            out.append(
                MismatchedRating(
                    person_id=r.person_id,
                    manager_id=r.manager_id,
                    rating=r.rating,
                    expected=r.rating - float(res),
                    residual=float(res),
                    robust_z=z,
                )
            )
    return sorted(out, key=lambda m: (-abs(m.residual), m.person_id))


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
