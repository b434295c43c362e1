"""The drafting eval's judge of citations: strict enough that a wrong citation fails."""

from evals.citation_support import THRESHOLD, coverage, stem, supports

ITEM = (
    "Moved card payments from the legacy ledger to the new double-entry service. "
    "Failed payment retries dropped from 4.1% to 1.3% in the first two weeks."
)


def test_a_restated_sentence_is_supported_by_its_source() -> None:
    assert supports("I moved card payments to the new double-entry service.", ITEM)
    assert supports(
        "Cy moved card payments; failed retries dropped from 4.1% to 1.3%.", ITEM, ["Cy"]
    )


def test_an_unrelated_item_does_not_support_the_sentence() -> None:
    unrelated = "Dee rebuilt the payout export overnight when the bank changed its file format."
    assert coverage("I moved card payments to the new double-entry service.", unrelated) < THRESHOLD
    assert not supports("I moved card payments to the new double-entry service.", unrelated)


def test_a_wrong_figure_is_not_supported() -> None:
    assert not supports("Failed payment retries dropped from 4.1% to 0.9%.", ITEM)


def test_framing_words_must_stay_a_minority() -> None:
    assert not supports("A colleague praised leadership, ownership and payments judgement.", ITEM)


def test_inflections_meet() -> None:
    assert stem("payments") == stem("payment") and stem("reduced") == stem("reduces")
    assert coverage("Retry failing payments", "failed payment retries") >= THRESHOLD
