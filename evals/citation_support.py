"""Does a cited evidence item support a draft sentence? A lexical judge for the drafting eval.

A citation is correct when the item says what the sentence says. Without a model to judge
meaning, we judge wording, strictly enough that citing the wrong item fails:

1. Content words. Both texts are lower-cased and split into words; words of fewer than
   three letters and common English function words (`STOPWORDS`) are dropped, and the
   rest are stemmed by stripping one common suffix (-ing, -ed, -es, -s, -ly, ...), so
   "reduced" and "reduce", "reviews" and "review" meet.
2. Coverage. The share of the sentence's content stems found in the item must be at least
   `THRESHOLD` (0.6). A restated sentence keeps most of its source's words ("Moved card
   payments ..." -> "I moved card payments ..."); words a drafter adds to frame it ("A
   colleague wrote", "set out to") must stay a minority. The subject's own names are not
   counted (`ignore`): naming the person is not a claim about the evidence.
3. Numbers. Every number in the sentence ("4.1", "1.3", "159") must appear in the item: a
   figure is the claim a reader checks first, and a wrong one is never near enough. ("1:1",
   the meeting, is not a figure.)

On the synthetic org, items of one person share much vocabulary (the same projects and
metrics recur), so the eval also scores every sentence against a *different* item of the
same pack; that control must score far below the real citations, or the measure is too
lenient to mean anything.
"""

import re
from collections.abc import Iterable

THRESHOLD = 0.6
_WORD = re.compile(r"[a-z]+")
_MEETING = re.compile(r"\b1:1s?\b")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SUFFIXES = (
    *("ations", "ation", "ments", "ment", "ingly", "ings", "ing", "edly", "ied", "ies"),
    *("ed", "es", "ly", "s"),
)
STOPWORDS = frozenset(
    """
    about above after again against all also and any are around because been before being
    below between both but can could did does doing down during each even every few for from
    further had has have having her here hers him his how into its itself just more most much
    must nor not now off once only other our ours out over own same she should some such than
    that the their theirs them then there these they this those through too under until very
    was were what when where which while who whom why will with would you your yours yourself
    one two also get got still yet per
    """.split()  # noqa: SIM905 - a word list reads best as words
)


def stem(word: str) -> str:
    """A light suffix-stripping stemmer: enough to join inflections of one word."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_stems(text: str, ignore: Iterable[str] = ()) -> set[str]:
    skip = {w for name in ignore for w in _WORD.findall(name.lower())}
    return {
        stem(w)
        for w in _WORD.findall(text.lower())
        if len(w) >= 3 and w not in STOPWORDS and w not in skip
    }


def numbers(text: str) -> set[str]:
    """The figures of a text; "1:1" names a meeting, not a figure."""
    return {n.replace(",", "") for n in _NUMBER.findall(_MEETING.sub(" ", text))}


def coverage(sentence: str, item_text: str, ignore: Iterable[str] = ()) -> float:
    """Share of the sentence's content stems that the item also has (1.0 when it has none)."""
    words = content_stems(sentence, ignore)
    if not words:
        return 1.0
    return len(words & content_stems(item_text)) / len(words)


def supports(sentence: str, item_text: str, ignore: Iterable[str] = ()) -> bool:
    """Whether the item supports the sentence: enough shared content and every number."""
    return coverage(sentence, item_text, ignore) >= THRESHOLD and numbers(sentence) <= numbers(
        item_text
    )
