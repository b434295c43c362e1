"""Chunking keeps sentences and paragraphs whole and stays within the token budget."""

import itertools

from retrieval.chunking import chunk_text, count_tokens, split_sentences

PARAGRAPH = (
    "Moved card payments to the new ledger. Retries dropped from 4.1% to 1.3%, e.g. on "
    "renewals. Dr. Okafor signed off the rollback drill!"
)


def test_sentences_split_at_ends_but_not_at_abbreviations_or_decimals() -> None:
    assert split_sentences(PARAGRAPH) == [
        "Moved card payments to the new ledger.",
        "Retries dropped from 4.1% to 1.3%, e.g. on renewals.",
        "Dr. Okafor signed off the rollback drill!",
    ]


def test_bulleted_lines_are_sentences_of_their_own() -> None:
    assert split_sentences("Next steps:\n- write the runbook\n- pair with Ana") == [
        "Next steps:",
        "- write the runbook",
        "- pair with Ana",
    ]


def test_a_short_record_is_one_chunk_headed_by_its_title() -> None:
    (chunk,) = chunk_text("First paragraph.\n\nSecond one.", title="Ledger")

    assert chunk.text == "Ledger\nFirst paragraph.\n\nSecond one."
    assert chunk.token_count == count_tokens(chunk.text)


def test_long_text_is_cut_at_sentence_ends_within_the_budget_with_overlap() -> None:
    sentences = [f"Sentence {i} explains one specific outcome of the project." for i in range(60)]
    chunks = chunk_text(" ".join(sentences), max_tokens=60, overlap_tokens=12)

    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.token_count <= 60
        assert chunk.text.endswith(".")
    for previous, current in itertools.pairwise(chunks):
        last_sentence = previous.text.split(". ")[-1]
        assert current.text.startswith(last_sentence.rstrip(".")), "one sentence of overlap"
    covered = " ".join(c.text for c in chunks)
    assert all(sentence in covered for sentence in sentences)


def test_paragraphs_stay_together_when_they_fit() -> None:
    first = "Alpha one. Alpha two. Alpha three."
    second = "Beta one. Beta two. Beta three."
    chunks = chunk_text(f"{first}\n\n{second}", max_tokens=16, overlap_tokens=0)

    assert [c.text for c in chunks] == [first, second]


def test_a_sentence_longer_than_a_chunk_is_cut_at_word_boundaries() -> None:
    words = " ".join(f"word{i}" for i in range(300))
    chunks = chunk_text(words, max_tokens=50, overlap_tokens=0)

    assert all(c.token_count <= 50 for c in chunks)
    assert " ".join(c.text for c in chunks) == words


def test_chunking_is_deterministic_and_positions_count_from_zero() -> None:
    body = "\n\n".join(PARAGRAPH for _ in range(8))
    first = chunk_text(body, max_tokens=40)

    assert first == chunk_text(body, max_tokens=40)
    assert [c.position for c in first] == list(range(len(first)))
