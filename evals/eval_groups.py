"""Group eval (issue 14): is a rare pattern in one group's drafts flagged, and does nothing
get flagged when nothing is planted?

    python -m evals.eval_groups --seeds 10 --per-group 200

For each seed it generates the clean synthetic org (`generate_org(plant=False)`, 120
people: ordinary records, nothing planted) and cuts its feedback, recognition and work
records into sentences: the pool of ordinary review sentences. Each condition then writes
`--per-group` drafts for each of two groups ("woman", "man"), every draft `DRAFT_SENTENCES`
sentences drawn from the same pool, so the groups differ only in what is planted: one
personality-criticism sentence (from `evals/data/personality_plants.txt`, written
variations) at a random place in 0 %, 10 %, 20 % and 30 % of the women's drafts
(`--background` also plants it in a share of every other draft of both groups, a base rate
the issue's condition does not have: the clean org's sentences carry no such phrase). The drafts
are profiled as the report profiles them (`profile_draft`, people's names known) and
compared as the report compares them (`service.bias.report.compare_language` over one
scope and one attribute: every measure, Holm over the whole family; `language_findings`
for the findings and their phrases). No database.

A planted condition is detected in a seed when the personality-criticism measure is
flagged by its share of drafts with a hit (`ShareTest.flagged`). With nothing planted, a
seed raises a false flag when any language comparison at all is flagged. "Before" is the
same comparisons flagged as the code before issue 14 flagged them: Cliff's delta only,
Holm over the Mann-Whitney tests alone.

Prints a table and ends with one JSON line of the figures.
"""

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from rich.console import Console
from rich.table import Table

from evals.eval_bias import read_org
from evals.synthetic_org import generate_org
from service.bias.language import name_words, profile_draft, split_sentences
from service.bias.report import Profiled, compare_language, language_findings
from service.bias.report_model import LanguageFinding, share_sentence
from service.bias.stats import Comparison, adjust
from service.drafting.structure import DraftBody, DraftSection, DraftSentence

PLANTS_PATH = Path(__file__).parent / "data" / "personality_plants.txt"
MEASURE = "personality_criticism_rate"
SHARES = (0.0, 0.1, 0.2, 0.3)
FOCAL, OTHER = "woman", "man"
ATTRIBUTE, SCOPE = "gender", "manager_feedback"
DRAFT_SENTENCES = 6
POOL_KINDS = frozenset({"feedback", "recognition", "work_record"})
MIN_WORDS = 5  # a pool sentence of fewer words is a fragment (a heading, "Thanks!")
ORG_PEOPLE = 120
TARGET_SEEDS = 10  # issue 14: flagged at 20 % and 30 % in 10 of 10 seeds, 0 of 10 unplanted


@dataclass(frozen=True)
class Outcome:
    """One condition (seed, planted share) of the eval."""

    seed: int
    share: float
    detected: bool  # the measure flagged by its share test
    detected_before: bool  # the measure flagged by Cliff's delta with the old family
    any_flag: bool  # any comparison flagged (the false-flag count when nothing is planted)
    any_flag_before: bool
    flagged_measures: tuple[str, ...]
    woman_share: float  # share of the women's drafts with a personality-criticism hit
    man_share: float
    p_adjusted: float | None  # the share test's
    sentence: str | None  # the finding as the report words it
    phrases: tuple[str, ...]


def load_plants(path: Path = PLANTS_PATH) -> list[str]:
    """The planted sentences: the file's lines, less comments and blanks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    plants = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if not plants:
        raise ValueError(f"{path} holds no sentence")
    return plants


def sentence_pool(folder: Path, seed: int) -> tuple[list[str], frozenset[str]]:
    """Ordinary sentences of the clean org of `seed`, and its people's name words."""
    generate_org(folder, people=ORG_PEOPLE, seed=seed, plant=False)
    org = read_org(folder)
    pool = [
        sentence
        for record in org.records
        if record.get("kind") in POOL_KINDS
        for sentence in split_sentences(str(record.get("body") or ""))
        if len(sentence.split()) >= MIN_WORDS
    ]
    return pool, name_words(row["name"] for row in org.people)


def write_drafts(
    rng: random.Random,
    pool: Sequence[str],
    plants: Sequence[str],
    per_group: int,
    share: float,
    background: float = 0.0,
) -> list[tuple[str, list[str]]]:
    """(group, sentences) for `per_group` drafts of each group; `share` of the women's
    drafts get one planted sentence at a random place, and `background` of every draft not
    planted (both groups) too: a base rate that makes the groups' difference smaller."""
    drafts = [
        (g, rng.sample(pool, DRAFT_SENTENCES)) for g in (FOCAL, OTHER) for _ in range(per_group)
    ]
    planted = rng.sample(range(per_group), round(share * per_group))  # women come first
    for i in planted:
        sentences = drafts[i][1]
        sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(plants))
    chosen = set(planted)
    for i, (_, sentences) in enumerate(drafts):
        if i not in chosen and rng.random() < background:
            sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(plants))
    return drafts


def _body(sentences: Sequence[str]) -> DraftBody:
    return DraftBody(
        sections=[
            DraftSection(
                heading="Feedback",
                sentences=[DraftSentence(text=s, evidence=[]) for s in sentences],
            )
        ]
    )


def run_condition(
    seed: int,
    share: float,
    pool: Sequence[str],
    names: frozenset[str],
    plants: Sequence[str],
    per_group: int,
    background: float = 0.0,
) -> Outcome:
    rng = random.Random(seed * 1000 + round(share * 100))
    drafts = write_drafts(rng, pool, plants, per_group, share, background)
    scoped: list[Profiled] = [
        (i, profile_draft(_body(sentences), names)) for i, (_, sentences) in enumerate(drafts)
    ]
    groups = {ATTRIBUTE: {i: group for i, (group, _) in enumerate(drafts)}}
    scopes = {SCOPE: scoped}
    language = compare_language(scopes, groups)
    findings = language_findings(language, scopes, groups)
    before = _flagged_before(language)
    target = next((f for f in findings if f.measure == MEASURE), None)
    comparison = next(c for c in language if c.measure == MEASURE)
    shares = _shares(comparison)
    return Outcome(
        seed=seed,
        share=share,
        detected=_share_flagged(target),
        detected_before=MEASURE in before,
        any_flag=bool(findings),
        any_flag_before=bool(before),
        flagged_measures=tuple(sorted({f.measure for f in findings})),
        woman_share=shares[FOCAL],
        man_share=shares[OTHER],
        p_adjusted=None if comparison.share is None else comparison.share.p_adjusted,
        sentence=None if target is None else share_sentence(target),
        phrases=() if target is None else target.phrases,
    )


def _share_flagged(finding: LanguageFinding | None) -> bool:
    return finding is not None and finding.share is not None and finding.share.flagged


def _shares(c: Comparison) -> dict[str, float]:
    """Each group's share of drafts with a hit, from the comparison's share test."""
    if c.share is None:
        return {FOCAL: 0.0, OTHER: 0.0}
    other = OTHER if c.focal == FOCAL else FOCAL
    return {c.focal: c.share.focal_share, other: c.share.reference_share}


def _flagged_before(language: Sequence[Comparison]) -> set[str]:
    """Measures flagged as before issue 14: Cliff's delta, Holm over Mann-Whitney alone."""
    old = adjust([c.model_copy(update={"share": None}) for c in language])
    return {c.measure for c in old if c.flagged}


def run(seeds: Sequence[int], per_group: int, background: float = 0.0) -> list[Outcome]:
    plants = load_plants()
    folder = Path(tempfile.mkdtemp(prefix="fairdraft-eval-groups-"))
    outcomes = []
    try:
        for seed in seeds:
            pool, names = sentence_pool(folder / f"seed-{seed}", seed)
            outcomes += [
                run_condition(seed, share, pool, names, plants, per_group, background)
                for share in SHARES
            ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return outcomes


def summarise(outcomes: Sequence[Outcome]) -> dict[str, float | int | str]:
    """Per planted share: seeds detected (now and before), mean shares, median adjusted p;
    unplanted: seeds with any flag."""
    figures: dict[str, float | int | str] = {}
    for share in SHARES:
        rows = [o for o in outcomes if o.share == share]
        key = f"share_{round(share * 100)}"
        figures[f"{key}.seeds"] = len(rows)
        figures[f"{key}.detected"] = sum(o.detected for o in rows)
        figures[f"{key}.detected_before"] = sum(o.detected_before for o in rows)
        figures[f"{key}.any_flag"] = sum(o.any_flag for o in rows)
        figures[f"{key}.any_flag_before"] = sum(o.any_flag_before for o in rows)
        figures[f"{key}.woman_share_mean"] = round(sum(o.woman_share for o in rows) / len(rows), 3)
        figures[f"{key}.man_share_mean"] = round(sum(o.man_share for o in rows) / len(rows), 3)
        ps = [o.p_adjusted for o in rows if o.p_adjusted is not None]
        figures[f"{key}.p_adjusted_median"] = float(f"{median(ps):.3g}") if ps else 1.0
    null = [o for o in outcomes if o.share == 0.0]
    figures["null.flagged_measures"] = ",".join(
        f"{m}:{n}" for m, n in sorted(Counter(m for o in null for m in o.flagged_measures).items())
    )
    return figures


def print_table(console: Console, figures: dict[str, float | int | str], per_group: int) -> None:
    n = figures["share_0.seeds"]
    table = Table(
        title=f"personality criticism planted in a share of {per_group} women's drafts "
        f"(vs {per_group} men's), {n} seeds"
    )
    for column in (
        "planted",
        "women with a hit",
        "men with a hit",
        "median adjusted p",
        f"seeds flagged (of {n})",
        "before (Cliff's delta)",
        "any language flag",
    ):
        table.add_column(column, justify="left" if column == "planted" else "right")
    for share in SHARES:
        key = f"share_{round(share * 100)}"
        table.add_row(
            f"{share:.0%}",
            f"{figures[f'{key}.woman_share_mean']:.1%}",
            f"{figures[f'{key}.man_share_mean']:.1%}",
            f"{figures[f'{key}.p_adjusted_median']:.2g}",
            str(figures[f"{key}.detected"]),
            str(figures[f"{key}.detected_before"]),
            f"{figures[f'{key}.any_flag']} (before {figures[f'{key}.any_flag_before']})",
        )
    console.print(table)


def print_examples(console: Console, outcomes: Sequence[Outcome]) -> None:
    """The report's sentence for the first flagged seed of each planted share."""
    for share in SHARES[1:]:
        example = next((o for o in outcomes if o.share == share and o.sentence), None)
        if example is not None:
            console.print(f"{share:.0%}, seed {example.seed}: {example.sentence}", markup=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N (default 10)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--per-group", type=int, default=200, help="drafts per group")
    parser.add_argument(
        "--background",
        type=float,
        default=0.0,
        help="share of every other draft (both groups) that also gets a planted sentence: "
        "a base rate (default 0, the issue's condition)",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.per_group < 10:
        parser.error("--per-group must be at least 10")
    if not 0.0 <= args.background < 1.0:
        parser.error("--background must be at least 0 and below 1")
    console = Console(width=None if sys.stdout.isatty() else 160)
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    outcomes = run(seeds, args.per_group, args.background)
    figures: dict[str, float | int | str] = {
        "per_group": args.per_group,
        "background": args.background,
        "first_seed": args.first_seed,
        "measure": MEASURE,
        **summarise(outcomes),
    }
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print_table(console, figures, args.per_group)
    print_examples(console, outcomes)
    console.print(json.dumps(figures), soft_wrap=True, markup=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
