"""Group comparisons for the bias check: is a measure of the drafts (or of the people's final
texts) different for one demographic group than for the others?

Pure functions over plain values; the caller loads drafts, measures and demographics. The
design choices, each one a guard against false flags on small groups:

- **Privacy first.** A group of fewer than `MIN_GROUP` people (design rule: 5) gets its
  count but no mean and no test, and no comparison in which either side is that small is
  run. People whose group is unknown (`None`) are left out of every comparison.
- **Who is compared with whom.** Each group is compared with everyone else in the scope
  ("one vs rest"), so no group is silently made the norm and a group's standing does not
  depend on which other group happens to be largest. With exactly two groups the two
  one-vs-rest tests are the same test, so only one is run: the smaller group (focal)
  against the larger (reference).
- **Test.** Mann-Whitney U, two-sided (Mann & Whitney 1947), through `scipy.stats`: exact
  for small samples without ties, normal approximation with tie correction otherwise. It
  assumes nothing about the shape of the measure (counts, shares, scores), which suits
  drafts of a few hundred words and groups of a handful of people.
- **Effect size.** Cliff's delta (Cliff 1993), the rank-biserial correlation of the U
  test: P(focal > reference) - P(focal < reference), from -1 to 1, positive when the
  focal group scores higher. A difference is only flagged when |delta| >= `MIN_EFFECT`
  (0.33, the "medium" boundary of Romano et al. 2006): with thousands of drafts tiny
  differences become significant, and a flag should point at something a reader would
  notice.
- **Multiple comparisons.** A report runs hundreds of tests (measures x draft kinds x
  attributes x groups, and per author), so p-values are adjusted across the family,
  by default with Holm's step-down method (Holm 1979), which bounds the chance of *any*
  false flag at `ALPHA` (0.05) whatever the dependence between tests; Benjamini-Hochberg
  (1995) false-discovery-rate control is available for exploratory use. `compare_groups`
  adjusts within its own output; a report must call `adjust` once over the whole family
  so that the correction counts every test it ran.
- **Rare patterns: the share of drafts with a hit** (issue 14). On a count measure (hits of
  a word list) that is zero for most drafts, Cliff's delta is roughly the share of drafts
  with a hit, so a pattern in 20 % of one group's drafts never reaches 0.33 however
  significant it is. For such measures `compare_groups` also compares the share of drafts
  with at least one hit (`ShareTest`): Fisher's exact test (Fisher 1922; exact, so valid for
  the rare counts this is about), the risk ratio with its 95 % interval (Katz et al. 1978,
  log method, adding 0.5 to every cell when one is empty: Haldane 1956), and the rate per
  100 words from a Poisson model with the words as exposure (log-words offset) and robust
  (sandwich, HC0) standard errors, so that over-dispersed counts do not shrink the
  interval (Cameron & Trivedi 2013, ch. 3). The Fisher p and the rate p join the family that
  `adjust` corrects. A share difference is flagged when its adjusted p is below `ALPHA` and
  it passes a practical size rule: a risk ratio of at least `SHARE_MIN_RATIO` (1.25) or at
  most its inverse (0.8), the four-fifths rule of the Uniform Guidelines on Employee
  Selection Procedures (29 CFR 1607.4(D), 1978) read in both directions, and an absolute
  difference of at least `SHARE_MIN_DIFFERENCE` (5 percentage points). The second part is
  ours, in the spirit of the same guideline's call for differences "significant in both
  statistical and practical terms" and of Morris & Lobsenz (2000, Personnel Psychology 53,
  "Significance tests and confidence intervals for the adverse impact ratio"): a ratio
  alone over tiny shares (0.4 % vs 0.2 %) is not something a reader would notice. The rate
  model is reported beside the share, so a reader can see whether the difference survives
  the drafts' length; it does not flag by itself (a shift of every draft's rate is what
  the Mann-Whitney test on the rate measure already covers).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from math import exp, isfinite, log, sqrt

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats  # type: ignore[import-untyped]

Array = npt.NDArray[np.float64]

MIN_GROUP = 5  # design rule: no statistic over fewer than 5 people
ALPHA = 0.05  # family-wise (Holm) or false-discovery (BH) level of a flag
MIN_EFFECT = 0.33  # |Cliff's delta| needed to flag: "medium" in Romano et al. (2006)
SHARE_MIN_RATIO = 1.25  # risk ratio needed to flag a share: the four-fifths rule, inverted
SHARE_MIN_DIFFERENCE = 0.05  # and an absolute difference of at least 5 percentage points
Z_95 = 1.959963984540054  # two-sided 95 % normal quantile
REST = "rest"  # the reference of a one-vs-rest comparison
METHODS = ("holm", "bh")


class Value(BaseModel):
    """A result of the bias check: immutable, and stored, served and read back as JSON
    through the same model (pydantic), so every surface reads one typed contract."""

    model_config = ConfigDict(frozen=True)


class GroupStat(Value):
    group: str
    n: int
    mean: float | None = Field(description="None when suppressed (fewer than 5 people).")


class ShareTest(Value):
    """A count measure's rare-pattern test, focal vs reference: the share of drafts with at
    least one hit (Fisher's exact test, risk ratio) and the hits per 100 words (Poisson rate
    model with the words as exposure). Built only when neither side is suppressed."""

    focal_n: int = Field(description="Focal drafts.")
    focal_with: int = Field(description="Focal drafts with at least one hit.")
    reference_n: int
    reference_with: int
    focal_share: float = Field(description="focal_with / focal_n, from 0 to 1.")
    reference_share: float
    difference: float = Field(description="focal_share - reference_share.")
    risk_ratio: float | None = Field(
        description="focal_share / reference_share (0.5 added to every cell when one is "
        "empty); None when no draft on either side has a hit."
    )
    ci_low: float | None = Field(description="95% interval of the risk ratio (Katz, log).")
    ci_high: float | None
    p_value: float = Field(description="Fisher's exact test, two-sided.")
    p_adjusted: float | None = Field(default=None, description="Adjusted with the family.")
    focal_rate: float | None = Field(description="Hits per 100 words, focal drafts.")
    reference_rate: float | None
    rate_ratio: float | None = Field(
        description="focal_rate / reference_rate from the Poisson model with a log-words "
        "offset; None when a side has no hit (the model has no finite estimate)."
    )
    rate_ci_low: float | None = Field(description="95% interval, robust (HC0) errors.")
    rate_ci_high: float | None
    rate_p_value: float | None = Field(description="Wald test of the rate ratio.")
    rate_p_adjusted: float | None = Field(default=None)
    flagged: bool = Field(
        default=False,
        description="Adjusted p below 0.05, risk ratio >= 1.25 or <= 0.8, and at least "
        "5 points apart.",
    )


class Comparison(Value):
    """One group against the rest (or, with two groups, the smaller against the larger)."""

    attribute: str
    measure: str
    scope: str = Field(
        description="A draft kind, its edited texts (kind/edited) or one editor (author:...).",
        examples=["self_reflection", "self_reflection/edited", "author:E012"],
    )
    groups: tuple[GroupStat, ...] = Field(
        description="Every group of the scope, means suppressed under 5 people."
    )
    focal: str
    reference: str = Field(description=f"Another group's name, or {REST!r}.")
    effect_size: float | None = Field(
        description="Cliff's delta, focal vs reference; None when suppressed."
    )
    p_value: float | None = Field(description="Mann-Whitney U, two-sided.")
    p_adjusted: float | None = Field(description="Adjusted over the whole family (Holm).")
    flagged: bool = Field(
        description="Significant after adjustment and a medium effect, or (count measures) "
        "a share of drafts with a hit flagged by `share`."
    )
    suppressed: bool = Field(description="Focal or reference under 5 people: no test was run.")
    share: ShareTest | None = Field(
        default=None,
        description="Count measures only: the share of drafts with a hit and the rate per "
        "100 words; None for other measures, suppressed comparisons and older reports.",
    )


def compare_groups(
    values: Sequence[float],
    groups: Sequence[str | None],
    *,
    attribute: str,
    measure: str,
    scope: str,
    counts: Sequence[int] | None = None,
    words: Sequence[float] | None = None,
) -> list[Comparison]:
    """Compare `values` across the groups of one attribute within one scope.

    `values[i]` is the measure of item i (a draft, a final text) and `groups[i]` the
    group of its subject, or None when unknown. Non-finite values are left out. For a count
    measure, `counts[i]` (hits in item i) and `words[i]` (its length, the exposure) add the
    share test (`ShareTest`) to each comparison. The result is adjusted (Holm) within this
    call only; see `adjust` for a whole report.
    """
    if len(values) != len(groups):
        raise ValueError("values and groups must have the same length")
    if (counts is None) != (words is None):
        raise ValueError("counts and words go together")
    hits = [0] * len(values) if counts is None else list(counts)
    sizes = [0.0] * len(values) if words is None else list(words)
    if len(hits) != len(values) or len(sizes) != len(values):
        raise ValueError("counts and words must have the same length as values")
    by_group: dict[str, list[tuple[float, float, float]]] = {}
    for value, group, hit, size in zip(values, groups, hits, sizes, strict=True):
        if group is not None and isfinite(value):
            by_group.setdefault(group, []).append((float(value), float(hit), float(size)))
    if len(by_group) < 2:
        return []
    arrays = {g: np.asarray(v, dtype=np.float64) for g, v in sorted(by_group.items())}
    summary = tuple(_group_stat(g, a[:, 0]) for g, a in arrays.items())
    comparisons = [
        _compare(attribute, measure, scope, summary, focal, reference, x, y, counts is not None)
        for focal, reference, x, y in _pairs(arrays)
    ]
    return adjust(comparisons)


def adjust(comparisons: list[Comparison], *, method: str = "holm") -> list[Comparison]:
    """Fill `p_adjusted` and `flagged` across the family `comparisons`, in the same order.

    Every p-value a comparison carries counts towards the family: the Mann-Whitney p and,
    for count measures, the share's Fisher p and the rate model's p. Suppressed comparisons
    (no p-value) do not count.
    "holm": Holm (1979) step-down, family-wise error control. "bh": Benjamini-Hochberg
    (1995) step-up, false-discovery-rate control.
    """
    slots: list[tuple[int, str]] = []
    raw: list[float] = []
    for i, c in enumerate(comparisons):
        for slot, p in _p_values(c):
            slots.append((i, slot))
            raw.append(p)
    adjusted: dict[tuple[int, str], float] = dict(
        zip(slots, adjust_p(raw, method=method), strict=True)
    )
    out = list(comparisons)
    for i, c in enumerate(comparisons):
        if c.p_value is None:
            continue
        p_adj = adjusted[(i, "u")]
        share = c.share
        if share is not None:
            share = _adjusted_share(share, adjusted.get((i, "share")), adjusted.get((i, "rate")))
        flagged = is_flagged(p_adj, c.effect_size, MIN_EFFECT) or (
            share is not None and share.flagged
        )
        out[i] = c.model_copy(update={"p_adjusted": p_adj, "flagged": flagged, "share": share})
    return out


def _p_values(c: Comparison) -> list[tuple[str, float]]:
    """The p-values one comparison adds to the family, named by slot."""
    if c.p_value is None:
        return []
    found = [("u", c.p_value)]
    if c.share is not None:
        found.append(("share", c.share.p_value))
        if c.share.rate_p_value is not None:
            found.append(("rate", c.share.rate_p_value))
    return found


def _adjusted_share(share: ShareTest, p_adj: float | None, rate_adj: float | None) -> ShareTest:
    return share.model_copy(
        update={
            "p_adjusted": p_adj,
            "rate_p_adjusted": rate_adj,
            "flagged": share_flagged(p_adj, share.risk_ratio, share.difference),
        }
    )


def share_flagged(p_adjusted: float | None, risk_ratio: float | None, difference: float) -> bool:
    """Significant after correction and large enough to matter in practice: a risk ratio
    of 1.25 or more (or 0.8 or less) and 5 or more percentage points apart (see the module
    docstring for the source of the rule)."""
    if p_adjusted is None or risk_ratio is None:
        return False
    ratio_ok = risk_ratio >= SHARE_MIN_RATIO or risk_ratio <= 1 / SHARE_MIN_RATIO
    return p_adjusted < ALPHA and ratio_ok and abs(difference) >= SHARE_MIN_DIFFERENCE


def adjust_p(p_values: Sequence[float], *, method: str = "holm") -> list[float]:
    """Adjusted p-values, in input order ("holm" or "bh"), each capped at 1."""
    if method not in METHODS:
        raise ValueError(f"unknown adjustment method {method!r}; use one of {METHODS}")
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        # (m - j) * p_(j) for j = 0..m-1, made non-decreasing
        steps = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        # m / (j + 1) * p_(j), made non-increasing from the largest down
        steps = np.minimum.accumulate((m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    result = np.empty(m, dtype=np.float64)
    result[order] = np.minimum(steps, 1.0)
    return [float(x) for x in result]


def is_flagged(p_adjusted: float | None, effect: float | None, threshold: float) -> bool:
    """Both significant after correction and large enough to matter."""
    if p_adjusted is None or effect is None:
        return False
    return p_adjusted < ALPHA and abs(effect) >= threshold


def cliffs_delta(x: Array, y: Array) -> float:
    """P(x > y) - P(x < y) over all pairs (Cliff 1993), by ranks in O(n log n)."""
    ys = np.sort(y)
    below = np.searchsorted(ys, x, side="left")  # y values strictly below each x
    above = ys.size - np.searchsorted(ys, x, side="right")  # y values strictly above
    return float((below.sum() - above.sum()) / (x.size * ys.size))


def _group_stat(group: str, values: Array) -> GroupStat:
    n = int(values.size)
    mean = float(values.mean()) if n >= MIN_GROUP else None
    return GroupStat(group=group, n=n, mean=mean)


def _pairs(arrays: dict[str, Array]) -> list[tuple[str, str, Array, Array]]:
    """(focal, reference, focal rows, reference rows); a row is (value, hits, words)."""
    names = list(arrays)
    if len(names) == 2:
        small, large = sorted(names, key=lambda g: (len(arrays[g]), g))
        return [(small, large, arrays[small], arrays[large])]
    out = []
    for name in names:
        rest = np.concatenate([arrays[g] for g in names if g != name])
        out.append((name, REST, arrays[name], rest))
    return out


def _compare(
    attribute: str,
    measure: str,
    scope: str,
    summary: tuple[GroupStat, ...],
    focal: str,
    reference: str,
    x: Array,
    y: Array,
    counted: bool,
) -> Comparison:
    suppressed = len(x) < MIN_GROUP or len(y) < MIN_GROUP
    effect = p = None
    share = None
    if not suppressed:
        effect = cliffs_delta(x[:, 0], y[:, 0])
        p = mann_whitney_p(x[:, 0], y[:, 0])
        if counted:
            share = share_test(x[:, 1], x[:, 2], y[:, 1], y[:, 2])
    return Comparison(
        attribute=attribute,
        measure=measure,
        scope=scope,
        groups=summary,
        focal=focal,
        reference=reference,
        effect_size=effect,
        p_value=p,
        p_adjusted=None,
        flagged=False,
        suppressed=suppressed,
        share=share,
    )


def mann_whitney_p(x: Array, y: Array) -> float:
    """Two-sided Mann-Whitney U p-value; 1.0 when every value is the same (no evidence)."""
    if np.ptp(np.concatenate([x, y])) == 0:
        return 1.0
    result = stats.mannwhitneyu(x, y, alternative="two-sided", method="auto")
    return float(result.pvalue)


def share_test(
    focal_hits: Array, focal_words: Array, reference_hits: Array, reference_words: Array
) -> ShareTest:
    """The share of drafts with at least one hit and the rate per 100 words, focal vs
    reference, unadjusted (`adjust` fills the adjusted p and the flag)."""
    a, n1 = int(np.count_nonzero(focal_hits > 0)), int(focal_hits.size)
    c, n2 = int(np.count_nonzero(reference_hits > 0)), int(reference_hits.size)
    ratio, low, high = risk_ratio(a, n1, c, n2)
    rate = rate_ratio(focal_hits, focal_words, reference_hits, reference_words)
    return ShareTest(
        focal_n=n1,
        focal_with=a,
        reference_n=n2,
        reference_with=c,
        focal_share=a / n1,
        reference_share=c / n2,
        difference=a / n1 - c / n2,
        risk_ratio=ratio,
        ci_low=low,
        ci_high=high,
        p_value=fisher_p(a, n1, c, n2),
        focal_rate=_per_100(focal_hits, focal_words),
        reference_rate=_per_100(reference_hits, reference_words),
        rate_ratio=rate.ratio,
        rate_ci_low=rate.low,
        rate_ci_high=rate.high,
        rate_p_value=rate.p_value,
    )


def fisher_p(a: int, n1: int, c: int, n2: int) -> float:
    """Two-sided Fisher's exact test of a/n1 against c/n2; 1.0 when nobody has a hit."""
    if a + c == 0 or a + c == n1 + n2:
        return 1.0
    result = stats.fisher_exact([[a, n1 - a], [c, n2 - c]], alternative="two-sided")
    return float(min(1.0, result.pvalue))


def risk_ratio(a: int, n1: int, c: int, n2: int) -> tuple[float | None, float | None, float | None]:
    """(a/n1) / (c/n2) with its 95 % interval by Katz's log method; 0.5 is added to every
    cell when one is empty (Haldane), so a group without a hit still gets a finite ratio.
    None when neither group has a hit (nothing to compare)."""
    if a + c == 0:
        return None, None, None
    b, d = n1 - a, n2 - c
    if 0 in (a, b, c, d):
        a_, b_, c_, d_ = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    else:
        a_, b_, c_, d_ = float(a), float(b), float(c), float(d)
    log_rr = log((a_ / (a_ + b_)) / (c_ / (c_ + d_)))
    se = sqrt(1 / a_ - 1 / (a_ + b_) + 1 / c_ - 1 / (c_ + d_))
    return exp(log_rr), exp(log_rr - Z_95 * se), exp(log_rr + Z_95 * se)


@dataclass(frozen=True)
class RateRatio:
    """The rate model's estimate: ratio, 95 % interval and p, or all None (no estimate)."""

    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None


def rate_ratio(
    focal_hits: Array, focal_words: Array, reference_hits: Array, reference_words: Array
) -> RateRatio:
    """Poisson GLM `hits ~ focal` with offset log(words) and robust (HC0) errors, in closed
    form: with one binary covariate the fit is each group's pooled rate, and the sandwich
    variance of log(rate) is sum((y - rate * w)^2) / (sum y)^2 per group (checked against
    statsmodels' GLM in tests/test_bias_stats.py; the closed form takes microseconds where
    the iterative fit takes milliseconds, and a report runs hundreds). Drafts with no words
    are left out (no exposure)."""
    parts = []
    for hits, words in ((focal_hits, focal_words), (reference_hits, reference_words)):
        keep = words > 0
        y, w = hits[keep], words[keep]
        total = float(y.sum())
        if total <= 0:
            return RateRatio()
        rate = total / float(w.sum())
        parts.append((log(rate), float(((y - rate * w) ** 2).sum()) / total**2))
    (log_focal, var_focal), (log_reference, var_reference) = parts
    estimate, se = log_focal - log_reference, sqrt(var_focal + var_reference)
    if se == 0:
        return RateRatio(ratio=exp(estimate))
    p = float(2 * stats.norm.sf(abs(estimate) / se))
    return RateRatio(exp(estimate), exp(estimate - Z_95 * se), exp(estimate + Z_95 * se), p)


def _per_100(hits: Array, words: Array) -> float | None:
    total = float(words.sum())
    return 100.0 * float(hits.sum()) / total if total > 0 else None
