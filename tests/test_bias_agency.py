"""The broad agency measure (service/bias/agency.py) on small hand-written examples:
inflections count, negation discounts, homographs and names do not count, the data file
names its sources, and the language profile's agentic/communal measures come from it.

No database: the measure reads text alone.
"""

import json
import re
from pathlib import Path

import pytest

from evals.eval_agency import load_cases
from evals.labelled import load_flag_cases, load_sentence_splits
from service.bias.agency import (
    LEXICON_FILE,
    Lexicon,
    LexiconError,
    Term,
    lemma_candidates,
    lexicon,
    load_lexicon,
    pole_counts,
    score_text,
    surface_forms,
)
from service.bias.language import profile_text, split_sentences
from service.bias.wordlists import Tokens, tokenize

IRREGULAR = {
    form.lower(): lemma.lower()
    for form, lemma in json.loads(LEXICON_FILE.read_text(encoding="utf-8"))["irregular"].items()
}


def poles(text: str, names: frozenset[str] = frozenset()) -> tuple[int, int]:
    score = score_text(text, names)
    return score.agentic, score.communal


@pytest.mark.parametrize(
    "text",
    [
        "She leads the platform team.",
        "She led the platform team.",
        "She is leading the platform team.",
        "Her leadership kept the project on track.",
        "He decisively dropped the scope.",
        "They capably handled the audit.",
        "She rebuilt the billing service.",  # re- prefix: build
    ],
)
def test_inflections_and_derived_forms_of_an_agentic_term_count(text: str) -> None:
    assert poles(text) == (1, 0)


@pytest.mark.parametrize(
    "text",
    [
        "He helps the interns settle in.",
        "He helped the interns settle in.",
        "She cares about her students.",
        "She accommodates colleagues' schedules.",  # verb of the participle "accommodating"
        "They always encouraged the interns.",  # verb of "encouraging"
        "He looked after the night shift.",  # phrase on lemmas: look after
    ],
)
def test_inflections_of_a_communal_term_count(text: str) -> None:
    assert poles(text) == (0, 1)


@pytest.mark.parametrize(
    "text",
    [
        "She is not a natural leader.",
        "He lacks confidence in reviews.",
        "They never took ownership of the roadmap.",
        "He isn't decisive.",
    ],
)
def test_a_negated_agentic_term_counts_for_neither_pole(text: str) -> None:
    score = score_text(text)
    assert (score.agentic, score.communal) == (0, 0)
    assert score.negated == 1


def test_negation_stops_at_the_clause_and_two_cues_cancel() -> None:
    assert poles("Not once did the plan slip, and she led it.") == (1, 0)  # comma, "and"
    assert poles("She never fails to help.") == (0, 1)  # double negation
    assert poles("Not only a leader but also kind.") == (1, 1)  # "not only" denies nothing
    assert poles("A no-nonsense leader.")[0] == 2  # "no" of a term is no cue


def test_homographs_and_compounds_do_not_count() -> None:
    assert poles("The warm standby took over.") == (0, 0)
    assert poles("She closed ten support tickets.") == (0, 0)
    assert poles("He owns his own calendar.") == (1, 0)  # "owns" yes, "own" no
    assert poles("She sees twenty patients a day.") == (0, 0)  # noun, not "patient"
    assert poles("Her wound-care notes are complete.") == (0, 0)  # compound noun
    assert poles("It was kind of late.") == (0, 0)


def test_a_name_is_not_a_descriptor() -> None:
    assert poles("Patience shipped the release.", frozenset({"patience"})) == (1, 0)
    assert poles("She paired with Sunny on the release.") == (0, 1)  # "paired with" only


def test_the_score_is_agentic_minus_communal_per_100_words() -> None:
    score = score_text("She led the team and helped everyone and was kind.")
    assert (score.words, score.agentic, score.communal) == (10, 1, 2)
    assert score.agentic_minus_communal == pytest.approx(100 * (1 - 2) / 10)


def test_the_profile_measures_agency_with_the_broad_lexicon() -> None:
    """Before issue 14 these texts scored 0: none of their words was on the short lists."""
    agentic = profile_text("She shipped the migration and mastered the new stack.").measures
    communal = profile_text("He mentors the juniors and listens to every concern.").measures
    assert agentic["agentic_rate"] > 0 and agentic["agentic_minus_communal"] > 0
    assert communal["communal_rate"] > 0 and communal["agentic_minus_communal"] < 0
    negated = profile_text("She is not a natural leader.").measures
    assert negated["agentic_rate"] == 0


def test_lemma_candidates_undo_suffixes() -> None:
    assert "care" in lemma_candidates("cared", {})
    assert "stop" in lemma_candidates("stopped", {})
    assert "lead" in lemma_candidates("led", {"led": "lead"})
    assert "strategic" in lemma_candidates("strategically", {})


def test_the_data_file_names_its_sources_and_scoring() -> None:
    data = json.loads(LEXICON_FILE.read_text(encoding="utf-8"))
    for source in ("Abele", "Pietraszkiewicz", "Madera", "Gaucher"):
        assert source in data["_source"]
    assert "per 100 words" in data["_scoring"]
    assert set(data["agentic"]) == {
        "capability",
        "achievement",
        "leadership",
        "assertiveness",
        "independence",
    }
    assert set(data["communal"]) == {
        "warmth",
        "helping",
        "care",
        "cooperation",
        "support",
        "attending",
    }
    assert load_lexicon().source == data["_source"]


def test_a_malformed_lexicon_is_refused_naming_the_key(tmp_path: Path) -> None:
    data = json.loads(LEXICON_FILE.read_text(encoding="utf-8"))
    del data["_source"]
    path = tmp_path / "lexicon.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LexiconError, match="_source") as caught:
        load_lexicon(path)
    assert caught.value.field == "_source"


def test_a_term_in_two_categories_is_refused(tmp_path: Path) -> None:
    data = json.loads(LEXICON_FILE.read_text(encoding="utf-8"))
    data["communal"]["warmth"]["terms"].append("leader")
    path = tmp_path / "lexicon.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LexiconError, match="'leader' is in leadership and warmth"):
        load_lexicon(path)


# --- issue 14, second round: classes of error found on the labelled set ---------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mei is the strongest database engineer we have.", (1, 0)),  # superlative: strong
        ("He is the bravest engineer on the team.", (1, 0)),  # dropped e restored
        ("She taught herself Rust over a weekend.", (1, 0)),  # reflexive: teach oneself
        ("He rebuilt the parser by himself.", (2, 0)),  # build, by oneself
        ("They want to prove themselves this year.", (1, 0)),
    ],
)
def test_superlatives_and_reflexive_pronouns_are_inflections(
    text: str, expected: tuple[int, int]
) -> None:
    assert poles(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("He does not hesitate when the numbers are in.", (1, 0)),
        ("She works with little supervision.", (1, 0)),  # "little" denies
        ("He rarely second-guesses his calls.", (1, 0)),
        ("She never holds a grudge.", (0, 1)),
        ("He takes feedback without complaint.", (0, 1)),
        ("Never too busy for a colleague.", (0, 1)),
    ],
)
def test_a_denied_low_end_counts_for_the_high_end(text: str, expected: tuple[int, int]) -> None:
    assert poles(text) == expected


def test_an_affirmed_low_end_counts_for_neither_pole() -> None:
    score = score_text("He hesitates and needs a little supervision.")  # "a little" denies not
    assert (score.agentic, score.communal, score.negated) == (0, 0, 2)
    assert poles("She shows little confidence.") == (0, 0)  # "little" denies a term as well


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Aisha cheers on her colleagues' successes.", (0, 1)),  # their successes
        ("He helps the juniors succeed.", (0, 1)),
        ("Isabel builds good working relationships.", (0, 1)),  # the object is communal
        ("Leila creates a friendly atmosphere.", (0, 1)),
        ("They go along with whatever the team decides.", (0, 1)),
        ("She helped the interns and shipped the release.", (1, 1)),  # "and" ends the scope
        ("She led the team and helped everyone.", (1, 1)),  # no communal act before "led"
    ],
)
def test_in_a_phrase_of_both_poles_only_the_persons_side_counts(
    text: str, expected: tuple[int, int]
) -> None:
    assert poles(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She is accommodating when plans change at short notice.", (0, 1)),  # not "notice"
        ("He is tactful when he has to deliver bad news.", (0, 1)),  # not "deliver"
        ("Jordan volunteers for the hardest accounts.", (0, 0)),  # initiative or help
        ("Mateo designed the landing page.", (1, 0)),  # "designed", not "land"
        ("She chairs the architecture review.", (1, 0)),  # every form of "chair"
    ],
)
def test_words_that_are_both_count_only_in_their_sense(
    text: str, expected: tuple[int, int]
) -> None:
    assert poles(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She set the technical direction for the payments stack.", (1, 0)),
        ("Kofi works on his own and sets his own goals.", (2, 0)),  # on * own; goal
        ("He took on the largest audit and made the case for it.", (2, 0)),
        ("Mateo is sociable and gets on well with everyone.", (0, 2)),
        ("Samuel takes new nurses under his wing.", (0, 1)),
        ("He pays attention to how patients are feeling.", (0, 1)),
        ("He pays attention to detail.", (0, 0)),  # conscientiousness, not attending
    ],
)
def test_constructs_the_first_lexicon_missed_count(text: str, expected: tuple[int, int]) -> None:
    assert poles(text) == expected


def test_a_scope_role_naming_no_term_is_refused(tmp_path: Path) -> None:
    data = json.loads(LEXICON_FILE.read_text(encoding="utf-8"))
    data["scope"]["acts_for_others"].append("cheerlead")
    path = tmp_path / "lexicon.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LexiconError, match="'cheerlead' is no communal term") as caught:
        load_lexicon(path)
    assert caught.value.field == "scope.acts_for_others"


# --- the indexed matcher against a plain reading of the rules ------------------------

_BREAK = re.compile(r"[,;:.!?()\u2013\u2014\"]")  # the clause breaks agency.py documents


def _reference_match(lex: Lexicon, text: str, tokens: Tokens, i: int, term: Term) -> int | None:
    keys, last = tokens.keys, i
    for word in term.words[1:]:
        last += 1
        if last >= len(keys) or _BREAK.search(text, tokens.end(last - 1), tokens.start(last)):
            return None
        if word != "*" and word not in lex.lemmas(keys[last]):
            return None
    if term.except_next and last + 1 < len(keys) and keys[last + 1] in term.except_next:
        return None
    if term.except_prev and i > 0 and keys[i - 1] in term.except_prev:
        return None
    return last


def _reference_ends(lex: Lexicon, text: str, tokens: Tokens, after: int, before: int) -> bool:
    if _BREAK.search(text, tokens.end(after), tokens.start(before)):
        return True
    return any(tokens.keys[j] in lex.negation.boundaries for j in range(after + 1, before))


def _reference_negated(
    lex: Lexicon, text: str, tokens: Tokens, first: int, covered: set[int]
) -> bool:
    rule, keys, cues = lex.negation, tokens.keys, 0
    for j in range(first - 1, max(-1, first - 1 - rule.window), -1):
        if _BREAK.search(text, tokens.end(j), tokens.start(j + 1)) or keys[j] in rule.boundaries:
            break
        if j in covered or keys[j] not in rule.cues or keys[j + 1] in rule.cancel_next:
            continue
        if j == 0 or keys[j - 1] not in rule.cancel_prev:
            cues += 1
    return cues % 2 == 1


def reference_counts(text: str, names: frozenset[str]) -> tuple[int, int]:
    """The rules read plainly, as the matcher did before it was indexed (issue 14): every
    word tries every term that starts with it, in `Lexicon.starting`'s order."""
    lex, tokens = lexicon(), tokenize(text)
    keys = tokens.keys
    matches: list[tuple[Term, int, int]] = []
    after = 0
    for i, key in enumerate(keys):
        if i < after:
            continue
        best: tuple[Term, int] | None = None
        for term in lex.starting(key):
            last = _reference_match(lex, text, tokens, i, term)
            if last is not None and (best is None or last > best[1]):
                best = (term, last)
        word = text[tokens.start(i) : tokens.end(i)]
        name = word[:1].isupper() and word[1:].islower() and (i > 0 or key in names)
        compound = i > 0 and text[tokens.end(i - 1) : tokens.start(i)] == "-"
        if best is not None and not name and not compound:
            matches.append((best[0], i, best[1]))
            after = best[1] + 1
    covered = {t for _, first, last in matches for t in range(first, last + 1)}
    yielded: set[int] = set()
    for a, (act, _, act_last) in enumerate(matches):
        if not (act.for_others or act.object_decides):
            continue
        for b in range(a + 1, len(matches)):
            other, other_first, _ = matches[b]
            if other_first - act_last > lex.scope_window or _reference_ends(
                lex, text, tokens, act_last, other_first
            ):
                break
            if other.pole != act.pole:
                yielded.add(b if act.for_others else a)
                if not act.for_others:
                    break
    counted = [
        term.pole
        for n, (term, first, _) in enumerate(matches)
        if _reference_negated(lex, text, tokens, first, covered) == term.denied and n not in yielded
    ]
    return counted.count("agentic"), counted.count("communal")


def labelled_texts() -> list[str]:
    """Every text of the labelled sets of evals/data the bias check is judged on, split
    into sentences as the profile splits them, plus edge cases of the matcher."""
    texts = [case.text for case in load_cases().cases]
    texts += [case.text for case in load_flag_cases().cases]
    texts += [case.text for case in load_sentence_splits().cases]
    texts += [
        "On her own, she set the technical direction; on his own initiative he led.",
        "Set the direction",  # a phrase at the very end
        "The customer-support lead, Patience, is kind - and warm-hearted.",
        "Sunny helped; Grace led. Leading, she never fails to help.",
        "He is not only a leader but rarely hesitates, and never without help.",
    ]
    return [sentence for text in texts for sentence in split_sentences(text)]


def test_the_indexed_matcher_counts_as_the_plain_reading_does() -> None:
    """Same counts on every labelled sentence (over 700) as trying every term at every
    word: the speed-up of issue 14 changed no score."""
    names = frozenset({"patience", "sunny", "grace"})
    sentences = labelled_texts()
    assert len(sentences) > 700
    different = [
        (text, pole_counts(text, tokenize(text), names), reference_counts(text, names))
        for text in sentences
        if tuple(pole_counts(text, tokenize(text), names).values()) != reference_counts(text, names)
    ]
    assert not different, different[:5]


def test_surface_forms_hold_every_word_read_as_the_lemma() -> None:
    """`surface_forms` runs the suffix rules backwards: every word of the labelled texts
    whose lemma candidates hold a lexicon word is among that word's surface forms (else a
    sentence would never try it)."""
    lex = lexicon()
    lemmas = {word for term in lex.terms for word in term.words if word != "*"}
    words = {key for text in labelled_texts() for key in tokenize(text).keys}
    words |= {"rebuilt", "friendliest", "capably", "strategically", "stopped", "herself"}
    missing = [
        (word, lemma)
        for word in sorted(words)
        for lemma in lemma_candidates(word, IRREGULAR) & lemmas
        if word not in surface_forms(lemma, IRREGULAR)
    ]
    assert not missing, missing[:10]
