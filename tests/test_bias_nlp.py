"""Flags that know what a word describes (issue 14): with spaCy's parse, a word-list hit
is flagged only where it describes the draft's person in its category's sense."""

from collections.abc import Iterator

import pytest

from domain.errors import Misconfigured
from evals.eval_flags import case_figures, score_case
from evals.labelled import load_flag_cases
from service.bias.language import profile_text
from service.bias.nlp import SenseParser, load_sense_parser, sense_rules


@pytest.fixture(scope="module")
def parser() -> Iterator[SenseParser]:
    yield load_sense_parser()


def measures(text: str, parser: SenseParser | None, subject: str = "") -> set[str]:
    return {f.measure for f in profile_text(text, parser=parser, subject=subject).flags}


@pytest.mark.parametrize(
    ("text", "measure"),
    [
        ("Ana can be abrasive in design reviews.", "personality_criticism"),
        ("She appears to handle pressure well.", "hedging"),
        ("Zoe is young for a senior role.", "age_coded"),
        ("Kwabena is a team player.", "vague_praise"),
    ],
)
def test_a_phrase_describing_the_person_is_flagged(
    parser: SenseParser, text: str, measure: str
) -> None:
    assert measure in measures(text, parser)


@pytest.mark.parametrize(
    ("text", "measure"),
    [
        ("Her designs appeared in the launch keynote.", "hedging"),
        ("She started coding at a young age.", "age_coded"),
        ("He calmed an emotional customer escalation in May.", "personality_criticism"),
        ("Hana is never abrasive, even when she disagrees.", "personality_criticism"),
        (
            'The client called the first proposal "too aggressive" in review.',
            "personality_criticism",
        ),
    ],
)
def test_a_look_alike_is_not_flagged(parser: SenseParser, text: str, measure: str) -> None:
    assert measure not in measures(text, parser)
    # the word list alone flags it: the parse is what clears it
    assert measure in measures(text, None)


def test_the_subject_name_passed_in_counts_as_the_person(parser: SenseParser) -> None:
    assert "personality_criticism" in measures("Oyelaran is abrasive.", parser, "Oyelaran Ade")


def test_the_measures_do_not_depend_on_the_parser(parser: SenseParser) -> None:
    text = "Her designs appeared in the launch keynote. She can be abrasive."
    assert profile_text(text, parser=parser).measures == profile_text(text).measures


def test_a_missing_model_is_a_clear_misconfiguration() -> None:
    with pytest.raises(Misconfigured, match="not installed"):
        load_sense_parser("no_such_model_xyz")


def test_the_sense_rules_name_their_source() -> None:
    rules = sense_rules()
    assert "appeared" in rules.needs_to
    assert "age_coded" in rules.negation_kept


def test_flag_precision_on_the_labelled_set_beats_the_word_lists(parser: SenseParser) -> None:
    """A floor, not the target: measured 0.82-0.97 per category with the parse against
    0.53-0.55 for the word lists alone (`make eval-flags`)."""
    cases = load_flag_cases().cases
    with_parse = case_figures([score_case(c, parser) for c in cases])
    words_only = case_figures([score_case(c, None) for c in cases])
    assert float(with_parse["min_precision"]) >= 0.8
    assert float(with_parse["min_precision"]) > float(words_only["min_precision"]) + 0.2
    assert float(with_parse["min_recall"]) >= 0.7
