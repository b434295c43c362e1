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
"""

from collections.abc import Sequence
from math import isfinite

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats  # type: ignore[import-untyped]

Array = npt.NDArray[np.float64]

MIN_GROUP = 5  # design rule: no statistic over fewer than 5 people
ALPHA = 0.05  # family-wise (Holm) or false-discovery (BH) level of a flag
MIN_EFFECT = 0.33  # |Cliff's delta| needed to flag: "medium" in Romano et al. (2006)
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
    flagged: bool = Field(description="Significant after adjustment and a medium effect.")
    suppressed: bool = Field(description="Focal or reference under 5 people: no test was run.")


def compare_groups(
    values: Sequence[float],
    groups: Sequence[str | None],
    *,
    attribute: str,
    measure: str,
    scope: str,
) -> list[Comparison]:
    """Compare `values` across the groups of one attribute within one scope.

    `values[i]` is the measure of item i (a draft, a final text) and `groups[i]` the
    group of its subject, or None when unknown. Non-finite values are left out. The
    result is adjusted (Holm) within this call only; see `adjust` for a whole report.
    """
    if len(values) != len(groups):
        raise ValueError("values and groups must have the same length")
    by_group: dict[str, list[float]] = {}
    for value, group in zip(values, groups, strict=True):
        if group is not None and isfinite(value):
            by_group.setdefault(group, []).append(float(value))
    if len(by_group) < 2:
        return []
    arrays = {g: np.asarray(v, dtype=np.float64) for g, v in sorted(by_group.items())}
    summary = tuple(_group_stat(g, a) for g, a in arrays.items())
    pairs = _pairs(arrays)
    comparisons = [
        _compare(attribute, measure, scope, summary, focal, reference, x, y)
        for focal, reference, x, y in pairs
    ]
    return adjust(comparisons)


def adjust(comparisons: list[Comparison], *, method: str = "holm") -> list[Comparison]:
    """Fill `p_adjusted` and `flagged` across the family `comparisons`, in the same order.

    Suppressed comparisons (no p-value) do not count towards the family size.
    "holm": Holm (1979) step-down, family-wise error control. "bh": Benjamini-Hochberg
    (1995) step-up, false-discovery-rate control.
    """
    tested = [i for i, c in enumerate(comparisons) if c.p_value is not None]
    raw = [comparisons[i].p_value for i in tested]
    adjusted = adjust_p([p for p in raw if p is not None], method=method)
    out = list(comparisons)
    for i, p_adj in zip(tested, adjusted, strict=True):
        c = comparisons[i]
        flagged = is_flagged(p_adj, c.effect_size, MIN_EFFECT)
        out[i] = c.model_copy(update={"p_adjusted": p_adj, "flagged": flagged})
    return out


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
    names = list(arrays)
    if len(names) == 2:
        small, large = sorted(names, key=lambda g: (arrays[g].size, g))
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
) -> Comparison:
    suppressed = x.size < MIN_GROUP or y.size < MIN_GROUP
    effect = p = None
    if not suppressed:
        effect = cliffs_delta(x, y)
        p = mann_whitney_p(x, y)
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
    )


def mann_whitney_p(x: Array, y: Array) -> float:
    """Two-sided Mann-Whitney U p-value; 1.0 when every value is the same (no evidence)."""
    if np.ptp(np.concatenate([x, y])) == 0:
        return 1.0
    result = stats.mannwhitneyu(x, y, alternative="two-sided", method="auto")
    return float(result.pvalue)
