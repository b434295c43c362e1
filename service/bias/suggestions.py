"""Suggestions that fit the sentence: a flag's rewording names the sentence's own evidence.

The word lists give every term one piece of advice ("describe the behaviour and its
effect"), the same for every draft. A writer acts on it more readily when it points at the
record to say it from: 'Say what happened instead of "abrasive", as the 12 March 1:1 note
[E4] records it'. So the suggestion stored with a language flag is built here from the
flagged sentence's citations and the draft's evidence: each cited item named by its date
and kind (never by its text: a suggestion is stored with the check and shown wherever the
flag is), with the category's template from `data/suggestions/suggestions.json`. A
sentence that cites nothing a rewording can rest on (no id, an id the draft's evidence
lacks, or only items that read as instructions to a model) keeps the word list's advice,
and is told to cite an item.

The same file holds the notes said with a proposed rewrite (`rewrite.py`), and the offline
template rewrite is built here from a cited item's own sentences (its first one that the
draft does not already say).
"""

import json
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from string import Formatter
from typing import Any

from sqlalchemy import Connection, Text, any_, cast, column, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, distinct_on

from domain.calendar import MONTHS
from retrieval.sentences import split_line
from service.bias.language import LanguageFlag, LanguageProfile
from service.db.models import DraftVersion
from service.drafting.injection_flags import InjectionFinding
from service.drafting.offline_text import finish, strip_labels
from service.drafting.structure import DraftBody

DATA_FILE = Path(__file__).parent / "data" / "suggestions" / "suggestions.json"
ANY_MEASURE = "*"
MAX_NAMED = 3  # items named in a suggestion; more are counted ("and 2 more items")
TEMPLATE_WORDS = 40  # a template rewrite's first sentence is cut to this many words
_MIN_WORDS = 4  # shorter "sentences" of an item (a label, a heading) are passed over
_WORD = re.compile(r"[^\W_]+")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
# the placeholders each template may use; a template naming another fails at load
_PLACEHOLDERS = {
    "cited": {"items", "phrase"},
    "uncited": {"advice", "phrase"},
    "template_note": {"item"},
    "model_note": {"model", "items"},
}


@dataclass(frozen=True)
class SuggestionTexts:
    """The data file, read once: kind names and the templates by use."""

    kinds: dict[str, str]
    cited: dict[str, str]  # flag measure (or "*") -> template
    uncited: str
    template_note: str
    model_note: str


def _check(path: Path, use: str, template: str) -> str:
    named = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    unknown = named - _PLACEHOLDERS[use]
    if unknown or not template.strip():
        raise ValueError(f"{path.name}: {use} template names {sorted(unknown)} or is empty")
    return template


def load_texts(path: Path = DATA_FILE) -> SuggestionTexts:
    """Read and check the data file: a header, every template's placeholders known."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if not str(data.get("_source", "")).strip():
        raise ValueError(f"{path.name}: no _source")
    cited = {str(k): _check(path, "cited", str(v)) for k, v in data["cited"].items()}
    if ANY_MEASURE not in cited:
        raise ValueError(f"{path.name}: no {ANY_MEASURE!r} template under 'cited'")
    return SuggestionTexts(
        kinds={str(k): str(v) for k, v in data["kinds"].items()},
        cited=cited,
        uncited=_check(path, "uncited", str(data["uncited"])),
        template_note=_check(path, "template_note", str(data["template_note"])),
        model_note=_check(path, "model_note", str(data["model_note"])),
    )


@cache
def texts() -> SuggestionTexts:
    """The package's data file, loaded once per process."""
    return load_texts()


@dataclass(frozen=True)
class CitedItem:
    """An evidence item of the draft as a suggestion names it (id, kind, date), and, read
    for a rewrite only, its title, source and text."""

    id: str
    kind: str | None
    day: date | None
    instructions: bool = False  # stored as reading as instructions to a model
    title: str | None = None
    source: str = ""
    text: str = ""

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> "CitedItem":
        """From a stored provenance entry (id, kind, occurred_at, title, source, text,
        instruction_signals; a draft stored before some of these existed lacks them)."""
        return cls(
            id=str(entry["id"]),
            kind=str(entry["kind"]) if entry.get("kind") else None,
            day=_day(entry.get("occurred_at")),
            instructions=bool(entry.get("instruction_signals")),
            title=str(entry["title"]) if entry.get("title") else None,
            source=str(entry.get("source") or ""),
            text=str(entry.get("text") or ""),
        )


def evidence_sources(
    connection: Connection, wanted: Mapping[int, Collection[str]]
) -> dict[int, dict[str, CitedItem]]:
    """What suggestions name of the `wanted` evidence ids of each draft (its id, kind,
    date and whether it was stored as reading as instructions), without any text: the
    pack of the draft's latest generated version, as `drafting.store.drafts_evidence`
    reads it, cut down in the database to the items wanted, so a cycle's report moves a
    few hundred small rows instead of every draft's evidence."""
    keys = [f"{draft_id}:{key}" for draft_id, ids in wanted.items() for key in ids]
    if not keys:
        return {}
    latest = (
        select(DraftVersion.draft_id, DraftVersion.provenance["evidence"].label("evidence"))
        .ext(distinct_on(DraftVersion.draft_id))
        .where(
            DraftVersion.draft_id.in_([d for d, ids in wanted.items() if ids]),
            DraftVersion.origin.in_(("llm", "offline")),
        )
        .order_by(DraftVersion.draft_id, DraftVersion.version.desc())
        .subquery()
    )
    item = func.jsonb_array_elements(latest.c.evidence).table_valued(column("value", JSONB))
    item = item.alias("item")
    value = item.c.value
    rows = connection.execute(
        select(
            latest.c.draft_id,
            value["id"].astext,
            value["kind"].astext,
            value["occurred_at"].astext,
            value["instruction_signals"].astext,
        )
        .select_from(latest.join(item, true()))
        .where(
            func.jsonb_typeof(latest.c.evidence) == "array",
            func.concat(latest.c.draft_id, ":", value["id"].astext)
            == any_(cast(keys, ARRAY(Text))),
        )
    ).all()
    found: dict[int, dict[str, CitedItem]] = {}
    for draft_id, key, kind, occurred_at, signals in rows:
        found.setdefault(int(draft_id), {})[key] = CitedItem(
            id=key,
            kind=kind or None,
            day=_day(occurred_at),
            instructions=signals not in (None, "[]"),
        )
    return found


def _day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        return None


def cited_items(
    citations: Sequence[str],
    sources: Mapping[str, CitedItem],
    unusable: Collection[str] = (),
) -> list[CitedItem]:
    """The sentence's citations a rewording may rest on, in the order cited, once each: an
    item of the draft's evidence that neither was stored as reading as instructions to a
    model nor is named `unusable` (found so since), which is never a source."""
    return [
        sources[c]
        for c in dict.fromkeys(citations)
        if c in sources and not sources[c].instructions and c not in unusable
    ]


def item_name(item: CitedItem) -> str:
    """'the 12 March 1:1 note [E4]'; without a date 'the 1:1 note [E4]'."""
    kind = texts().kinds.get(item.kind or "", "record")
    when = f"{item.day.day} {MONTHS[item.day.month - 1]} " if item.day else ""
    return f"the {when}{kind} [{item.id}]"


def items_phrase(items: Sequence[CitedItem]) -> str:
    """The items named in a list: 'A', 'A and B', 'A, B and C', 'A, B, C and 2 more items'."""
    names = [item_name(item) for item in items[:MAX_NAMED]]
    rest = len(items) - len(names)
    if rest:
        names.append(f"{rest} more item{'s' if rest != 1 else ''}")
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def fitted_suggestion(measure: str, phrase: str, advice: str, items: Sequence[CitedItem]) -> str:
    """The suggestion for one flag: the category's template naming the cited items, or
    (nothing cited to rest on) the word list's `advice` and a request to cite an item."""
    data = texts()
    if not items:
        return data.uncited.format(advice=advice.strip(), phrase=phrase).strip()
    template = data.cited.get(measure, data.cited[ANY_MEASURE])
    return template.format(items=items_phrase(items), phrase=phrase)


def flag_citations(flags: Sequence[LanguageFlag], body: DraftBody) -> set[str]:
    """The evidence ids cited by the sentences that hold a language flag: all that the
    draft's suggestions name."""
    return {
        key
        for flag in flags
        for key in body.sections[flag.section].sentences[flag.sentence].evidence
    }


def flag_sources(
    connection: Connection, drafts: Mapping[int, tuple[LanguageProfile, DraftBody]]
) -> dict[int, dict[str, CitedItem]]:
    """`evidence_sources` of the ids each draft's flagged sentences cite, by draft id, for
    `fitted_flags`; a draft without language flags costs nothing."""
    wanted = {d: flag_citations(profile.flags, body) for d, (profile, body) in drafts.items()}
    return evidence_sources(connection, {d: ids for d, ids in wanted.items() if ids})


def fitted_flags(
    flags: Sequence[LanguageFlag],
    body: DraftBody,
    sources: Mapping[str, CitedItem],
    injection: Sequence[InjectionFinding] = (),
) -> list[dict[str, Any]]:
    """Language flags as a check stores them, each suggestion fitted to its sentence's own
    evidence (the keys are `LanguageFlag`'s, as before). An item the sentence cites that
    `injection` finds it relying on as instructions is never named as a source."""
    unusable: dict[tuple[int, int], set[str]] = {}
    for finding in injection:
        if finding.evidence is not None:
            unusable.setdefault((finding.section, finding.sentence), set()).add(finding.evidence)
    rows = []
    for flag in flags:
        sentence = body.sections[flag.section].sentences[flag.sentence]
        at = (flag.section, flag.sentence)
        items = cited_items(sentence.evidence, sources, unusable.get(at, ()))
        suggestion = fitted_suggestion(flag.measure, flag.phrase, flag.suggestion, items)
        rows.append({**asdict(flag), "suggestion": suggestion})
    return rows


def template_note(item: CitedItem) -> str:
    return texts().template_note.format(item=item_name(item))


def model_note(model: str, items: Sequence[CitedItem]) -> str:
    return texts().model_note.format(model=model, items=items_phrase(items))


def item_sentences(item: CitedItem) -> Iterator[str]:
    """The item's sentences that say something (at least four words, labels and bullets
    stripped), in order, each cut to TEMPLATE_WORDS words."""
    body = item.text.replace("\u2019", "'")
    if item.title and body.startswith(item.title.strip()):
        body = body[len(item.title.strip()) :]
    for line in body.splitlines():
        for raw in split_line(_BULLET.sub("", line).strip()):
            words = finish(strip_labels(raw)[0]).split()
            if len(words) >= _MIN_WORDS:
                yield _cut(words)


def first_sentence(item: CitedItem, taken: Collection[str] = ()) -> str | None:
    """The item's first sentence that the draft does not already say (`taken`: its
    sentences; one holding the item's sentence's words in order says it), else its first;
    None when it has none."""
    said = [_words(t) for t in taken]
    first = None
    for text in item_sentences(item):
        if not any(_words(text) in words for words in said):
            return text
        first = first or text
    return first


def _words(text: str) -> str:
    """The words of a text, lower case, each between spaces (so `in` matches whole words)."""
    return " " + " ".join(_WORD.findall(text.lower())) + " "


def _cut(words: list[str]) -> str:
    if len(words) <= TEMPLATE_WORDS:
        return " ".join(words)
    return " ".join(words[:TEMPLATE_WORDS]).rstrip(".,;:!?") + "\u2026"
