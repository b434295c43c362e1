"""Language measures of the bias check, each on hand-written examples: a sentence that
triggers the measure and one that does not, flags that point at the exact phrase, and the
word lists' own checks."""

import json
import time
from pathlib import Path

import pytest

from service.bias.language import (
    MEASURES,
    LanguageProfile,
    name_words,
    profile_draft,
    profile_drafts,
    profile_text,
    split_sentences,
    text_to_body,
)
from service.bias.nlp import SenseParser
from service.bias.wordlists import DATA_DIR, FLAG_MEASURES, load_wordlists, tokenize, wordlists
from service.drafting.structure import DraftBody, DraftSection, DraftSentence

ROOT = Path(__file__).resolve().parents[1]


def measure(text: str, name: str) -> float:
    return profile_text(text).measures[name]


def flagged(text: str) -> list[tuple[str, str]]:
    return [(f.phrase, f.measure) for f in profile_text(text).flags]


def body(*sections: list[tuple[str, list[str]]]) -> DraftBody:
    return DraftBody(
        sections=[
            DraftSection(
                heading=f"Section {i}",
                sentences=[DraftSentence(text=t, evidence=e) for t, e in sentences],
            )
            for i, sentences in enumerate(sections)
        ]
    )


# --- the profile's shape -----------------------------------------------------------------


def test_measures_have_stable_keys_in_order() -> None:
    profile = profile_text("Ana shipped the ledger.")
    assert tuple(profile.measures) == MEASURES
    assert len(set(MEASURES)) == len(MEASURES)


def test_empty_text_is_all_zero_with_no_flags() -> None:
    profile = profile_text("")
    assert profile == LanguageProfile(dict.fromkeys(MEASURES, 0.0), [])


def test_length_counts_words_and_sentences() -> None:
    profile = profile_text("Ana shipped the new ledger. It worked!\nBo's team re-ran the tests.")
    assert profile.measures["words"] == 13  # "Bo's" is one word, "re-ran" two
    assert profile.measures["sentences"] == 3


def test_a_decimal_is_one_word() -> None:
    assert measure("Ana cut retries from 4.1% to 1.3%.", "words") == 7


def test_rates_are_per_hundred_words() -> None:
    text = "Ana was diligent. " + "The ledger moved to the new cluster. " * 3
    profile = profile_text(text)
    assert profile.measures["words"] == 24
    assert profile.measures["grindstone_rate"] == pytest.approx(100 / 24)


# --- each measure: a sentence that triggers it, one that does not -------------------------


@pytest.mark.parametrize(
    ("name", "triggers", "does_not"),
    [
        ("agentic_rate", "Ana led the migration and decided the sequencing.", "Ana is kind."),
        ("communal_rate", "Ana is kind and supportive with new hires.", "Ana led the rollout."),
        ("standout_rate", "Her analysis was outstanding.", "Her analysis was finished."),
        ("grindstone_rate", "Ana is hardworking and meticulous.", "Ana finished the audit."),
        ("personality_criticism_rate", "Ana can be abrasive.", "Ana interrupted Sam twice."),
        ("behaviour_criticism_rate", "Ana interrupted Sam twice.", "Ana can be abrasive."),
        ("vague_praise_rate", "Ana is a real team player.", "Ana wrote the rollout plan."),
        ("hedging_rate", "Ana seems to have improved the design.", "Ana improved the design."),
        ("doubt_raiser_rate", "Although late, the report was adequate.", "The report is done."),
        ("masculine_coded_rate", "Ana is confident and independent.", "Ana is kind and warm."),
        ("feminine_coded_rate", "Ana is so supportive and warm.", "Ana is confident."),
        ("age_coded_rate", "Bo is a digital native.", "Bo moved us off the old ledger."),
        ("citations_per_sentence", "Ana shipped it. [E1, E2]", "Ana shipped it."),
    ],
)
def test_measure_triggers_on_example_and_not_on_counter_example(
    name: str, triggers: str, does_not: str
) -> None:
    assert measure(triggers, name) > 0
    assert measure(does_not, name) == 0


def test_agentic_minus_communal_has_the_sign_of_the_balance() -> None:
    assert measure("Ana led the launch and drove the decision.", "agentic_minus_communal") > 0
    assert measure("Ana is warm, kind and so helpful.", "agentic_minus_communal") < 0
    assert measure("Ana moved the ledger.", "agentic_minus_communal") == 0


def test_praise_specificity_is_the_share_of_praise_with_a_number_outcome_or_citation() -> None:
    vague = "Great work on the launch this year."
    with_number = "Excellent work cutting p95 latency from 900 ms to 300 ms."
    with_outcome = "Good call on the rollback; the launch stayed on schedule."
    assert measure(vague, "praise_sentences") == 1
    assert measure(vague, "praise_specificity") == 0
    assert measure(with_number, "praise_specificity") == 1
    assert measure(with_outcome, "praise_specificity") == 1
    assert measure(f"{vague} {with_number}", "praise_specificity") == 0.5
    cited = body([(vague, ["E4"])])
    assert profile_draft(cited).measures["praise_specificity"] == 1
    # not praise at all: no praise sentences, specificity 0 by convention
    neutral = profile_text("The ledger moved to the new cluster in May.")
    assert neutral.measures["praise_sentences"] == 0
    assert neutral.measures["praise_specificity"] == 0


def test_citation_marks_do_not_count_as_numbers() -> None:
    assert measure("Great work on the launch. [E3]", "praise_specificity") == 1  # cited
    parsed = text_to_body("Great work on the launch. [E3]")
    assert parsed.sentences()[0].text == "Great work on the launch."


def test_sentiment_is_the_mean_sentence_polarity() -> None:
    assert measure("The design was clear and effective.", "sentiment") == 1
    assert measure("The rollout was late and confusing.", "sentiment") == -1
    assert measure("The ledger moved in May.", "sentiment") == 0
    assert measure("The plan was not good.", "sentiment") == -1  # negated
    assert measure("Her review prevented a real problem.", "sentiment") == 1  # remedied
    mixed = "The design was clear. The rollout was late. The ledger moved."
    assert measure(mixed, "sentiment") == 0


def test_sentiment_stays_within_minus_one_and_one() -> None:
    text = "Great, excellent, brilliant work. Bad, late, sloppy, confusing work. It was fine."
    assert -1 <= measure(text, "sentiment") <= 1


def test_citations_per_sentence_come_from_the_evidence_lists() -> None:
    draft = body(
        [("Ana moved the ledger.", ["E1", "E2"]), ("It went live.", ["E3"])],
        [("Ana led the review.", [])],
    )
    assert profile_draft(draft).measures["citations_per_sentence"] == 1.0
    assert (
        profile_text("Ana moved the ledger. It went live.").measures["citations_per_sentence"] == 0
    )


def test_a_draft_and_its_text_profile_alike() -> None:
    draft = body(
        [("Ana can be abrasive in reviews.", ["E1"]), ("Great work on the launch.", [])],
        [("Ana seems to have led the migration.", ["E2", "E3"])],
    )
    from_draft, from_text = profile_draft(draft), profile_text(draft.as_text())
    assert from_text.measures == pytest.approx(from_draft.measures)
    assert [(f.phrase, f.measure) for f in from_text.flags] == [
        (f.phrase, f.measure) for f in from_draft.flags
    ]


# --- matching rules ----------------------------------------------------------------------


def test_matching_is_case_insensitive_on_whole_words() -> None:
    assert flagged("ABRASIVE at times.") == [
        ("ABRASIVE", "personality_criticism"),
        ("at times", "doubt_raiser"),
    ]
    assert measure("The chat was unkind.", "communal_rate") == 0  # not "kind"
    assert measure("That may mislead readers.", "masculine_coded_rate") == 0  # not lead*


def test_stems_match_as_prefixes() -> None:
    for text in ("Ana is a leader.", "Ana showed leadership.", "Ana leads the team."):
        assert measure(text, "masculine_coded_rate") > 0, text


def test_hyphenated_terms_match_with_a_space_a_hyphen_or_joined() -> None:
    for text in ("Ana is hard-working.", "Ana is hard working.", "Ana is hardworking."):
        assert measure(text, "grindstone_rate") > 0, text


def test_wildcard_word_and_curly_apostrophes() -> None:
    assert flagged("Bo is set in his ways.") == [("set in his ways", "age_coded")]
    assert measure("Ana didn\u2019t test the change.", "behaviour_criticism_rate") > 0


def test_neighbouring_words_can_cancel_a_term() -> None:
    assert flagged("We set an aggressive timeline for Q3.") == []
    assert flagged("Ana was aggressive in the review.") == [("aggressive", "personality_criticism")]
    assert flagged("We run a warm standby in the second region.") == []
    assert flagged("Ana rebuilt the email nurture and the nurture sequence.") == []
    assert flagged("Ana nurtured the new hires.") == [("nurtured", "gender_coded")]
    assert measure("We chose Postgres rather than MySQL.", "hedging_rate") == 0
    assert measure("She wrote the plan as well.", "sentiment") == 0


def test_a_match_glued_by_a_hyphen_to_the_next_word_is_a_compound_not_the_term() -> None:
    assert flagged("Mo fixed a bit-flip bug in the checksum code.") == []
    assert flagged("Svetlana worked out this time-zone rota.") == []
    assert flagged("Ana rewrote a little-used admin page.") == []
    assert flagged("Mo is a bit slow to review.") == [("a bit", "hedging")]


def test_a_term_written_with_a_capital_matches_capitalised_inside_a_sentence() -> None:
    """Capitalised words inside a sentence are names, except a term the list itself
    writes with a capital ("Gen Z")."""
    assert flagged("Riley is our Gen Z voice on product.") == [("Gen Z", "age_coded")]
    assert flagged("Riley is our gen z voice.") == [("gen z", "age_coded")]


@pytest.mark.parametrize(
    "text",
    [
        "Leila was out with a cold in March.",  # the illness
        "Anjali asks each engineer to keep it up to date.",  # upkeep
        "Caleb wrote the sort of runbook new hires can follow.",  # a type
        "Sunday outages are the kind of problem Klaus now catches.",
        "At times of peak load the queue backs up.",  # during
    ],
)
def test_narrowed_entries_skip_their_other_sense(text: str) -> None:
    assert flagged(text) == []


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Aiyana is feisty in negotiations.", "feisty"),
        ("Lorena is motherly with the new graduates.", "motherly"),
        ("Wanjiru is like a mother hen to the interns.", "mother hen"),
        ("Isha's sassy comments lighten the mood.", "sassy"),
    ],
)
def test_gendered_descriptors_of_a_person_are_flagged(text: str, phrase: str) -> None:
    assert flagged(text) == [(phrase, "gender_coded")]


def test_possessive_s_is_left_out_of_the_word() -> None:
    tokens = tokenize("Ana's plan didn't slip.")
    assert tokens.keys == ["ana", "plan", "didn't", "slip"]
    assert (tokens.start(0), tokens.end(0)) == (0, 3)
    assert flagged("Ana's abrasive tone.") == [("abrasive", "personality_criticism")]


# --- flags -------------------------------------------------------------------------------


def test_flag_spans_point_at_the_exact_phrase() -> None:
    draft = body(
        [("Ana moved the ledger.", ["E1"])],
        [
            ("It went live on time.", ["E2"]),
            ("She came across as too aggressive; she could be less abrasive.", ["E3"]),
        ],
    )
    flags = profile_draft(draft).flags
    assert [(f.section, f.sentence, f.phrase) for f in flags] == [
        (1, 1, "too aggressive"),
        (1, 1, "abrasive"),
    ]
    for flag in flags:
        text = draft.sections[flag.section].sentences[flag.sentence].text
        assert text[flag.start : flag.end] == flag.phrase
        assert flag.measure == "personality_criticism"
        assert flag.suggestion


def test_abrasive_gets_the_behaviour_suggestion() -> None:
    (flag,) = profile_text("Ana came across as abrasive.").flags
    assert "interrupted" in flag.suggestion


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ana panicked during the outage.", [("panicked", "personality_criticism")]),
        ("It was surprisingly good.", [("surprisingly", "doubt_raiser")]),
        ("Ana is a pleasure to work with.", [("pleasure to work with", "vague_praise")]),
        ("I think the plan might work.", [("I think", "hedging"), ("might", "hedging")]),
        ("Ana is like the team mom.", [("team mom", "gender_coded")]),
        ("Bo brings a fresh perspective.", [("fresh perspective", "age_coded")]),
    ],
)
def test_each_flagged_measure_flags_its_phrase(text: str, expected: list[tuple[str, str]]) -> None:
    assert flagged(text) == expected


def test_counted_words_are_not_flagged() -> None:
    text = "Ana led the rollout, was supportive and diligent, and it was excellent."
    profile = profile_text(text)
    assert profile.flags == []
    for name in ("agentic_rate", "feminine_coded_rate", "grindstone_rate", "standout_rate"):
        assert profile.measures[name] > 0, name


def test_overlapping_flags_keep_the_highest_priority_measure() -> None:
    profile = profile_text("Ana can be bossy.")
    assert profile.measures["personality_criticism_rate"] > 0
    assert profile.measures["feminine_coded_rate"] > 0  # counted by both lists
    assert [(f.phrase, f.measure) for f in profile.flags] == [("bossy", "personality_criticism")]


def test_behaviour_criticism_is_measured_not_flagged() -> None:
    profile = profile_text("Ana missed the deadline and skipped the review.")
    assert profile.measures["behaviour_criticism_rate"] > 0
    assert profile.flags == []


def test_planted_biased_feedback_is_flagged_and_its_controls_are_not() -> None:
    """The synthetic org's biased sentences (evals/synthetic_org/data/bias.json) each carry
    at least one flag; their behaviour-focused controls carry none."""
    bank = json.loads((ROOT / "evals/synthetic_org/data/bias.json").read_text())
    names = {"{Sub}": "She", "{sub}": "she", "{Pos}": "Her", "{pos}": "her", "{obj}": "her"}
    names |= {"{name}": "Ana", "{was}": "was", "{is}": "is", "{has}": "has"}
    names |= {"{partner_team}": "Payments", "{colleague}": "Bo"}

    def fill(text: str) -> str:
        for slot, value in names.items():
            text = text.replace(slot, value)
        return text

    for event in bank["events"]:
        for style in ("gender_coded", "personality"):
            for sentence in event[style]:
                assert profile_text(fill(sentence)).flags, sentence
        for sentence in event["control"]:
            assert not profile_text(fill(sentence)).flags, sentence


# --- plain text --------------------------------------------------------------------------


def test_split_sentences_drops_headings_and_bullets() -> None:
    text = "## Impact\n- Ana moved the ledger. It went live [E1].\n2. Bo wrote e.g. the plan."
    assert split_sentences(text) == [
        "Ana moved the ledger.",
        "It went live [E1].",
        "Bo wrote e.g. the plan.",
    ]
    parsed = text_to_body(text)
    assert [s.evidence for s in parsed.sentences()] == [[], ["E1"], []]
    assert parsed.sentences()[1].text == "It went live."


# --- the word lists ----------------------------------------------------------------------


def test_every_data_file_names_its_source_and_every_flagging_list_suggests() -> None:
    lists = wordlists()
    assert set(lists.sources) == {p.name for p in DATA_DIR.glob("*.json")}
    for source in lists.sources.values():
        assert "fairdraft" in source  # honest about who wrote the list
    for name in FLAG_MEASURES:
        assert any(entry.suggestion for entry in lists.lists[name]), name
    for name in ("vague_praise", "personality_criticism", "hedging", "doubt_raiser"):
        assert all(entry.suggestion for entry in lists.lists[name]), name


def test_bad_word_lists_are_refused(tmp_path: Path) -> None:
    def write(data: object) -> Path:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        (folder / "list.json").write_text(json.dumps(data))
        return folder

    good = {"_source": "test", "agentic": {"terms": ["led"]}}
    assert load_wordlists(write(good)).lists["agentic"][0].term == "led"
    bad = [
        {"agentic": {"terms": ["led"]}},  # no _source
        {"_source": "t", "agentic": {"terms": ["led", "Led"]}},  # duplicate
        {"_source": "t", "agentic": {"terms": ["*ed"]}},  # leading wildcard
        {"_source": "t", "agentic": {"terms": ["l*d"]}},  # inner wildcard
        {"_source": "t", "agentic": {"terms": [{"term": "led", "suggestion": "no"}]}},
        {"_source": "t", "agentic": {"terms": [{"term": "led", "except": ["x"]}]}},  # typo
    ]
    for data in bad:
        with pytest.raises(ValueError):
            load_wordlists(write(data))


# --- speed -------------------------------------------------------------------------------


@pytest.mark.slow
def test_profiles_a_thousand_drafts_in_under_two_seconds() -> None:
    sentences = [
        "Ana moved card payments to the new ledger and cut failed retries from 4.1% to 1.3%.",
        "She came across as too aggressive in the launch review; a calmer tone would help.",
        "Ana is a pleasure to work with and always has a positive attitude.",
        "I think the plan might have slipped a bit without her, although it turned out fine.",
        "She led the incident response and made the rollback call within ten minutes.",
    ]
    drafts = [
        body(*[[(f"{sentences[(d + i) % 5]} ({d})", ["E1"]) for i in range(5)]] * 3)
        for d in range(1000)
    ]
    profile_draft(drafts[0])  # load the lists
    started = time.perf_counter()
    for draft in drafts:
        profile_draft(draft)
    assert time.perf_counter() - started < 2.0


def test_a_capitalised_name_inside_a_sentence_is_not_the_word_it_spells() -> None:
    named = profile_text("Yesterday Harsh Patel and Grace led the review.")
    described = profile_text("Harsh words were used. The review was harsh.")

    assert not [f for f in named.flags if f.phrase.lower() in ("harsh", "grace")]
    assert [f.phrase for f in described.flags if f.phrase.lower() == "harsh"]


def test_a_known_name_at_the_start_of_a_sentence_is_not_flagged() -> None:
    names = name_words(["Harsh Patel", "Grace Lee"])

    named = profile_text("Harsh was my counterpart on Topaz.", names)
    described = profile_text("Harsh was my counterpart on Topaz.")

    assert not named.flags
    assert [f.phrase for f in described.flags] == ["Harsh"]


def test_profiling_many_drafts_at_once_gives_each_the_profile_it_gets_alone(
    sense_parser: SenseParser,
) -> None:
    """The cycle report parses the flagged sentences of all drafts in one batch; a sentence
    shared by two drafts is judged for each draft's own person."""
    shared = "Cy can be abrasive in design reviews."
    drafts = [
        (text_to_body(f"{shared} Her designs appeared in the launch keynote."), "Cy Diaz"),
        (text_to_body("It was an intense quarter. Bo seems to be a natural leader."), "Bo Chen"),
        (text_to_body(shared), "Ana Lima"),
        (text_to_body("Cut failed retries from 4.1% to 1.3%."), "Ana Lima"),
    ]
    names = name_words(["Cy Diaz", "Bo Chen", "Ana Lima"])
    together = profile_drafts(drafts, names, parser=sense_parser)
    alone = [profile_draft(b, names, parser=sense_parser, subject=who) for b, who in drafts]
    assert together == alone
    assert [len(p.flags) for p in together] != [0, 0, 0, 0]
