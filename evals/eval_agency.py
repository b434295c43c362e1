"""Agency eval: how well the bias check's agentic-minus-communal score ranks agentic
descriptions of people above communal ones.

    python -m evals.eval_agency

Reads the hand-labelled set `evals/data/agency_cases.jsonl` (its header names the
constructs and their sources) and scores every text with the measure exactly as the bias
check computes it: `profile_text` of `service/bias/language.py`, its
`agentic_minus_communal`, with the names of the people in the set passed as the report
passes the org's names. Cases marked `mixed` (both clearly agentic and clearly communal)
are shown but left out of the figures.

Figures: the ROC AUC of the score for agentic against communal (the chance that a random
agentic text scores above a random communal one, ties counting half; Mann-Whitney U over
n1 * n2, from ranks), the share of texts scoring exactly 0 (most often no word of either
list found), and per label the share with no word of its own list. Prints a table per
facet and the cases ranked on the wrong side of zero, then ends with one JSON line of the
figures. Target: AUC at least 0.97 (issue 14).

Two sets: the development set above, which the lexicon was tuned on (its misranked cases
are printed to read), and the held-out set `evals/data/agency_holdout.jsonl`, written by
another person without seeing the lexicon. The held-out set's figures are printed and put
under `holdout` in the JSON line, but never its texts: reading them would turn it into a
second development set. When the held-out file is absent, `holdout` is null.
"""

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.table import Table

from domain.errors import Invalid
from evals.labelled import AGENCY_HOLDOUT_PATH
from service.bias.language import name_words, profile_text

CASES_FILE = Path(__file__).resolve().parent / "data" / "agency_cases.jsonl"
HOLDOUT_FILE = AGENCY_HOLDOUT_PATH
TARGET_AUC = 0.97
# before issue 14: the 100-word agentic/communal lists (make eval-agency on commit 56c269f)
BEFORE_AUC = 0.7194
SHOWN = 12  # misranked cases listed

Label = Literal["agentic", "communal"]


class AgencySetError(Invalid):
    """The labelled set is malformed; the message names the file, line and field."""


class SetHeader(BaseModel):
    """The set's first line: where the texts come from and what the labels mean."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(alias="_source", min_length=1)
    labels: str = Field(alias="_labels", min_length=1)


class AgencyCase(BaseModel):
    """One labelled description of a person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=40)
    label: Label
    text: str = Field(min_length=1)
    note: str = Field(min_length=1)  # the facet described: leadership, warmth, ...
    name: str | None = None  # the person named in the text, if one is
    mixed: bool = False  # both agentic and communal: left out of the figures


@dataclass(frozen=True)
class CaseSet:
    header: SetHeader
    cases: list[AgencyCase]


@dataclass(frozen=True)
class Scored:
    """A case and what the bias check's language profile says of it."""

    case: AgencyCase
    score: float  # agentic_minus_communal, per 100 words
    agentic_rate: float
    communal_rate: float

    @property
    def own_rate(self) -> float:
        """The rate of the list that matches the case's label."""
        return self.agentic_rate if self.case.label == "agentic" else self.communal_rate


def _refusal(path: Path, line: int, error: ValidationError) -> AgencySetError:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "line"
    return AgencySetError(f"{path.name} line {line}: {field}: {first['msg']}", field=field)


def _json_object(path: Path, line: int, raw: str) -> object:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise AgencySetError(
            f"{path.name} line {line}: not a JSON object ({error.msg})", field="line"
        ) from None


def load_cases(path: Path = CASES_FILE) -> CaseSet:
    """The set, validated whole: a header line, then cases with unique ids and known labels.
    Refused with the first problem's line and field, so a bad edit cannot skew the figures."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise AgencySetError(f"{path}: cannot read the set ({error})", field="cases") from None
    if not lines:
        raise AgencySetError(f"{path.name}: empty, a header line is needed", field="_source")
    try:
        header = SetHeader.model_validate(_json_object(path, 1, lines[0]))
    except ValidationError as error:
        raise _refusal(path, 1, error) from None
    cases: list[AgencyCase] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        try:
            case = AgencyCase.model_validate(_json_object(path, number, raw))
        except ValidationError as error:
            raise _refusal(path, number, error) from None
        if case.id in seen:
            raise AgencySetError(
                f"{path.name} line {number}: id: {case.id!r} repeats line {seen[case.id]}",
                field="id",
            )
        seen[case.id] = number
        cases.append(case)
    return CaseSet(header, cases)


def score_cases(cases: Sequence[AgencyCase]) -> list[Scored]:
    """Each case's profile as the bias check computes it; the set's names are passed like
    the report passes the org's, so a name is never read as a descriptor."""
    names = name_words(case.name for case in cases if case.name)
    scored: list[Scored] = []
    for case in cases:
        measures = profile_text(case.text, names).measures
        scored.append(
            Scored(
                case,
                measures["agentic_minus_communal"],
                measures["agentic_rate"],
                measures["communal_rate"],
            )
        )
    return scored


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def roc_auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(a positive scores above a negative), ties counting half: Mann-Whitney U of the
    positives over n1 * n2 (no sklearn needed)."""
    if not positive or not negative:
        raise AgencySetError("the AUC needs agentic and communal cases", field="label")
    ranks = _ranks([*positive, *negative])
    n1, n2 = len(positive), len(negative)
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    return u / (n1 * n2)


def share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _zero(items: Iterable[Scored]) -> int:
    return sum(1 for item in items if item.score == 0)


def figures(scored: Sequence[Scored]) -> dict[str, float | int]:
    """The eval's figures over the cases that are not mixed."""
    kept = [s for s in scored if not s.case.mixed]
    agentic = [s for s in kept if s.case.label == "agentic"]
    communal = [s for s in kept if s.case.label == "communal"]
    auc = roc_auc([s.score for s in agentic], [s.score for s in communal])
    return {
        "cases": len(kept),
        "agentic": len(agentic),
        "communal": len(communal),
        "mixed_left_out": len(scored) - len(kept),
        "auc": round(auc, 4),
        "target_auc": TARGET_AUC,
        "meets_target": int(auc >= TARGET_AUC),
        "share_zero": share(_zero(kept), len(kept)),
        "share_zero_agentic": share(_zero(agentic), len(agentic)),
        "share_zero_communal": share(_zero(communal), len(communal)),
        "share_no_word": share(
            sum(1 for s in kept if s.agentic_rate == 0 and s.communal_rate == 0), len(kept)
        ),
        "agentic_without_agentic_word": share(
            sum(1 for s in agentic if s.agentic_rate == 0), len(agentic)
        ),
        "communal_without_communal_word": share(
            sum(1 for s in communal if s.communal_rate == 0), len(communal)
        ),
        "misranked": len(misranked(kept)),
    }


def misranked(scored: Iterable[Scored]) -> list[Scored]:
    """Cases on the wrong side of zero: agentic scoring below it, communal above it."""
    return [
        s
        for s in scored
        if not s.case.mixed
        and (
            (s.case.label == "agentic" and s.score < 0)
            or (s.case.label == "communal" and s.score > 0)
        )
    ]


def facet_table(scored: Sequence[Scored]) -> Table:
    """Per label and facet: cases, mean score, share scoring 0, share without a word of the
    label's own list."""
    groups: dict[tuple[str, str], list[Scored]] = defaultdict(list)
    for item in scored:
        if not item.case.mixed:
            groups[(item.case.label, item.case.note)].append(item)
            groups[(item.case.label, "(all)")].append(item)
    table = Table(title="agentic-minus-communal score by facet")
    for column in ("label", "facet", "n", "mean score", "share 0", "no own-list word"):
        table.add_column(column, justify="left" if column in ("label", "facet") else "right")
    for (label, facet), items in sorted(
        groups.items(), key=lambda g: (g[0][0], g[0][1] != "(all)", g[0][1])
    ):
        mean = sum(i.score for i in items) / len(items)
        no_own = sum(1 for i in items if i.own_rate == 0)
        table.add_row(
            label,
            facet,
            str(len(items)),
            f"{mean:+.2f}",
            f"{share(_zero(items), len(items)):.0%}",
            f"{share(no_own, len(items)):.0%}",
        )
    return table


def holdout_figures(path: Path) -> dict[str, float | int] | None:
    """The held-out set's figures, or None when the file is not there (yet)."""
    if not path.exists():
        return None
    return figures(score_cases(load_cases(path).cases))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=Path, default=CASES_FILE)
    parser.add_argument("--holdout", type=Path, default=HOLDOUT_FILE)
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        case_set = load_cases(args.cases)
        scored = score_cases(case_set.cases)
        result: dict[str, object] = dict(figures(scored))
        held = holdout_figures(args.holdout)
    except AgencySetError as error:
        Console(stderr=True).print(f"error: {error}", markup=False, highlight=False)
        return 2
    result["holdout"] = held
    console.print(facet_table(scored))
    wrong = misranked(scored)
    for item in wrong[:SHOWN]:
        console.print(
            f"[yellow]misranked[/yellow] {item.case.id} ({item.case.label}, "
            f"{item.score:+.2f}): {item.case.text!r}"
        )
    for item in (s for s in scored if s.case.mixed):
        console.print(
            f"[dim]mixed, left out[/dim] {item.case.id} ({item.case.note}, {item.score:+.2f}): "
            f"{item.case.text!r}"
        )
    if len(wrong) > SHOWN:
        console.print(f"... and {len(wrong) - SHOWN} more misranked")
    console.print(
        f"AUC {result['auc']:.4f} on the development set (before, with the word lists of the "
        f"first bias check: {BEFORE_AUC:.4f}; target {TARGET_AUC})"
    )
    if held is None:
        console.print(f"held-out set: {args.holdout.name} not found, not measured")
    else:
        console.print(
            f"AUC {held['auc']:.4f} on the held-out set ({held['cases']} cases, "
            f"{held['misranked']} on the wrong side of zero; its texts are not shown)"
        )
    console.print(json.dumps(result), soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
