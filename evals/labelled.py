"""Labelled evaluation data for the bias check (issue 14): flag cases and sentence splits.

The files in `evals/data/` were written by hand (`evals/data/README.md` says how) to judge
flagging and sentence-splitting code written after them. Loading is strict because a slip
in the data would quietly change what an eval measures: a duplicate id, a phrase that does
not occur in its text (or occurs twice, so its span is ambiguous), an unknown category, or
expected sentences that do not cover their text are refused, naming file, line and field.

    cases = load_flag_cases()        # FlagCases: header, cases, by_category(), counts()
    splits = load_sentence_splits()  # SentenceSplits: header, cases

Held-out sets, written later by a writer who had not seen the sense rules, for reporting
only (never for tuning): `load_flag_cases(FLAG_HOLDOUT_PATH)` (same format as the flag
cases), `AGENCY_HOLDOUT_PATH` (the format of `agency_cases.jsonl`, loaded by
`evals.eval_agency.load_cases`), and `load_ordinary_drafts()` (OrdinaryDrafts: ordinary,
unbiased review texts, for the share of such drafts with any flag).
"""

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from domain.errors import Invalid

DATA_DIR = Path(__file__).parent / "data"
FLAG_CASES_PATH = DATA_DIR / "flag_cases.jsonl"
SENTENCE_SPLITS_PATH = DATA_DIR / "sentence_splits.jsonl"
# held out: written after the rules they judge, used only to report figures
FLAG_HOLDOUT_PATH = DATA_DIR / "flag_cases_holdout.jsonl"
AGENCY_HOLDOUT_PATH = DATA_DIR / "agency_holdout.jsonl"
ORDINARY_DRAFTS_PATH = DATA_DIR / "ordinary_drafts.jsonl"

# the measures that raise per-draft flags, named as service/bias/language.py names them
FlagCategory = Literal[
    "personality_criticism",
    "doubt_raiser",
    "vague_praise",
    "gender_coded",
    "age_coded",
    "hedging",
]
FLAG_CATEGORIES: tuple[str, ...] = get_args(FlagCategory)

# who wrote an ordinary draft and why: fairdraft's review kinds, plus a peer's feedback
ReviewKind = Literal["self_reflection", "manager_feedback", "peer_feedback", "promotion_packet"]
REVIEW_TEXT_KINDS: tuple[str, ...] = get_args(ReviewKind)

# what may stand between two expected sentences: white space and list markers
_BETWEEN_SENTENCES = re.compile(r"(?:\s|[-*\u2022]\s|\d+[.)]\s)*")


class LabelledDataError(Invalid):
    """A labelled data file that cannot be trusted as it is."""


class DataHeader(BaseModel):
    """The first line of a data file: where its cases come from and what labels mean."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    source: str = Field(alias="_source", min_length=1)
    labels: str = Field(alias="_labels", min_length=1)


class _Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str = Field(pattern=r"^[a-z]+-\d{3}$")


class FlagCase(_Case):
    """A phrase of a word list in one to three sentences of review text, and whether it is
    used there in the biased sense its category is about (`note` says why)."""

    category: FlagCategory
    text: str = Field(min_length=1)
    phrase: str = Field(min_length=1)
    biased_use: bool
    note: str = Field(min_length=1)

    @field_validator("phrase")
    @classmethod
    def _once_in_text(cls, phrase: str, info: ValidationInfo) -> str:
        """The phrase must mark one place: exactly one whole-word occurrence in the text."""
        text = info.data.get("text")
        if isinstance(text, str):
            found = len(_occurrences(phrase, text))
            if found != 1:
                where = "does not occur" if found == 0 else f"occurs {found} times"
                raise ValueError(f"{phrase!r} {where} in text as whole words (must be once)")
        return phrase

    @property
    def span(self) -> tuple[int, int]:
        """Character span of the phrase in the text, for matching a flag to the case."""
        start = _occurrences(self.phrase, self.text)[0]
        return start, start + len(self.phrase)


class SplitCase(_Case):
    """A text and the sentences a careful reader splits it into, each as it appears in the
    text, with surrounding white space and list markers (-, *, bullet, 1., 2)) left out."""

    text: str = Field(min_length=1)
    # strict=False only so that a JSON array becomes a tuple; its items stay strictly str
    sentences: tuple[str, ...] = Field(min_length=1, strict=False)

    @field_validator("sentences")
    @classmethod
    def _cover_text(cls, sentences: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """The sentences, in order, must be the whole text but for white space and markers."""
        text = info.data.get("text")
        if isinstance(text, str):
            _check_cover(text, sentences)
        return sentences


class OrdinaryDraft(_Case):
    """An ordinary, unbiased review text: any flag on it is a false flag. `lookalikes` are
    the words of flag-raising lists it uses innocently ("appeared in", "warm standby"),
    each exactly as written in the text, so a reader can check every one."""

    kind: ReviewKind
    subject: str = Field(min_length=1)  # full name of the person reviewed
    # strict=False only so that JSON arrays become tuples; their items stay strictly str
    others: tuple[str, ...] = Field(default=(), strict=False)  # other people named
    text: str = Field(min_length=1)
    lookalikes: tuple[str, ...] = Field(strict=False)
    note: str = Field(min_length=1)

    @field_validator("others", "lookalikes")
    @classmethod
    def _no_blank_items(cls, items: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item.strip() for item in items):
            raise ValueError("an item is empty")
        return items

    @field_validator("lookalikes")
    @classmethod
    def _in_text(cls, lookalikes: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """Every look-alike must occur in the text as whole words (it may occur twice)."""
        text = info.data.get("text")
        if isinstance(text, str):
            for phrase in lookalikes:
                if not _occurrences(phrase, text):
                    raise ValueError(f"{phrase!r} does not occur in text as whole words")
        return lookalikes

    @property
    def names(self) -> tuple[str, ...]:
        """Everyone named in the draft, the subject first: what an eval passes as names."""
        return (self.subject, *self.others)


@dataclass(frozen=True)
class FlagCases:
    header: DataHeader
    cases: tuple[FlagCase, ...]

    def by_category(self) -> dict[str, list[FlagCase]]:
        """Cases per category, every category present (possibly empty), in file order."""
        grouped: dict[str, list[FlagCase]] = {c: [] for c in FLAG_CATEGORIES}
        for case in self.cases:
            grouped[case.category].append(case)
        return grouped

    def counts(self) -> Counter[tuple[str, bool]]:
        """Number of cases per (category, biased_use)."""
        return Counter((c.category, c.biased_use) for c in self.cases)


@dataclass(frozen=True)
class SentenceSplits:
    header: DataHeader
    cases: tuple[SplitCase, ...]


@dataclass(frozen=True)
class OrdinaryDrafts:
    header: DataHeader
    cases: tuple[OrdinaryDraft, ...]


def load_flag_cases(path: Path = FLAG_CASES_PATH) -> FlagCases:
    """The labelled flag cases, validated; LabelledDataError names what is wrong."""
    header, cases = _load(path, FlagCase)
    return FlagCases(header, tuple(cases))


def load_sentence_splits(path: Path = SENTENCE_SPLITS_PATH) -> SentenceSplits:
    """The sentence-split cases, validated; LabelledDataError names what is wrong."""
    header, cases = _load(path, SplitCase)
    return SentenceSplits(header, tuple(cases))


def load_ordinary_drafts(path: Path = ORDINARY_DRAFTS_PATH) -> OrdinaryDrafts:
    """The ordinary, unbiased drafts, validated; LabelledDataError names what is wrong."""
    header, cases = _load(path, OrdinaryDraft)
    return OrdinaryDrafts(header, tuple(cases))


CaseT = TypeVar("CaseT", bound=_Case)


def _load(path: Path, model: type[CaseT]) -> tuple[DataHeader, list[CaseT]]:
    lines = list(_json_lines(path))
    if not lines:
        raise LabelledDataError(f"{path.name}: the file is empty", field=path.name)
    header = _validated(DataHeader, path, *lines[0])
    cases: list[CaseT] = []
    first_line: dict[str, int] = {}
    for number, row in lines[1:]:
        case = _validated(model, path, number, row)
        if case.id in first_line:
            raise LabelledDataError(
                f"{path.name} line {number}: id: {case.id!r} repeats line {first_line[case.id]}",
                field=f"{path.name}:{number}:id",
            )
        first_line[case.id] = number
        cases.append(case)
    return header, cases


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """(line number, object) for every non-blank line; refuses anything but JSON objects."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelledDataError(f"{path}: no such file", field=path.name) from None
    except UnicodeDecodeError as error:
        raise LabelledDataError(
            f"{path.name}: not UTF-8 (byte {error.start})", field=path.name
        ) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_unique_keys)
        except ValueError as error:
            raise LabelledDataError(
                f"{path.name} line {number}: not a JSON object ({error})",
                field=f"{path.name}:{number}",
            ) from None
        if not isinstance(row, dict):
            raise LabelledDataError(
                f"{path.name} line {number}: not a JSON object", field=f"{path.name}:{number}"
            )
        yield number, row


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object whose keys repeat would keep only the last value: refuse it."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"key {repeated[0]!r} repeats")
    return dict(pairs)


ModelT = TypeVar("ModelT", bound=BaseModel)


def _validated(model: type[ModelT], path: Path, number: int, row: dict[str, object]) -> ModelT:
    try:
        return model.model_validate(row)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "line"
        raise LabelledDataError(
            f"{path.name} line {number}: {where}: {first['msg']}",
            field=f"{path.name}:{number}:{where}",
        ) from None


def _occurrences(phrase: str, text: str) -> list[int]:
    """Start offsets of the phrase in the text, exact case, not inside a longer word."""
    pattern = re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)")
    return [m.start() for m in pattern.finditer(text)]


def _check_cover(text: str, sentences: Sequence[str]) -> None:
    position = 0
    for index, sentence in enumerate(sentences):
        if not sentence or sentence != sentence.strip():
            raise ValueError(f"sentence {index} is empty or has white space around it")
        found = text.find(sentence, position)
        if found < 0:
            after = f" after sentence {index - 1}" if index else ""
            raise ValueError(f"sentence {index} is not in the text{after}")
        if not _BETWEEN_SENTENCES.fullmatch(text, position, found):
            raise ValueError(f"text before sentence {index} is in no sentence")
        position = found + len(sentence)
    if text[position:].strip():
        raise ValueError("text after the last sentence is in no sentence")
