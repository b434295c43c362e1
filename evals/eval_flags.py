"""Flag eval: are the per-draft flags right when read in context, and how many ordinary,
unbiased drafts get one?

    python -m evals.eval_flags --people 120            # dev and held-out sets
    python -m evals.eval_flags --set holdout --people 0

Figures (issue 14, "Flag precision"):

- Precision and recall per category on the labelled flag cases: the dev set
  `evals/data/flag_cases.jsonl` (362 hand-labelled phrases in context, true uses and
  look-alikes; the sense rules were tuned on it) and the held-out set
  `evals/data/flag_cases_holdout.jsonl` (written later, by a writer who had not seen the
  rules; reported, never tuned on; its figures carry the prefix `holdout.`). A case counts
  as flagged when the flags `profile_text` puts on its text include a flag of the case's
  category whose span overlaps the labelled phrase; no names are passed, so the parse must
  find unseen names itself. Precision: flagged true uses / all flagged cases; recall:
  flagged true uses / all true uses. Flags anywhere else in a case's text are counted as
  `stray` (the sets hold no other flag-raising term, so every stray flag is a false flag).
- The share of ordinary, unbiased drafts with any flag (target: under 15 %), twice:
  - `ordinary_set_*`: the hand-written drafts of `evals/data/ordinary_drafts.jsonl` (held
    out like the held-out cases), each profiled with its subject and the other people it
    names, before (`_words_only`: the word lists alone) and after (with the parser);
  - `ordinary_*`: the synthetic org with nothing planted (`generate_org(plant=False)`),
    ingested with the hashing embedder as the benchmarks do, and three kinds drafted for
    everyone in 2026-H1 by the offline drafter; each draft profiled as the check profiles
    it (everyone's names passed, the draft's subject named). `--people 0` skips it.

Prints tables and ends with one JSON line of the figures.
"""

import argparse
import asyncio
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select

from domain.kinds import REVIEW_KINDS
from domain.periods import parse_period
from evals.labelled import (
    FLAG_CASES_PATH,
    FLAG_CATEGORIES,
    FLAG_HOLDOUT_PATH,
    FlagCase,
    OrdinaryDraft,
    load_flag_cases,
    load_ordinary_drafts,
)
from evals.report import print_figures
from evals.synthetic_org import generate_org
from retrieval.embedding import HashingEmbedder
from service.bias.language import (
    LanguageFlag,
    name_words,
    profile_draft,
    profile_text,
    text_to_body,
)
from service.bias.nlp import SenseParser, load_sense_parser
from service.db.models import Draft, DraftVersion, Person
from service.drafting.run import Drafting, draft_cycle, offline_drafter
from service.drafting.structure import DraftBody
from service.ingest.progress import NoProgress
from service.ingest.run import Ingestor, ingest_path
from service.settings import Settings
from service.store import open_store

PERIOD = "2026-H1"
TARGET_PRECISION = 0.9
TARGET_RECALL = 0.9
TARGET_ORDINARY_SHARE = 0.15
# the labelled sets: name -> (file, prefix of its figures)
CASE_SETS = {"dev": (FLAG_CASES_PATH, ""), "holdout": (FLAG_HOLDOUT_PATH, "holdout.")}


@dataclass(frozen=True)
class CaseResult:
    case: FlagCase
    flagged: bool  # a flag of the case's category overlaps its phrase
    stray: int  # flags elsewhere in the text, or of another category


def _offsets(text: str, sentences: Sequence[str]) -> list[int]:
    """Where each sentence of `text_to_body(text)` starts in the text."""
    offsets, position = [], 0
    for sentence in sentences:
        found = text.find(sentence, position)
        offsets.append(max(found, 0))
        position = max(found, 0) + len(sentence)
    return offsets


def score_case(case: FlagCase, parser: SenseParser | None) -> CaseResult:
    body = text_to_body(case.text)
    sentences = [s.text for s in body.sections[0].sentences] if body.sections else []
    offsets = _offsets(case.text, sentences)
    start, end = case.span
    flags = profile_draft(body, frozenset(), parser=parser).flags
    hits = [f for f in flags if _at(f, offsets, start, end) and f.measure == case.category]
    return CaseResult(case, bool(hits), len(flags) - len(hits))


def _at(flag: LanguageFlag, offsets: Sequence[int], start: int, end: int) -> bool:
    flag_start = offsets[flag.sentence] + flag.start
    flag_end = offsets[flag.sentence] + flag.end
    return flag_start < end and start < flag_end


def case_figures(results: Sequence[CaseResult]) -> dict[str, float | int | str]:
    """Precision, recall and stray flags per category, and the worst of each."""
    figures: dict[str, float | int | str] = {}
    for category in FLAG_CATEGORIES:
        mine = [r for r in results if r.case.category == category]
        true_hits = sum(r.flagged and r.case.biased_use for r in mine)
        false_hits = sum(r.flagged and not r.case.biased_use for r in mine)
        true_uses = sum(r.case.biased_use for r in mine)
        flagged = true_hits + false_hits
        figures[f"{category}.precision"] = round(true_hits / flagged, 3) if flagged else 0.0
        figures[f"{category}.recall"] = round(true_hits / true_uses, 3) if true_uses else 0.0
        figures[f"{category}.stray_flags"] = sum(r.stray for r in mine)
    figures["min_precision"] = min(float(figures[f"{c}.precision"]) for c in FLAG_CATEGORIES)
    figures["min_recall"] = min(float(figures[f"{c}.recall"]) for c in FLAG_CATEGORIES)
    return figures


@contextmanager
def clean_org_store(home: Path, *, people: int, seed: int) -> Iterator[tuple[Engine, Settings]]:
    """The clean control org (nothing planted), generated and ingested into a store in
    `home` with the hashing embedder, as `evals.org_store` does for the planted one."""
    generate_org(home / "org", people=people, seed=seed, plant=False)
    settings = Settings(_env_file=None, home=home, embedding_model="hashing-384", progress=False)
    embedder = HashingEmbedder(384)
    with open_store(settings) as engine:
        ingestor = Ingestor(
            engine, settings, actor="eval", progress=NoProgress(), embedder_factory=lambda: embedder
        )
        ingest_path(ingestor, home / "org")
        run = Drafting(engine, settings, embedder, offline_drafter(), "eval")
        asyncio.run(draft_cycle(run, parse_period(PERIOD), REVIEW_KINDS, concurrency=2))
        yield engine, settings


def ordinary_drafts(engine: Engine) -> tuple[list[tuple[str, DraftBody]], frozenset[str]]:
    """(subject's name, body) of every draft's current version, and everyone's name words."""
    with engine.connect() as conn:
        names = name_words(conn.execute(select(Person.name)).scalars())
        rows = conn.execute(
            select(Person.name, DraftVersion.body)
            .join(Draft, Draft.subject_id == Person.id)
            .join(
                DraftVersion,
                (DraftVersion.draft_id == Draft.id)
                & (DraftVersion.version == Draft.current_version),
            )
            .where(Draft.period == PERIOD)
            .order_by(Draft.id)
        ).all()
    return [(r.name, DraftBody.model_validate(r.body)) for r in rows], names


def ordinary_figures(
    drafts: Sequence[tuple[str, DraftBody]], names: frozenset[str], parser: SenseParser | None
) -> tuple[dict[str, float | int | str], Counter[str]]:
    """Share of drafts with any flag, and of each category; the flagged phrases counted."""
    flagged = 0
    per_category: Counter[str] = Counter()
    phrases: Counter[str] = Counter()
    for subject, body in drafts:
        flags = profile_draft(body, names, parser=parser, subject=subject).flags
        flagged += bool(flags)
        for measure in {f.measure for f in flags}:
            per_category[measure] += 1
        phrases.update(f"{f.measure}: {f.phrase.lower()}" for f in flags)
    total = len(drafts) or 1
    figures: dict[str, float | int | str] = {
        "ordinary_drafts": len(drafts),
        "ordinary_share_flagged": round(flagged / total, 3),
    }
    for category in FLAG_CATEGORIES:
        figures[f"ordinary_share.{category}"] = round(per_category[category] / total, 3)
    return figures, phrases


def written_ordinary_figures(
    drafts: Sequence[OrdinaryDraft], parser: SenseParser | None
) -> tuple[dict[str, float | int | str], Counter[str]]:
    """The share of the hand-written ordinary drafts with any flag, before (word lists
    only) and with the parser when there is one, and of each category (with the parser);
    the phrases flagged, counted. Each draft is profiled with its own people's names and
    its subject, as the check profiles a stored draft."""
    before = after = 0
    per_category: Counter[str] = Counter()
    phrases: Counter[str] = Counter()
    for draft in drafts:
        names = name_words(draft.names)
        before += bool(profile_text(draft.text, names, subject=draft.subject).flags)
        flags = profile_text(draft.text, names, parser=parser, subject=draft.subject).flags
        after += bool(flags)
        for measure in {f.measure for f in flags}:
            per_category[measure] += 1
        phrases.update(f"{f.measure}: {f.phrase.lower()}" for f in flags)
    total = len(drafts) or 1
    figures: dict[str, float | int | str] = {
        "ordinary_set_drafts": len(drafts),
        "ordinary_set_share_flagged_words_only": round(before / total, 3),
        "ordinary_set_share_flagged": round(after / total, 3),
    }
    for category in FLAG_CATEGORIES:
        figures[f"ordinary_set_share.{category}"] = round(per_category[category] / total, 3)
    return figures, phrases


def _case_table(figures: dict[str, float | int | str], path: Path, prefix: str) -> Table:
    table = Table(title=f"flag precision and recall on evals/data/{path.name}")
    for column in ("category", "precision", "recall", "stray flags"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for category in FLAG_CATEGORIES:
        table.add_row(
            category,
            str(figures[f"{prefix}{category}.precision"]),
            str(figures[f"{prefix}{category}.recall"]),
            str(figures[f"{prefix}{category}.stray_flags"]),
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=120, help="0: skip the ordinary drafts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--set",
        choices=("dev", "holdout", "both"),
        default="both",
        help="labelled flag cases to score: the dev set, the held-out set, or both",
    )
    parser.add_argument(
        "--no-ordinary-set",
        action="store_true",
        help="skip the hand-written ordinary drafts (evals/data/ordinary_drafts.jsonl)",
    )
    parser.add_argument("--show", type=int, default=0, help="print this many errors per kind")
    parser.add_argument(
        "--no-parse", action="store_true", help="word lists and cheap rules only, no spaCy"
    )
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    sense = None if args.no_parse else load_sense_parser()
    figures: dict[str, float | int | str] = {"parser": "none" if sense is None else sense.name}
    chosen = ("dev", "holdout") if args.set == "both" else (args.set,)
    for name in chosen:
        path, prefix = CASE_SETS[name]
        results = [score_case(case, sense) for case in load_flag_cases(path).cases]
        figures.update({f"{prefix}{k}": v for k, v in case_figures(results).items()})
        console.print(_case_table(figures, path, prefix))
        if args.show:
            _show_errors(console, results, args.show)
    if not args.no_ordinary_set:
        written, written_phrases = written_ordinary_figures(load_ordinary_drafts().cases, sense)
        figures.update(written)
        for phrase, count in written_phrases.most_common(args.show or 5):
            console.print(f"ordinary set flag: {phrase} x{count}", markup=False)
    if args.people:
        home = Path(tempfile.mkdtemp(prefix="fairdraft-eval-flags-"))
        try:
            with clean_org_store(home, people=args.people, seed=args.seed) as (engine, _):
                drafts, names = ordinary_drafts(engine)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        ordinary, phrases = ordinary_figures(drafts, names, sense)
        figures.update(ordinary)
        for phrase, count in phrases.most_common(args.show or 5):
            console.print(f"ordinary flag: {phrase} x{count}")
    figures.update(
        target_precision=TARGET_PRECISION,
        target_recall=TARGET_RECALL,
        target_ordinary_share=TARGET_ORDINARY_SHARE,
    )
    print_figures(console, "flag eval", figures)
    return 0


def _show_errors(console: Console, results: Sequence[CaseResult], limit: int) -> None:
    misses = [r for r in results if r.case.biased_use and not r.flagged]
    false = [r for r in results if not r.case.biased_use and r.flagged]
    for label, chosen in (("missed", misses), ("false", false)):
        for r in chosen[:limit]:
            console.print(f"{label} {r.case.id} [{r.case.phrase}] {r.case.text}", markup=False)


if __name__ == "__main__":
    raise SystemExit(main())
