"""Sentence splitting (issue 14): every text of evals/data/sentence_splits.jsonl (titles,
initials, abbreviations, decimals, lists, quotes) splits as a careful reader splits it, in
the bias check's splitter and in chunking's, which share `retrieval.sentences`."""

import pytest

from evals.labelled import SplitCase, load_sentence_splits
from retrieval.chunking import split_sentences as chunk_sentences
from retrieval.sentences import split_line
from service.bias.language import split_sentences

CASES = load_sentence_splits().cases


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bias_splitter_splits_each_labelled_text_right(case: SplitCase) -> None:
    assert tuple(split_sentences(case.text)) == case.sentences


def test_a_title_does_not_end_a_sentence() -> None:
    text = "I have watched Ms. Okafor grow."
    assert split_sentences(text) == [text]
    assert chunk_sentences(text) == [text]
    assert split_line("Dr. Ito and Mr. Banda met St. Clair at 9 a.m. on Friday.") == [
        "Dr. Ito and Mr. Banda met St. Clair at 9 a.m. on Friday."
    ]


def test_an_abbreviation_before_a_number_does_not_end_a_sentence() -> None:
    assert split_line("Revenue grew approx. 18% in Q3. Costs fell.") == [
        "Revenue grew approx. 18% in Q3.",
        "Costs fell.",
    ]


def test_an_abbreviation_at_a_sentence_end_still_ends_it() -> None:
    assert split_line("She closed the deal with Globex Inc. The rollout starts in May.") == [
        "She closed the deal with Globex Inc.",
        "The rollout starts in May.",
    ]


def test_plain_sentences_split_at_every_end() -> None:
    assert split_line("She led it. He shipped 3.5 s faster! Did it hold? Yes.") == [
        "She led it.",
        "He shipped 3.5 s faster!",
        "Did it hold?",
        "Yes.",
    ]


def test_a_citation_after_the_period_stays_with_its_sentence() -> None:
    assert split_line("Ana shipped it. [E1, E2] Then she wrote the runbook. [E3]") == [
        "Ana shipped it. [E1, E2]",
        "Then she wrote the runbook. [E3]",
    ]
