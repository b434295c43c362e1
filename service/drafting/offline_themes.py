"""Themes of an offline draft: which evidence sentences fill each section, and how strongly.

Each builder reads the pack's items of the record kinds that may speak to its theme (work
records for accomplishments, feedback for strengths and growth areas, goals for goals, 1:1
notes for their themes), picks the one or two most informative sentences of each item, and
offers them as candidate bullets with a score. Scores favour measured outcomes (a review
stands on results) and sentences we can restate in the draft's voice over quoted ones;
the pack's own order (retrieval's relevance) breaks ties, so a draft is deterministic.
"""

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

from retrieval.evidence import EvidenceItem
from service.drafting.offline_text import (
    Sentence,
    cues,
    growth_mode,
    is_context,
    label_in,
    matches,
    outcomes,
    usable,
)
from service.drafting.offline_voice import (
    OWN_KINDS,
    Outcome,
    Voice,
    grammar,
    has_gendered_pronoun,
    restate,
    shift_first_person,
    starts_with_past_verb,
    words,
)
from service.drafting.subject import DraftSubject

KINDS_FILE = Path(__file__).parent / "data" / "offline_kinds.json"


@dataclass(frozen=True)
class Candidate:
    """A possible bullet: its text, the item it rests on, and how strongly to pick it."""

    text: str
    item_id: str
    score: float
    order: int


@dataclass(frozen=True)
class Context:
    """What every builder needs: the items with their sentences, the person and the voice."""

    items: tuple[EvidenceItem, ...]
    sentences: dict[str, list[Sentence]]
    subject: DraftSubject
    voice: Voice

    def of_kinds(self, kinds: Iterable[str]) -> list[tuple[int, EvidenceItem]]:
        wanted = set(kinds)
        return [(n, item) for n, item in enumerate(self.items) if item.kind in wanted]


@cache
def phrasing() -> dict[str, dict[str, dict[str, str]]]:
    data: dict[str, dict[str, dict[str, str]]] = json.loads(KINDS_FILE.read_text())
    return data


def _record_kinds(theme: str) -> list[str]:
    kinds: list[str] = json.loads(KINDS_FILE.read_text())["themes_by_record_kind"][theme]
    return kinds


def frame(ctx: Context, name: str, text: str) -> str:
    template = phrasing()["frames"][name][ctx.voice.value]
    return template.format(first=ctx.subject.first_name, text=text)


def render(ctx: Context, item: EvidenceItem, group: list[Sentence]) -> tuple[str, bool] | None:
    """The sentences of one item as one bullet in the draft's voice, and whether it was
    restated (True) or had to be quoted (False); None when it cannot be used at all."""
    results = [
        restate(
            s.text,
            own=item.kind in OWN_KINDS,
            voice=ctx.voice,
            first_name=ctx.subject.first_name,
            writer_is_author=ctx.voice is Voice.SECOND and item.kind == "one_on_one",
        )
        for s in group
    ]
    if results[0].outcome is Outcome.DROP:
        return None
    kept = [r for r in results if r.outcome is not Outcome.DROP]
    if len(kept) < len(results):
        group, results = group[:1], results[:1]
    if all(r.outcome is Outcome.RESTATED for r in results):
        return " ".join(r.text for r in results), True
    source = phrasing()["attribution"][item.kind][ctx.voice.value]
    who = source.format(first=ctx.subject.first_name)
    return f"{who}: \u201c{' '.join(s.text for s in group)}\u201d", False


def _candidate(
    ctx: Context, n: int, item: EvidenceItem, group: list[Sentence], score: float
) -> Candidate | None:
    rendered = render(ctx, item, group)
    if rendered is None:
        return None
    text, restated = rendered
    return Candidate(text, item.id, score + (1.0 if restated else 0.0), n)


def _starts_with_action(sentence: Sentence) -> bool:
    return starts_with_past_verb(sentence.text) or sentence.text.startswith("I ")


def accomplishments(ctx: Context) -> list[Candidate]:
    """An action and its measured result, per work record or thanks."""
    out = []
    for n, item in ctx.of_kinds(_record_kinds("accomplishments")):
        sentences = [
            s
            for s, growth in zip(ctx.sentences[item.id], _modes(item, ctx), strict=True)
            if usable(s) and not is_context(s) and not growth
        ]
        if not sentences:
            continue
        group = _action_and_result(sentences)
        score = 3.0 * min(sum(outcomes(s) for s in group), 3) + 0.5 * len(group)
        if item.kind == "recognition":
            score += 0.5
        if (candidate := _candidate(ctx, n, item, group, score)) is not None:
            out.append(candidate)
    return out


def _action_and_result(sentences: list[Sentence]) -> list[Sentence]:
    """The best action sentence, then the best sentence stating a measured outcome."""
    actions = [s for s in sentences if _starts_with_action(s)] or sentences
    lead = max(actions, key=lambda s: (outcomes(s), -s.index))
    results = [s for s in sentences if s is not lead and outcomes(s) > 0]
    if results and outcomes(lead) == 0:
        result = max(results, key=lambda s: (outcomes(s), -s.index))
        return sorted([lead, result], key=lambda s: s.index)
    return [lead]


def _modes(item: EvidenceItem, ctx: Context) -> list[bool]:
    """Growth (True) or not, per sentence; only feedback and retro headings mark growth."""
    sentences = ctx.sentences[item.id]
    if item.kind == "feedback":
        return growth_mode(sentences)
    return [label_in(s, cues().growth_labels) for s in sentences]


def strengths(ctx: Context) -> list[Candidate]:
    """The most telling positive sentence of each piece of feedback or thanks."""
    out = []
    for n, item in ctx.of_kinds(_record_kinds("strengths")):
        options = [
            s
            for s, growth in zip(ctx.sentences[item.id], _modes(item, ctx), strict=True)
            if usable(s) and not growth and not is_context(s)
        ]
        best = _best_rendered(ctx, n, item, options, lambda s: 2.0 + 1.5 * outcomes(s))
        if best is not None:
            out.append(best)
    return out


def _best_rendered(
    ctx: Context,
    n: int,
    item: EvidenceItem,
    options: list[Sentence],
    score: Callable[[Sentence], float],
) -> Candidate | None:
    candidates = [c for s in options if (c := _candidate(ctx, n, item, [s], score(s)))]
    return max(candidates, key=lambda c: c.score, default=None)


def growth(ctx: Context) -> list[Candidate]:
    """Growth areas: the observation and the suggestion that follows it, per item."""
    theme = "growth" if ctx.voice is Voice.FIRST else "growth_not_self"
    weight = {"feedback": 3.0, "work_record": 1.5, "self_note": 1.0}
    out = []
    for n, item in ctx.of_kinds(_record_kinds(theme)):
        sentences = ctx.sentences[item.id]
        modes = _modes(item, ctx)
        if item.kind == "self_note":
            modes = [matches(cues().growth, s.raw) for s in sentences]
        options = [s for s, m in zip(sentences, modes, strict=True) if m and usable(s)]
        if not options:
            continue
        group = _with_follower(options)
        candidate = _candidate(ctx, n, item, group, weight[item.kind])
        if candidate is None and len(group) > 1:
            candidate = _candidate(ctx, n, item, group[1:], weight[item.kind])
        if candidate is not None:
            out.append(candidate)
    return out


def _with_follower(options: list[Sentence]) -> list[Sentence]:
    """The first growth sentence and, when it continues in the same paragraph, the next."""
    first = options[0]
    follower = next(
        (s for s in options[1:] if s.index == first.index + 1 and s.paragraph == first.paragraph),
        None,
    )
    return [first, follower] if follower else [first]


def goals(ctx: Context) -> list[Candidate]:
    """What the person set out to do, and where it stands."""
    out = []
    for n, item in ctx.of_kinds(_record_kinds("goals")):
        sentences = [s for s in ctx.sentences[item.id] if usable(s)]
        objective = _objective(ctx, sentences)
        status = [
            s
            for s in sentences
            if label_in(s, cues().status_labels) or (outcomes(s) and s.label is None)
        ][:1]
        parts = [objective] if objective else []
        rendered = render(ctx, item, status) if status else None
        if rendered is not None and rendered[1]:
            parts.append(rendered[0])
        if parts:
            score = 2.0 * bool(objective) + 1.5 * len(status) + sum(outcomes(s) for s in status)
            out.append(Candidate(" ".join(parts), item.id, score, n))
    return out


def _objective(ctx: Context, sentences: list[Sentence]) -> str | None:
    """ "Objective: Own the Cobalt work" -> "You set out to own the Cobalt work"."""
    found = next((s for s in sentences if label_in(s, cues().objective_labels)), None)
    if found is None:
        return None
    text = found.text[0].lower() + found.text[1:]
    shifted = (
        text
        if ctx.voice is Voice.FIRST
        else shift_first_person(text, ctx.voice, ctx.subject.first_name)
    )
    if shifted is None or (ctx.voice is Voice.THIRD and shifted != text):
        return None  # "make my updates ..." has no safe third-person form without a pronoun
    return frame(ctx, "objective", shifted)


def one_on_ones(ctx: Context) -> list[Candidate]:
    """Career and feedback themes from 1:1 notes, and the person's next steps."""
    out = []
    c = cues()
    for n, item in ctx.of_kinds(_record_kinds("one_on_ones")):
        sentences = [s for s in ctx.sentences[item.id] if usable(s)]
        career = [s for s in sentences if label_in(s, c.career_labels)]
        best = _best_rendered(
            ctx, n, item, career, lambda s: 2.0 + outcomes(s) + 1.5 * _mentions(ctx, s)
        )
        if best is None:
            best = _next_step(
                ctx, n, item, [s for s in sentences if label_in(s, c.follow_up_labels)]
            )
        if best is not None:
            out.append(best)
    return out


def _mentions(ctx: Context, sentence: Sentence) -> bool:
    return re.search(rf"\b{re.escape(ctx.subject.first_name)}\b", sentence.raw) is not None


def _next_step(
    ctx: Context, n: int, item: EvidenceItem, sentences: list[Sentence]
) -> Candidate | None:
    """ "Isabel to split the plan into smaller pieces" -> "A next step for you: split ..."."""
    pattern = re.compile(rf"^{re.escape(ctx.subject.first_name)} to (\w.+)$")
    for sentence in sentences:
        for part in sentence.text.rstrip(".").split(";"):
            match = pattern.match(part.strip())
            safe = match and not (set(words(match[1])) & grammar().author_words)
            if match and safe and not has_gendered_pronoun(match[1]):
                return Candidate(frame(ctx, "next_step", match[1] + "."), item.id, 1.0, n)
    return None


def scope(ctx: Context) -> list[Candidate]:
    """What the person owned: goal objectives and work that names its reach."""
    out = []
    for n, item in ctx.of_kinds(_record_kinds("scope")):
        sentences = [s for s in ctx.sentences[item.id] if usable(s) and not is_context(s)]
        if item.kind == "goal":
            objective = _objective(ctx, sentences)
            if objective:
                out.append(Candidate(objective, item.id, 2.0, n))
            continue
        options = [s for s in sentences if matches(cues().scope, s.text)]
        best = _best_rendered(ctx, n, item, options, lambda s: 1.0 + outcomes(s))
        if best is not None:
            out.append(best)
    return out


def influence(ctx: Context) -> list[Candidate]:
    """Work beyond the person's own tasks: coaching, sharing, others adopting it."""
    out = []
    for n, item in ctx.of_kinds(_record_kinds("influence")):
        options = [
            s
            for s, growth in zip(ctx.sentences[item.id], _modes(item, ctx), strict=True)
            if usable(s) and not growth and not is_context(s) and matches(cues().influence, s.text)
        ]
        base = 1.0 if item.kind == "work_record" else 2.0
        best = _best_rendered(ctx, n, item, options, partial(_plus_outcomes, base))
        if best is not None:
            out.append(best)
    return out


def _plus_outcomes(base: float, sentence: Sentence) -> float:
    return base + outcomes(sentence)


BUILDERS: dict[str, Callable[[Context], list[Candidate]]] = {
    "accomplishments": accomplishments,
    "strengths": strengths,
    "growth": growth,
    "goals": goals,
    "one_on_ones": one_on_ones,
    "scope": scope,
    "influence": influence,
}
