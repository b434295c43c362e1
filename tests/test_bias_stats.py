"""Group comparisons: a clear gap is flagged, noise is not, small groups are suppressed,
and the multiple-comparison adjustments match hand-checked values."""

from collections.abc import Sequence

import numpy as np
import pytest

from service.bias.stats import (
    MIN_EFFECT,
    MIN_GROUP,
    REST,
    Comparison,
    adjust,
    adjust_p,
    cliffs_delta,
    compare_groups,
    fisher_p,
    rate_ratio,
    risk_ratio,
)


def _compare(values: Sequence[float], groups: Sequence[str | None]) -> list[Comparison]:
    return compare_groups(values, groups, attribute="gender", measure="m", scope="all")


def test_clear_gap_is_flagged() -> None:
    rng = np.random.default_rng(0)
    values = list(rng.normal(0, 1, 30)) + list(rng.normal(2, 1, 30))
    groups = ["a"] * 30 + ["b"] * 30
    [comparison] = _compare(values, groups)
    assert (comparison.focal, comparison.reference) == ("a", "b")  # two groups: one test
    assert comparison.flagged
    assert comparison.effect_size is not None and comparison.effect_size < -MIN_EFFECT
    assert comparison.p_value is not None and comparison.p_value < 1e-6
    assert [g.n for g in comparison.groups] == [30, 30]


def test_null_rarely_flags_over_many_seeds() -> None:
    flagged_seeds = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        values = list(rng.normal(0, 1, 60))
        groups = [str(g) for g in rng.choice(["a", "b", "c", "d"], 60)]
        family = _compare(values, groups)
        assert len(family) == 4  # each group vs the rest
        assert all(c.reference == REST for c in family)
        flagged_seeds += any(c.flagged for c in family)
    assert flagged_seeds <= 3  # Holm bounds it at 5% of seeds; expect ~0-2


def test_small_group_is_suppressed() -> None:
    values = [1.0, 2.0, 3.0, 4.0] + [5.0] * 10 + [0.0] * 10
    groups = ["tiny"] * 4 + ["b"] * 10 + ["c"] * 10
    family = _compare(values, groups)
    tiny = next(c for c in family if c.focal == "tiny")
    assert tiny.suppressed and not tiny.flagged
    assert tiny.effect_size is None and tiny.p_value is None and tiny.p_adjusted is None
    stats = {g.group: g for g in tiny.groups}
    assert stats["tiny"].n == 4 and stats["tiny"].mean is None
    assert stats["b"].mean == 5.0
    assert all(not c.suppressed for c in family if c.focal != "tiny")


def test_unknown_groups_and_non_finite_values_are_left_out() -> None:
    values = [1.0] * MIN_GROUP + [2.0] * MIN_GROUP + [100.0, float("nan")]
    groups: list[str | None] = [*(["a"] * MIN_GROUP), *(["b"] * MIN_GROUP), None, "a"]
    [comparison] = _compare(values, groups)
    assert {g.group: g.n for g in comparison.groups} == {"a": MIN_GROUP, "b": MIN_GROUP}


def test_identical_values_are_not_a_difference() -> None:
    [comparison] = _compare([3.0] * 12, ["a"] * 6 + ["b"] * 6)
    assert comparison.p_value == 1.0 and comparison.effect_size == 0.0
    assert not comparison.flagged


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="same length"):
        _compare([1.0], ["a", "b"])


def test_cliffs_delta_by_hand() -> None:
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0])
    # pairs x>y: (3,2); x<y: (1,2),(1,4),(2,4),(3,4); ties: (2,2) -> (1 - 4) / 6
    assert cliffs_delta(x, y) == pytest.approx(-0.5)


def test_holm_by_hand() -> None:
    # sorted p: .01,.02,.03,.04 with m=4 -> .04,.06,.06 (max with .06),.06 (max with .04)
    assert adjust_p([0.04, 0.01, 0.03, 0.02], method="holm") == pytest.approx(
        [0.06, 0.04, 0.06, 0.06]
    )
    assert adjust_p([0.5, 0.6], method="holm") == pytest.approx([1.0, 1.0])


def test_benjamini_hochberg_by_hand() -> None:
    # m=4: .01*4=.04, .02*2=.04, .03*4/3=.04, .04*1=.04
    assert adjust_p([0.04, 0.01, 0.03, 0.02], method="bh") == pytest.approx([0.04] * 4)
    assert adjust_p([0.01, 0.2], method="bh") == pytest.approx([0.02, 0.2])


def test_adjust_p_keeps_input_order_with_ties_and_takes_an_empty_family() -> None:
    assert adjust_p([]) == []
    assert adjust_p([0.02, 0.01, 0.02], method="holm") == pytest.approx([0.04, 0.03, 0.04])
    assert adjust_p([0.02, 0.01, 0.02], method="bh") == pytest.approx([0.02] * 3)
    assert adjust_p([0.9, 0.8], method="holm") == pytest.approx([1.0, 1.0])


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown adjustment"):
        adjust_p([0.1], method="bonferroni-ish")


def _comparison(
    *, focal: str, effect_size: float | None, p_value: float | None, suppressed: bool
) -> Comparison:
    return Comparison(
        attribute="age",
        measure="m",
        scope="all",
        groups=(),
        focal=focal,
        reference=REST,
        effect_size=effect_size,
        p_value=p_value,
        p_adjusted=None,
        flagged=False,
        suppressed=suppressed,
    )


def test_adjust_over_a_wider_family_can_unflag() -> None:
    rng = np.random.default_rng(3)
    values = list(rng.normal(0, 1, 12)) + list(rng.normal(1.6, 1, 12))
    [single] = _compare(values, ["a"] * 12 + ["b"] * 12)
    assert single.p_value is not None and 0.0005 < single.p_value < 0.05
    assert single.flagged
    null = _comparison(focal="x", effect_size=0.0, p_value=0.9, suppressed=False)
    suppressed = _comparison(focal="y", effect_size=None, p_value=None, suppressed=True)
    nulls = [null] * 200
    family = adjust([single, *nulls, suppressed])
    assert not family[0].flagged
    assert family[0].p_adjusted == pytest.approx(min(1.0, 201 * single.p_value))
    assert family[-1].p_adjusted is None  # suppressed ones are not in the family


def test_small_effect_is_not_flagged_even_when_significant() -> None:
    rng = np.random.default_rng(5)
    values = list(rng.normal(0, 1, 4000)) + list(rng.normal(0.2, 1, 4000))
    [comparison] = _compare(values, ["a"] * 4000 + ["b"] * 4000)
    assert comparison.p_adjusted is not None and comparison.p_adjusted < 0.05
    assert comparison.effect_size is not None and abs(comparison.effect_size) < MIN_EFFECT
    assert not comparison.flagged


# ---------------------------------------------------------------- rare patterns (issue 14)


def _rare(share_a: float, share_b: float, n: int, seed: int = 0) -> Comparison:
    """A count measure with a hit in `share_a` of group a's drafts and `share_b` of b's."""
    rng = np.random.default_rng(seed)
    hits = [int(rng.random() < share_a) for _ in range(n)] + [
        int(rng.random() < share_b) for _ in range(n)
    ]
    words = [200.0] * (2 * n)
    values = [100.0 * h / w for h, w in zip(hits, words, strict=True)]
    [comparison] = compare_groups(
        values,
        ["a"] * n + ["b"] * n,
        attribute="gender",
        measure="personality_criticism_rate",
        scope="all",
        counts=hits,
        words=words,
    )
    return comparison


def test_a_pattern_in_a_fifth_of_one_groups_drafts_is_flagged_by_its_share() -> None:
    """Before issue 14 only Cliff's delta could flag: ~0.2 here, under MIN_EFFECT."""
    c = _rare(0.2, 0.01, 200)

    assert c.share is not None and c.share.flagged and c.flagged
    assert c.effect_size is not None and abs(c.effect_size) < MIN_EFFECT  # delta alone: no
    assert c.share.focal_share > 0.15 and c.share.reference_share < 0.05
    assert c.share.risk_ratio is not None and c.share.risk_ratio > 4
    assert c.share.p_adjusted is not None and c.share.p_adjusted < 1e-6


def test_a_significant_share_difference_too_small_to_matter_is_not_flagged() -> None:
    """3% vs 1% over 20,000 drafts: p far below 0.05, ratio 3, but 2 points apart."""
    c = _rare(0.03, 0.01, 20_000)

    assert c.share is not None and c.share.p_adjusted is not None and c.share.p_adjusted < 1e-6
    assert not c.share.flagged and not c.flagged


def test_share_tests_on_noise_rarely_flag_over_many_seeds() -> None:
    flagged = sum(_rare(0.1, 0.1, 200, seed).flagged for seed in range(50))
    assert flagged <= 3


def test_a_small_group_gets_no_share_test() -> None:
    [c] = compare_groups(
        [0.5] * 4 + [0.0] * 30,
        ["a"] * 4 + ["b"] * 30,
        attribute="gender",
        measure="m",
        scope="all",
        counts=[1] * 4 + [0] * 30,
        words=[200.0] * 34,
    )
    assert c.suppressed and c.share is None and not c.flagged


def test_share_p_values_join_the_family_the_report_adjusts() -> None:
    """One comparison with a share test adds three p-values: U, Fisher and the rate."""
    c = _rare(0.2, 0.01, 200)
    assert c.share is not None and c.share.rate_p_value is not None
    raw = [c.p_value, c.share.p_value, c.share.rate_p_value]
    [alone] = adjust([c.model_copy(update={"share": None})])
    expected = adjust_p([p for p in raw if p is not None])

    assert alone.p_adjusted == pytest.approx(c.p_value)  # a family of one
    assert [c.p_adjusted, c.share.p_adjusted, c.share.rate_p_adjusted] == pytest.approx(expected)


def test_risk_ratio_and_its_interval_by_hand() -> None:
    """40/200 vs 10/200: RR 4, Katz SE sqrt(1/40 - 1/200 + 1/10 - 1/200) = 0.339116."""
    ratio, low, high = risk_ratio(40, 200, 10, 200)
    assert ratio == pytest.approx(4.0)
    assert low == pytest.approx(4.0 * np.exp(-1.959964 * 0.339116), rel=1e-5)
    assert high == pytest.approx(4.0 * np.exp(1.959964 * 0.339116), rel=1e-5)
    assert risk_ratio(0, 200, 0, 200) == (None, None, None)
    empty, _, _ = risk_ratio(20, 200, 0, 200)  # Haldane: 20.5/200.5 over 0.5/200.5
    assert empty == pytest.approx(41.0)


def test_fisher_p_matches_scipy() -> None:
    from scipy import stats  # type: ignore[import-untyped]

    expected = stats.fisher_exact([[40, 160], [10, 190]]).pvalue
    assert fisher_p(40, 200, 10, 200) == pytest.approx(expected)
    assert fisher_p(0, 200, 0, 200) == 1.0


def test_the_closed_form_rate_model_is_statsmodels_poisson_glm_with_offset_and_hc0() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    words = rng.integers(80, 400, 120).astype(np.float64)
    group = np.repeat([1.0, 0.0], 60)
    mean = words / 100 * np.where(group == 1, 0.6, 0.3) * rng.gamma(2, 0.5, 120)
    hits = rng.poisson(mean).astype(np.float64)
    fit = sm.GLM(
        hits,
        sm.add_constant(group),
        family=sm.families.Poisson(),
        offset=np.log(words),
    ).fit(cov_type="HC0")

    ours = rate_ratio(hits[:60], words[:60], hits[60:], words[60:])

    assert ours.ratio == pytest.approx(np.exp(fit.params[1]), rel=1e-6)
    low, high = np.exp(fit.conf_int()[1])
    assert ours.low == pytest.approx(low, rel=1e-4)
    assert ours.high == pytest.approx(high, rel=1e-4)
    assert ours.p_value == pytest.approx(fit.pvalues[1], rel=1e-4)
    assert rate_ratio(np.zeros(5), words[:5], hits[:5], words[:5]).ratio is None
