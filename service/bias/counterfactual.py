"""The counterfactual probe: draft again with the person's name and pronouns swapped, and
measure how far the draft's language profile moves.

A model that drafts never sees demographic data, but the evidence it reads names the person
and refers to them as "he" or "she", and names and pronouns are read as gender and ethnic
origin. Audit studies send the same material under different names; this does the same to
an evidence pack: the same items, the same ids, the same template and drafter, only the name
(from `data/counterfactual_names.json`) and the third-person pronouns changed. A fair drafter
writes the same draft; a shift in, say, personality criticism when "Emily" becomes "Jamal"
is the model's, not the evidence's.

The probe never reads anyone's demographic attributes (it needs only names and the pronouns
already in the evidence) and stores nothing: no draft, no version, no audit event. It is
meaningful only for model drafters; the offline drafter copies evidence and cannot react to
a name. With a temperature above zero, part of any shift is sampling noise: compare with
the share of drafts that change when the same pack is drafted twice.

Swap rules (`swap_text`):

- Names are matched case-sensitively on whole words: the full name, then the first name and
  the last name alone; "Emily's" becomes "Jamal's", and the bare possessive of a name ending
  in s ("James'") becomes the replacement's ("Jamal's"). Other people's names, e-mail
  addresses and lower-case words ("will", "grace") are left alone. A colleague who shares
  the person's first name is renamed too: evidence does not say which one is meant.
- Pronouns are swapped by series and grammatical role (subject, object, possessive
  determiner, possessive pronoun, reflexive), keeping capitalisation. Two forms are
  ambiguous: "her" is an object ("asked her", -> "him") or a determiner ("her design", ->
  "his"), and "his" is a determiner ("his design", -> "her") or a pronoun ("the idea was
  his", -> "hers"). The rule: followed by a word that is not a function word (article,
  preposition, conjunction, particle, time adverb), it is a determiner; followed by a
  function word, punctuation or nothing, it is the other. "gave her feedback" thus becomes
  "gave his feedback" - rare in review evidence, and still readable.
- The probe swaps both ways (he <-> she), as counterfactual data augmentation does: every
  other person in the evidence changes too, so who did what to whom stays clear. "they" is
  never a source in the probe (singular and plural cannot be told apart); `swap_text`
  accepts it on request, and when the number changes it also fixes the auxiliary that
  follows (is/are, was/were, has/have, does/do and their negations, she's/they're); other
  verbs keep their form ("they leads").
"""

import asyncio
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Literal

from domain.periods import Period
from retrieval.evidence import EvidenceItem, EvidencePack
from service.bias.language import MEASURES, profile_draft
from service.db.models import Person
from service.drafting.citations import check_citations
from service.drafting.llm import DraftingFailed
from service.drafting.prompting import context_for, render
from service.drafting.run import Drafting, prepare
from service.drafting.structure import DraftBody

Pronoun = Literal["he", "she", "they"]
PronounMap = Mapping[Pronoun, Pronoun]
NAMES_FILE = Path(__file__).parent / "data" / "counterfactual_names.json"
SKIPPED_OFFLINE = (
    "skipped: the offline drafter copies the evidence and is deterministic in the name, "
    "so swapping names and pronouns cannot reveal a bias of its own"
)
BOTH_WAYS: PronounMap = {"he": "she", "she": "he"}

_ROLES = ("subject", "object", "determiner", "pronoun", "reflexive")
_FORMS: dict[Pronoun, tuple[str, ...]] = {
    "he": ("he", "him", "his", "his", "himself"),
    "she": ("she", "her", "her", "hers", "herself"),
    "they": ("they", "them", "their", "theirs", "themselves"),
}
_CONTRACTED = {"'s": "'re", "'re": "'s", "'ve": "'s", "'d": "'d", "'ll": "'ll"}
_HAS = frozenset({"been", "got", "gotten", "had"})  # "she's been" is "she has been"
# singular auxiliary <-> plural, fixed when a subject pronoun changes number
_AGREEMENT = {
    "is": "are",
    "was": "were",
    "has": "have",
    "does": "do",
    "isn't": "aren't",
    "wasn't": "weren't",
    "hasn't": "haven't",
    "doesn't": "don't",
}
_AGREEMENT_BACK = {plural: singular for singular, plural in _AGREEMENT.items()}
# after "her" / "his" these mean it is not a possessive determiner (articles, prepositions,
# conjunctions, particles, time adverbs, auxiliaries)
_FUNCTION_TEXT = """
a an the this that these those to for with and or but nor so yet on in at about of from by
into onto over under up down out off back through again after before as if when while
until than how what why where who whom which whether because since once twice too also
yesterday today tomorrow now then here there directly personally is was are were will
would can could should
"""
_FUNCTION_WORDS = frozenset(_FUNCTION_TEXT.split())
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?")
_CLITIC = re.compile(r"(?P<base>[A-Za-z]+)(?P<clitic>['\u2019](?:s|re|ve|d|ll))?", re.IGNORECASE)


# --- swapping text -------------------------------------------------------------------------


def _role(word: str, following: str | None, series: Pronoun) -> str | None:
    """The role of `word` in a pronoun series, or None when it is not of that series."""
    lower = word.lower()
    forms = _FORMS[series]
    if series == "they" and lower == "themself":
        return "reflexive"
    if lower not in forms:
        return None
    if forms.count(lower) == 1:
        return _ROLES[forms.index(lower)]
    # "her" (object or determiner) or "his" (determiner or pronoun): see the module notes
    before_noun = following is not None and following.lower() not in _FUNCTION_WORDS
    if lower == forms[1]:
        return "determiner" if before_noun else "object"
    return "determiner" if before_noun else "pronoun"


def _cased(template: str, word: str) -> str:
    """`word` written in the case of `template` (lower, Capitalised or UPPER)."""
    if len(template) > 1 and template.isupper():
        return word.upper()
    return word[:1].upper() + word[1:] if template[:1].isupper() else word


def _clitic(clitic: str, following: str | None) -> str:
    """A contraction's ending after a change of number: she's <-> they're (they've when
    the 's is "has", as in "she's been")."""
    mark, suffix = clitic[0], clitic[1:].lower()
    if suffix == "s" and following is not None and following.lower() in _HAS:
        return f"{mark}ve"
    return mark + _CONTRACTED[f"'{suffix}"][1:]


def swap_pronouns(text: str, pronouns: PronounMap) -> str:
    """Third-person pronouns of each source series in `pronouns` rewritten in the target
    series, role for role; the auxiliary after a subject is fixed when the number changes."""
    words = list(_WORD.finditer(text))
    new: dict[int, str] = {}
    for i, match in enumerate(words):
        parts = _CLITIC.fullmatch(match.group())
        if parts is None:
            continue
        base, clitic = parts.group("base"), parts.group("clitic") or ""
        after = words[i + 1] if i + 1 < len(words) else None
        adjacent = after is not None and not text[match.end() : after.start()].strip()
        following = after.group() if after is not None and adjacent else None
        for source, target in pronouns.items():
            role = _role(base, None if clitic else following, source)
            if role is None or (clitic and role != "subject"):
                continue
            if source == target:
                break
            replaced = _cased(base, _FORMS[target][_ROLES.index(role)])
            if role == "subject" and (source == "they") != (target == "they"):
                if clitic:
                    clitic = _clitic(clitic, following)
                elif following is not None and after is not None:
                    table = _AGREEMENT if target == "they" else _AGREEMENT_BACK
                    agreed = table.get(following.lower())
                    if agreed:
                        new[i + 1] = _cased(following, agreed)
            new[i] = replaced + clitic
            break
    return _rebuilt(text, words, new)


def _rebuilt(text: str, words: list[re.Match[str]], new: Mapping[int, str]) -> str:
    pieces: list[str] = []
    last = 0
    for i in sorted(new):
        pieces += [text[last : words[i].start()], new[i]]
        last = words[i].end()
    return "".join([*pieces, text[last:]])


def _name_pattern(names: Sequence[str]) -> re.Pattern[str]:
    """Whole-word, case-sensitive alternation of names, longest first, with an optional
    possessive ending (straight or curly apostrophe, with or without s)."""
    alternatives = "|".join(
        r"\s+".join(re.escape(part) for part in name.split())
        for name in sorted(names, key=len, reverse=True)
    )
    return re.compile(rf"(?<![\w'\u2019])(?P<name>{alternatives})(?P<poss>['\u2019]s?)?(?!\w)")


def swap_names(text: str, renames: Mapping[str, str]) -> str:
    """Each name (a key) replaced by its value in one pass, possessives kept: a bare
    apostrophe after a name ending in s is a possessive, and becomes 's after a
    replacement that does not end in s."""
    if not renames:
        return text
    by_words = {" ".join(name.split()): value for name, value in renames.items()}

    def one(match: re.Match[str]) -> str:
        original = " ".join(match.group("name").split())
        replacement = by_words[original]
        possessive = match.group("poss") or ""
        if possessive in ("'", "\u2019") and original.endswith("s"):
            possessive = possessive if replacement.endswith("s") else f"{possessive}s"
        return replacement + possessive

    return _name_pattern(list(by_words)).sub(one, text)


def renames_for(original_first: str, original_last: str | None, replacement: str) -> dict[str, str]:
    """Full name -> full name, first -> first, last -> last (or the whole replacement when
    it is a single name)."""
    parts = replacement.split()
    if not parts:
        raise ValueError("the replacement name is empty")
    first, last = parts[0], parts[-1]
    renames = {original_first: first}
    if original_last:
        renames[f"{original_first} {original_last}"] = replacement
        renames[original_last] = last
    return renames


def swap_text(
    text: str,
    original_first: str,
    original_last: str | None,
    replacement: str,
    pronouns: PronounMap,
) -> str:
    """The text with the person renamed and pronouns swapped (rules in the module notes)."""
    renamed = swap_names(text, renames_for(original_first, original_last, replacement))
    return swap_pronouns(renamed, pronouns)


def swap_pack(
    pack: EvidencePack,
    original_first: str,
    original_last: str | None,
    replacement: str,
    pronouns: PronounMap,
) -> EvidencePack:
    """A copy of the pack with each item's text and title swapped; ids, scores, dates and
    token counts unchanged (the budget was spent on the original), so the two drafts cite
    the same evidence and differ only in the name and the pronouns."""

    def swapped(text: str) -> str:
        return swap_text(text, original_first, original_last, replacement, pronouns)

    def item(it: EvidenceItem) -> EvidenceItem:
        title = swapped(it.title) if it.title is not None else None
        return replace(it, text=swapped(it.text), title=title)

    return replace(pack, items=[item(it) for it in pack.items])


# --- choosing the swap ---------------------------------------------------------------------


@dataclass(frozen=True)
class CounterfactualName:
    name: str
    pronoun: Pronoun


@cache
def name_pairs(
    path: Path = NAMES_FILE,
) -> tuple[tuple[CounterfactualName, CounterfactualName], ...]:
    """The pairs of the names file, each pair two names read as different genders and
    ethnic origins."""
    data = json.loads(path.read_text())
    pairs: list[tuple[CounterfactualName, CounterfactualName]] = []
    for a, b in data["_pairs"]:
        pairs.append(
            (
                CounterfactualName(a["name"], a["pronoun"]),
                CounterfactualName(b["name"], b["pronoun"]),
            )
        )
    return tuple(pairs)


def evidence_pronoun(pack: EvidencePack) -> Pronoun | None:
    """The he/she series used most in the pack, presumably the person's; None when
    neither appears or both equally."""
    counts = {"he": 0, "she": 0}
    for it in pack.items:
        for word in _WORD.findall(f"{it.title or ''} {it.text}"):
            for series in ("he", "she"):
                counts[series] += word.lower() in _FORMS[series]
    if counts["he"] == counts["she"]:
        return None
    return "he" if counts["he"] > counts["she"] else "she"


@dataclass(frozen=True)
class Swap:
    """What one person's counterfactual changed."""

    original: str  # the person's name
    replacement: str
    pronoun: Pronoun | None  # the he/she series of the evidence, None when there was none
    replacement_pronoun: Pronoun

    @property
    def label(self) -> str:
        """E.g. "Emily Walsh -> Jamal Washington; she->he"."""
        if self.pronoun is None:
            pronouns = "no he/she in the evidence"
        elif self.pronoun == self.replacement_pronoun:
            pronouns = f"{self.pronoun} kept"
        else:
            pronouns = f"{self.pronoun}->{self.replacement_pronoun}"
        return f"{self.original} -> {self.replacement}; {pronouns}"

    @property
    def pronouns(self) -> PronounMap:
        """Both ways (he <-> she) when the reading changes, nothing otherwise."""
        if self.pronoun is not None and self.pronoun == self.replacement_pronoun:
            return {}
        return BOTH_WAYS


def choose_swap(person: Person, pack: EvidencePack, seed: int) -> Swap:
    """The partner of the person's first name when it is one of the names file; otherwise
    a name, seeded per person, read with the other pronoun than the evidence uses and
    sharing no part of the person's name."""
    pairs = name_pairs()
    pronoun = evidence_pronoun(pack)
    first = person.name.split()[0] if person.name.split() else person.name
    for pair in pairs:
        for mine, partner in (pair, pair[::-1]):
            if mine.name.split()[0] == first:
                return Swap(person.name, partner.name, pronoun, partner.pronoun)
    own = set(person.name.split())
    candidates = [
        n for pair in pairs for n in pair if n.pronoun != pronoun and not own & set(n.name.split())
    ]
    everyone = [n for pair in pairs for n in pair]
    pick = random.Random(f"{seed}:{person.id}").choice(candidates or everyone)
    return Swap(person.name, pick.name, pronoun, pick.pronoun)


# --- the probe -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonProbe:
    person: str  # email
    swap: Swap
    changed: bool  # the draft differs in more than the name and pronouns
    original: dict[str, float]  # profile measures of the draft from the real evidence
    counterfactual: dict[str, float]  # ... and from the swapped evidence

    def shift(self, measure: str) -> float:
        """Counterfactual minus original."""
        return self.counterfactual[measure] - self.original[measure]


@dataclass(frozen=True)
class MeasureShift:
    measure: str
    mean_abs: float
    mean_signed: float  # counterfactual minus original, averaged
    largest: float  # the signed shift of largest size, 0 when none moved
    largest_swap: str | None  # its swap's label


@dataclass(frozen=True)
class ProbeResult:
    kind: str
    period: str  # the period's name
    model: str
    temperature: float | None
    seed: int
    sample: int  # asked for
    skipped: str | None = None  # why nothing was probed
    people: tuple[PersonProbe, ...] = ()
    measures: tuple[MeasureShift, ...] = ()
    changed_share: float = 0.0
    no_evidence: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # person, reason

    def moved(self, tolerance: float = 1e-9) -> list[MeasureShift]:
        """The measures that moved for anyone, largest mean shift first."""
        return sorted(
            (m for m in self.measures if m.mean_abs > tolerance), key=lambda m: -m.mean_abs
        )


def _checked(body: DraftBody, pack: EvidencePack) -> DraftBody:
    """The body as the citation check would store it, so profiles match stored drafts."""
    return check_citations(body, [it.id for it in pack.items])[0]


def _changed(original: DraftBody, counterfactual: DraftBody, swap: Swap) -> bool:
    """Whether the drafts differ once the counterfactual's name and pronouns are put back."""
    first, *rest = swap.replacement.split()
    reverse = {target: source for source, target in swap.pronouns.items()}
    restored = swap_text(
        counterfactual.as_text(), first, rest[-1] if rest else None, swap.original, reverse
    )
    return restored != original.as_text()


async def _probe_one(
    run: Drafting, person: Person, kind: str, period: Period, seed: int
) -> PersonProbe | str:
    """One person's probe, or the message saying why there was nothing to draft."""
    prepared = await asyncio.to_thread(prepare, run, person, kind, period)
    if not prepared.pack.items:
        return prepared.pack.message or "no evidence"
    swap = choose_swap(person, prepared.pack, seed)
    names = person.name.split()
    last = names[-1] if len(names) > 1 else None
    pack = swap_pack(
        prepared.pack, prepared.subject.first_name, last, swap.replacement, swap.pronouns
    )
    subject = replace(
        prepared.subject, name=swap.replacement, first_name=swap.replacement.split()[0]
    )
    prompt = render(context_for(pack, subject, period.name))
    original = _checked(
        await run.drafter.write(prepared.pack, prepared.subject, prepared.prompt), prepared.pack
    )
    counterfactual = _checked(await run.drafter.write(pack, subject, prompt), pack)
    return PersonProbe(
        person.email,
        swap,
        _changed(original, counterfactual, swap),
        profile_draft(original).measures,
        profile_draft(counterfactual).measures,
    )


def _measure_shift(measure: str, people: Sequence[PersonProbe]) -> MeasureShift:
    shifts = [(p.shift(measure), p.swap.label) for p in people]
    if not shifts:
        return MeasureShift(measure, 0.0, 0.0, 0.0, None)
    largest, label = max(shifts, key=lambda s: abs(s[0]))
    return MeasureShift(
        measure,
        sum(abs(s) for s, _ in shifts) / len(shifts),
        sum(s for s, _ in shifts) / len(shifts),
        largest,
        label if largest else None,
    )


def sample_people(people: Sequence[Person], sample: int, seed: int) -> list[Person]:
    """A seeded sample, the same for the same people whatever order they came in."""
    ordered = sorted(people, key=lambda p: p.id)
    return sorted(
        random.Random(seed).sample(ordered, min(sample, len(ordered))), key=lambda p: p.id
    )


async def probe(
    run: Drafting,
    people: Sequence[Person],
    kind: str,
    period: Period,
    *,
    sample: int,
    seed: int,
) -> ProbeResult:
    """Draft twice for a seeded sample - from the real evidence and from the swapped one -
    and report how far each language measure moved. Nothing is stored."""
    llm = run.drafter.origin == "llm"
    base = ProbeResult(
        kind,
        period.name,
        run.drafter.model,
        run.settings.llm_temperature if llm else None,
        seed,
        sample,
    )
    if not llm:
        return replace(base, skipped=SKIPPED_OFFLINE)
    gate = asyncio.Semaphore(max(1, run.settings.llm_concurrency // 2))

    async def one(person: Person) -> PersonProbe | str | DraftingFailed:
        async with gate:
            try:
                return await _probe_one(run, person, kind, period, seed)
            except DraftingFailed as exc:
                return exc

    chosen = sample_people(people, sample, seed)
    outcomes = await asyncio.gather(*(one(p) for p in chosen))
    probes = tuple(o for o in outcomes if isinstance(o, PersonProbe))
    return replace(
        base,
        people=probes,
        measures=tuple(_measure_shift(m, probes) for m in MEASURES),
        changed_share=sum(p.changed for p in probes) / len(probes) if probes else 0.0,
        no_evidence=tuple(
            p.email for p, o in zip(chosen, outcomes, strict=True) if isinstance(o, str)
        ),
        failed=tuple(
            (p.email, str(o))
            for p, o in zip(chosen, outcomes, strict=True)
            if isinstance(o, DraftingFailed)
        ),
    )
