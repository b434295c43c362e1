"""Flags that know what a word describes (issue 14): with spaCy's parse, a word-list hit
is flagged only where it describes the draft's person in its category's sense."""

from collections.abc import Iterator

import pytest

from domain.errors import Misconfigured
from evals.eval_flags import case_figures, score_case, written_ordinary_figures
from evals.labelled import OrdinaryDraft, load_flag_cases
from service.bias.counterfactual import BOTH_WAYS, swap_pronouns
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


# Classes of error fixed in the second round (issue 14): each sentence is written for the
# test, not taken from the labelled sets, and each was judged wrongly by the first rules.
@pytest.mark.parametrize(
    ("text", "measure"),
    [
        # a relative pronoun stands for the noun its clause modifies
        ("Keisha, who can be bossy, led the planning.", "personality_criticism"),
        # possessive pronouns are the person; their tone, reviews, reactions are their manner
        ("His manner with juniors is condescending.", "personality_criticism"),
        ("Her reviews can be harsh.", "personality_criticism"),
        # an "as" phrase after the object describes the object
        ("Peers describe Lena as emotional under pressure.", "personality_criticism"),
        # an adjective whose subject the model tags as a possessive ("found her abrasive")
        ("We found her abrasive in the retro.", "personality_criticism"),
        # a fragment addressed to the person (the root test compared tokens by identity)
        ("Great work this quarter, Leo.", "vague_praise"),
        ("Thanks for a great year, Leo.", "vague_praise"),
        # frames that hold their own subject: the person is in the framed clause or object
        ("I think she is ready for a lead role.", "hedging"),
        ("Omar has grown a lot, I think.", "hedging"),
        ("It seems she has improved her estimates.", "hedging"),
        ("Everyone likes working with her.", "vague_praise"),
        # doubt and hedging about what the person owns are about the person
        ("His results were adequate.", "doubt_raiser"),
        ("His code is somewhat fragile.", "hedging"),
        # a concession about the person, negation inside it included
        ("Even if he is not the fastest, Emil finishes what he starts.", "doubt_raiser"),
        ("Although quiet, Ravi is a strong reviewer.", "doubt_raiser"),
        # the lower-case half of a hyphenated name is a name
        ("Hyun-woo is a pleasure to work with.", "vague_praise"),
        # a noun phrase said of the person: "as" phrase, apposition, fronted "for" phrase
        ("As a seasoned manager, she calmed the team.", "age_coded"),
        ("Ali, a digital native, set up our chat bots.", "age_coded"),
        ("For a young engineer, Ali shows good judgement.", "age_coded"),
        # praise with a year is still vague: a year is a date, not a result
        ("Great job in 2026, Fiona!", "vague_praise"),
    ],
)
def test_a_phrase_about_the_person_is_flagged_in_every_shape(
    parser: SenseParser, text: str, measure: str
) -> None:
    assert measure in measures(text, parser)


@pytest.mark.parametrize(
    ("text", "measure"),
    [
        # a noun phrase term as the object of another verb names someone else
        ("Ravi calmed a difficult person at the front desk.", "personality_criticism"),
        # concessions about circumstances, or granting a strength
        ("Despite the outage, she kept the launch date.", "doubt_raiser"),
        ("Despite his strong results, he stays modest.", "doubt_raiser"),
        # a hedge in a relative clause that defines a thing
        ("We discussed any role she may be considering after the reorg.", "hedging"),
        # capitalised words that are not names: a plural noun opening the sentence, a
        # common noun the tagger reads as a noun or verb, an acronym
        ("Contractors may not access production, so she added a check.", "hedging"),
        (
            "Feedback on the release was harsh, and she answered every ticket.",
            "personality_criticism",
        ),
        ("The old API was not the strongest design, and she replaced it.", "doubt_raiser"),
        ("It was an intense launch, and he still closed every finding.", "personality_criticism"),
        # an adjective used as a noun describes the object of "of"
        ("The younger of the two services had no tests, so she wrote them.", "age_coded"),
        # a degree word after the verb's object is the manner of the act
        ("Nikos priced the support tier reasonably, and attach rates doubled.", "hedging"),
        # the entry's cancelling words cancel it as the parsed object too
        ("He nurtured the partner pipeline all year.", "gender_coded"),
        # praise tied to a result given in number words
        ("Chidi did a great job cutting the close from nine days to five.", "vague_praise"),
    ],
)
def test_a_look_alike_of_another_shape_is_not_flagged(
    parser: SenseParser, text: str, measure: str
) -> None:
    assert measure not in measures(text, parser)
    assert measure in measures(text, None)


def test_the_writer_is_the_person_of_a_self_reflection(parser: SenseParser) -> None:
    assert "personality_criticism" in measures("I can be too aggressive in negotiations.", parser)
    assert "hedging" not in measures("I think the plan might work.", parser)


def test_swapping_pronouns_changes_no_flag(parser: SenseParser) -> None:
    """The counterfactual probe's swap (he <-> she) moves no flag of the labelled cases:
    the rules read roles, not which pronoun fills them."""
    changed = []
    for case in load_flag_cases().cases:
        swapped = swap_pronouns(case.text, BOTH_WAYS)
        if swapped == case.text:
            continue
        before = [(f.measure, f.sentence) for f in profile_text(case.text, parser=parser).flags]
        after = [(f.measure, f.sentence) for f in profile_text(swapped, parser=parser).flags]
        if before != after:
            changed.append(case.id)
    assert changed == []


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
    assert ("even", "if") in rules.concessions
    assert "doubt_raiser" in rules.owned_counts


def test_flag_precision_and_recall_meet_the_targets_on_the_dev_set(parser: SenseParser) -> None:
    """The issue's targets, 0.9 in every category, on the set the rules were written
    against (measured: precision 0.94-1.0, recall 0.96-1.0; the word lists alone: precision
    0.54-0.57). The held-out set is reported by `make eval-flags`, not asserted here."""
    cases = load_flag_cases().cases
    with_parse = case_figures([score_case(c, parser) for c in cases])
    words_only = case_figures([score_case(c, None) for c in cases])
    assert float(with_parse["min_precision"]) >= 0.9
    assert float(with_parse["min_recall"]) >= 0.9
    assert float(with_parse["min_precision"]) > float(words_only["min_precision"]) + 0.3


def test_the_ordinary_set_share_is_counted_before_and_after_the_parse(
    parser: SenseParser,
) -> None:
    def draft(number: int, text: str) -> OrdinaryDraft:
        return OrdinaryDraft(
            id=f"ord-{number:03d}",
            kind="manager_feedback",
            subject="Ilka Berg",
            text=text,
            lookalikes=(),
            note="test",
        )

    drafts = [
        draft(1, "Ilka's designs appeared in the launch keynote."),  # a look-alike
        draft(2, "Ilka rebuilt the billing export and cut errors by half."),  # nothing
        draft(3, "Ilka can be abrasive in reviews."),  # a real flag
    ]
    figures, phrases = written_ordinary_figures(drafts, parser)
    assert figures["ordinary_set_drafts"] == 3
    assert figures["ordinary_set_share_flagged_words_only"] == round(2 / 3, 3)
    assert figures["ordinary_set_share_flagged"] == round(1 / 3, 3)
    assert figures["ordinary_set_share.personality_criticism"] == round(1 / 3, 3)
    assert phrases == {"personality_criticism: abrasive": 1}
