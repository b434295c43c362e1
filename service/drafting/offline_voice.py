"""Restating an evidence sentence in the voice of a draft kind, or saying it is not safe.

A work record says "Moved card payments to the new ledger." A self-reflection needs "I moved
...", manager feedback "You moved ...", a promotion packet "Cy moved ...". Peer feedback says
"Cy explained every threshold."; a self-reflection needs "I explained ...". We restate only
what simple rules get right: a subjectless past-tense sentence, or one whose grammatical
subject is the person's first name followed by a verb we can inflect. Anything else
("I'd like Cy to ...", a sentence with "they" that may mean the person) is quoted with its
source named, and a sentence with a gendered pronoun is never used at all, since drafts
name their subject by first name only. The word lists are data (`data/offline_voice.json`).
"""

import json
import re
from dataclasses import dataclass
from enum import Enum, StrEnum
from functools import cache
from pathlib import Path

VOICE_FILE = Path(__file__).parent / "data" / "offline_voice.json"
OWN_KINDS = frozenset({"work_record", "goal", "self_note"})  # written by the person
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_INTRO = re.compile(
    r"^(?:(?:[^,]{1,60}),\s+|(?:In|On|At|During|After|Before|Since|Over|Across|For|Through)"
    r"\s+(?:the\s+)?(?:[A-Za-z0-9-]+\s+){0,3})$"
)


_SECOND_PRESENT_VERB = re.compile(r"\b(?:and|but|or)\s+[a-z]+[^s\W]s\b")


class Voice(StrEnum):
    FIRST = "first"
    SECOND = "second"
    THIRD = "third"


class Outcome(Enum):
    RESTATED = "restated"
    QUOTE = "quote"
    DROP = "drop"


@dataclass(frozen=True)
class Restated:
    outcome: Outcome
    text: str = ""


@dataclass(frozen=True)
class Grammar:
    irregular_past: frozenset[str]
    not_past: frozenset[str]
    modals: frozenset[str]
    second_person: dict[str, str]
    third_person: dict[str, str]
    first_person: frozenset[str]
    author_words: frozenset[str]
    gendered: frozenset[str]
    other_pronouns: frozenset[str]
    present_third: dict[str, str]
    non_verbs: frozenset[str]
    first_person_present: frozenset[str]


@cache
def grammar() -> Grammar:
    d = json.loads(VOICE_FILE.read_text())
    return Grammar(
        irregular_past=frozenset(d["irregular_past"]),
        not_past=frozenset(d["not_past"]),
        modals=frozenset(d["modals"]),
        second_person=dict(d["second_person"]),
        third_person=dict(d["third_person"]),
        first_person=frozenset(d["first_person_words"]),
        author_words=frozenset(d["author_words"]),
        gendered=frozenset(d["gendered_pronouns"]),
        other_pronouns=frozenset(d["other_pronouns"]),
        present_third=dict(d["third_person_present"]),
        non_verbs=frozenset(d["non_verbs_after_name"]),
        first_person_present=frozenset(d["first_person_present"]),
    )


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def has_gendered_pronoun(text: str) -> bool:
    return any(w in grammar().gendered for w in words(text))


def is_past(word: str) -> bool:
    w = word.lower()
    g = grammar()
    return w in g.irregular_past or (w.endswith("ed") and len(w) > 3 and w not in g.not_past)


def subject_word(voice: Voice, first_name: str) -> str:
    return {Voice.FIRST: "I", Voice.SECOND: "You", Voice.THIRD: first_name}[voice]


def restate(
    text: str, *, own: bool, voice: Voice, first_name: str, writer_is_author: bool
) -> Restated:
    """The sentence in `voice`, or whether to quote it or drop it.

    `own`: the evidence was written by the person (work record, goal, self note), so its
    "I" and its subjectless sentences are the person. Otherwise "I" is the author, and
    `writer_is_author` says the draft's writer is that author (a manager's own 1:1 notes in
    the manager's feedback), so the author's "I" may stand.
    """
    if has_gendered_pronoun(text):
        return Restated(Outcome.DROP)
    if own:
        return _restate_own(text, voice, first_name)
    return _restate_others(text, voice, first_name, writer_is_author)


def starts_with_past_verb(text: str) -> bool:
    """ "Moved card payments ..." starts with a verb; "Failed payment retries dropped ..."
    starts with an adjective, which the sentence's real verb a few words on gives away."""
    tokens = text.split()
    first = _WORD.match(text)
    if first is None or not first[0][0].isupper() or not is_past(first[0]):
        return False
    for token in tokens[1:5]:
        word = token.strip(",.;:").lower()
        if word in ("and", "or", "then") or token.endswith((",", ";")):
            return True
        if is_past(word):
            return False
    return True


def _restate_own(text: str, voice: Voice, first_name: str) -> Restated:
    first = _WORD.match(text)
    if starts_with_past_verb(text):
        text = f"{subject_word(voice, first_name)} {text[0].lower()}{text[1:]}"
        if voice is Voice.FIRST:
            return Restated(Outcome.RESTATED, text)
        start = len(subject_word(voice, first_name)) + 1
        rest = shift_first_person(text[start:], voice, first_name)
        return Restated(Outcome.RESTATED, text[:start] + rest) if rest else Restated(Outcome.DROP)
    if voice is Voice.FIRST:
        if first is not None and first[0].lower() in grammar().first_person_present:
            text = f"I {text[0].lower()}{text[1:]}"  # a journal's "Want to ask ..."
        return Restated(Outcome.RESTATED, text)
    shifted = shift_first_person(text, voice, first_name)
    return Restated(Outcome.RESTATED, shifted) if shifted else Restated(Outcome.DROP)


def shift_first_person(text: str, voice: Voice, first_name: str) -> str | None:
    """The person's own "I", "my", "me" in second or third person; None when the verb
    after "I" cannot be inflected safely ("I have" -> "Cy has" is fine, "I keep" is not)."""
    g = grammar()
    tokens = list(_WORD.finditer(text))
    out, last = [], 0
    skip_next = False
    for n, match in enumerate(tokens):
        if skip_next:
            skip_next = False
            continue
        word = match[0]
        low = word.lower()
        if low not in g.first_person:
            continue
        following = tokens[n + 1][0].lower() if n + 1 < len(tokens) else ""
        new = _person_word(low, following, voice, first_name)
        if new is None:
            return None
        replacement, consumed_next = new
        end = tokens[n + 1].end() if consumed_next else match.end()
        out.append(text[last : match.start()])
        out.append(_match_case(replacement, word, match.start() == 0))
        last = end
        skip_next = consumed_next
    out.append(text[last:])
    return "".join(out)


def _person_word(
    low: str, following: str, voice: Voice, first_name: str
) -> tuple[str, bool] | None:
    """Replacement for one first-person word, and whether it also replaced the next word."""
    g = grammar()
    if voice is Voice.SECOND:
        if low == "i" and following in ("am", "was"):
            return f"you {g.second_person[following]}", True
        return g.second_person[low], False
    if low == "my":
        return f"{first_name}'s", False
    if low == "me":
        return first_name, False
    if low in g.third_person:
        return g.third_person[low].format(first=first_name), False
    if low == "i" and (is_past(following) or following in g.modals):
        return first_name, False
    if low == "i" and following in g.third_person:
        return f"{first_name} {g.third_person[following]}", True
    return None


def _match_case(replacement: str, original: str, at_start: bool) -> str:
    if at_start or (original[:1].isupper() and original.lower() != "i"):
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _restate_others(text: str, voice: Voice, first_name: str, writer_is_author: bool) -> Restated:
    """Feedback, thanks or 1:1 notes about the person, restated when the person is the
    sentence's subject; quoted when the author speaks ("I'd like ...") or a pronoun might
    mean the person."""
    g = grammar()
    lowered = words(text)
    if not writer_is_author and any(w in g.author_words for w in lowered):
        return Restated(Outcome.QUOTE)
    if any(w in g.other_pronouns for w in lowered):
        return Restated(Outcome.QUOTE)
    mentions = list(re.finditer(rf"\b{re.escape(first_name)}\b('s)?", text))
    if not mentions:
        return Restated(Outcome.RESTATED, text)
    if voice is Voice.THIRD:
        return Restated(Outcome.RESTATED, text)
    return _name_to_person(text, mentions, voice, first_name)


def _name_to_person(
    text: str, mentions: list[re.Match[str]], voice: Voice, first_name: str
) -> Restated:
    """ "On Aurora, Ryan split the work" -> "On Aurora, I split the work"; "Ryan's memo"
    -> "my memo". The first mention must be the subject; any other must be possessive."""
    lead = mentions[0]
    if lead.start() and not _INTRO.match(text[: lead.start()]):
        return Restated(Outcome.QUOTE)
    if any(m[1] is None for m in mentions[1:]):
        return Restated(Outcome.QUOTE)
    out = text
    for m in reversed(mentions[1:]):
        out = out[: m.start()] + ("my" if voice is Voice.FIRST else "your") + out[m.end() :]
    at_start = lead.start() == 0
    if lead[1] is not None:
        possessive = "my" if voice is Voice.FIRST else "your"
        return Restated(Outcome.RESTATED, _splice(out, lead, possessive, at_start))
    verb = _WORD.match(out[lead.end() :].lstrip())
    if verb is None:
        return Restated(Outcome.QUOTE)
    inflected = _inflect(verb[0], voice)
    if inflected is None:
        return Restated(Outcome.QUOTE)
    after = out[lead.end() :].lstrip()[len(verb[0]) :]
    if inflected != verb[0].lower() and _SECOND_PRESENT_VERB.search(after):
        return Restated(Outcome.QUOTE)  # "finishes the work but leaves ..." has two verbs
    pronoun = "I" if voice is Voice.FIRST else ("You" if at_start else "you")
    return Restated(Outcome.RESTATED, f"{out[: lead.start()]}{pronoun} {inflected}{after}")


def _splice(text: str, match: re.Match[str], word: str, at_start: bool) -> str:
    word = word.capitalize() if at_start else word
    return text[: match.start()] + word + text[match.end() :]


def _inflect(verb: str, voice: Voice) -> str | None:
    """The verb after the name, agreed with "I" or "you"; None when it is not a verb we
    can recognise ("Cy and Dee ...", "Cy from Payments ...")."""
    g = grammar()
    low = verb.lower()
    if not verb.islower() or low in g.non_verbs:
        return None
    if low == "was":
        return "was" if voice is Voice.FIRST else "were"
    if low == "is":
        return "am" if voice is Voice.FIRST else "are"
    if is_past(low) or low in g.modals:
        return low
    if low in g.present_third:
        return g.present_third[low]
    if low.endswith("ies") and len(low) > 4:
        return low[:-3] + "y"
    if low.endswith(("ches", "shes", "sses", "xes")):
        return low[:-2]
    if low.endswith("s") and not low.endswith("ss") and len(low) > 3:
        return low[:-1]
    return None
