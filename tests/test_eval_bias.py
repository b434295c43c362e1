"""The bias eval's core on small orgs: well-formed scores and figures, the planted biased
feedback found, and nothing planted in the clean control org.

No database: the eval reads the generated files directly.
"""

import json
from pathlib import Path

import pytest

from evals.eval_bias import (
    ANY_FLAG_ROW,
    PATTERNS,
    OrgFiles,
    SeedScore,
    main,
    read_org,
    score_feedback,
    score_seed,
    summarise,
)
from evals.synthetic_org import generate_org

PEOPLE = 60


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[SeedScore]:
    folder = tmp_path_factory.mktemp("eval-bias")
    return [score_seed(seed, PEOPLE, folder) for seed in (1, 2)]


def test_every_pattern_is_scored_in_both_orgs(seeds: list[SeedScore]) -> None:
    for seed in seeds:
        for org in (seed.planted, seed.clean):
            assert set(org.patterns) == {*PATTERNS, ANY_FLAG_ROW}
            for score in org.patterns.values():
                assert 0 <= score.found <= score.planted and score.false_flags >= 0
            assert org.feedback.ordinary > 0 and 0 <= org.r_squared <= 1


def test_the_planted_org_plants_every_pattern_and_the_clean_one_none(
    seeds: list[SeedScore],
) -> None:
    for seed in seeds:
        assert all(seed.planted.patterns[p].planted > 0 for p in PATTERNS)
        assert all(seed.clean.patterns[p].planted == 0 for p in PATTERNS)
        assert not seed.clean.missed


def test_the_planted_biased_feedback_is_found(seeds: list[SeedScore]) -> None:
    """Every planted record carries some bias-risk flag, and nearly all one of the pattern's
    own kinds (one wording is caught only as a doubt raiser: see the eval's docstring)."""
    for seed in seeds:
        pattern = seed.planted.patterns["biased_feedback"]
        assert pattern.found >= 0.8 * pattern.planted
        assert seed.planted.patterns[ANY_FLAG_ROW].found == pattern.planted
        assert set(seed.planted.feedback.by_style) <= {"gender_coded", "personality"}


def test_matched_controls_are_not_flagged(tmp_path: Path) -> None:
    generate_org(tmp_path, people=PEOPLE, seed=3)
    org = read_org(tmp_path)
    controls = {e["control"]["external_id"] for e in org.labels["biased_feedback"]}
    only_controls = [r for r in org.records if r["external_id"] in controls]
    assert len(only_controls) == len(controls) > 0
    score = score_feedback(OrgFiles(org.people, only_controls, org.ratings, org.labels))
    assert score.pattern.false_flags == 0 and score.any_flag.false_flags == 0


def test_figures_are_flat_numbers_for_one_json_line(seeds: list[SeedScore]) -> None:
    figures = summarise(seeds)
    json.dumps(figures)
    assert figures["seeds"] == 2
    for pattern in PATTERNS:
        assert 0 <= int(figures[f"{pattern}.seeds_found"]) <= 2
        assert 0.0 <= float(figures[f"{pattern}.instance_recall"]) <= 1.0
        assert 0 <= int(figures[f"{pattern}.clean_seeds_flagged"]) <= 2
    assert float(figures["biased_feedback.instance_recall"]) >= 0.8


def test_command_line_prints_a_table_and_ends_with_one_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--seeds", "1", "--people", "40"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["seeds"] == 1 and figures["evidence"] == "cycle"
    assert any("harsh_manager" in line for line in lines[:-1])
