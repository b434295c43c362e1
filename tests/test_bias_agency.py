"""The broad agency measure (service/bias/agency.py) on small hand-written examples:
inflections count, negation discounts, homographs and names do not count, the data file
names its sources, and the language profile's agentic/communal measures come from it.

No database: the measure reads text alone.
"""

import json
from pathlib import Path

import pytest

from service.bias.agency import (
    LEXICON_FILE,
    LexiconError,
    lemma_candidates,
    load_lexicon,
    score_text,
)
from service.bias.language import profile_text


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
        "He decisively cut the scope.",
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
