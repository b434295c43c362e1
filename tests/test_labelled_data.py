"""The labelled data for issue 14's flag-precision and sentence-splitting evals
(evals/data/): both files load, hold enough cases of every kind, and say what they claim.

Every flag case's phrase must be a term of its category's word list, and no other
flag-raising term may occur elsewhere in its text, so that a flag on a case is either at
the labelled phrase or plainly a false one. Terms are matched here, without context, the
way the lists' header describes (service/bias/wordlists.py): whole words, case-insensitive,
`stem*` a prefix, a lone `*` any one word, a hyphen also a space or nothing. The loader's
refusals are checked on small files written for each.

The held-out sets (flag_cases_holdout.jsonl, agency_holdout.jsonl, ordinary_drafts.jsonl)
are checked the same way, and for sharing no text with the development sets; every
flag-raising term in an ordinary draft must be one of the look-alikes it declares."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.eval_agency import CASES_FILE as AGENCY_CASES_PATH
from evals.eval_agency import load_cases as load_agency_cases
from evals.labelled import (
    AGENCY_HOLDOUT_PATH,
    FLAG_CATEGORIES,
    FLAG_HOLDOUT_PATH,
    REVIEW_TEXT_KINDS,
    FlagCase,
    LabelledDataError,
    OrdinaryDraft,
    load_flag_cases,
    load_ordinary_drafts,
    load_sentence_splits,
)
from retrieval.sentences import split_line
from service.bias.wordlists import DATA_DIR, FLAG_MEASURES

MIN_CASES = 300
MIN_PER_CATEGORY = 40
MIN_SPLITS = 60
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
Span = tuple[int, int]


def _list_terms() -> Iterator[tuple[str, str, bool]]:
    """(measure, term, raises a flag) for every term of every list that raises flags."""
    for path in sorted(DATA_DIR.glob("*.json")):
        for lexicon, spec in json.loads(path.read_text(encoding="utf-8")).items():
            if lexicon.startswith("_") or lexicon not in FLAG_MEASURES:
                continue
            default = str(spec.get("suggestion", ""))
            for raw in spec["terms"]:
                item = {"term": raw} if isinstance(raw, str) else raw
                flags = bool(item.get("suggestion", default))
                yield FLAG_MEASURES[lexicon], str(item["term"]), flags


TERMS = list(_list_terms())


def _variants(term: str) -> list[tuple[str, ...]]:
    """Token sequences of a term: hyphenated words split into pieces, and also joined."""
    variants: list[list[str]] = [[]]
    for word in term.lower().split():
        pieces = [p for p in word.split("-") if p]
        joined = ["".join(pieces)] if len(pieces) > 1 else []
        variants = [v + pieces for v in variants] + [v + joined for v in variants if joined]
    return [tuple(v) for v in variants]


def _part_matches(part: str, word: str) -> bool:
    if part == "*":
        return True
    return word.startswith(part[:-1]) if part.endswith("*") else word == part


def _spans(term: str, text: str) -> set[Span]:
    """Character spans where the term occurs in the text, whatever the context."""
    words = list(_WORD.finditer(text.lower().replace("\u2019", "'")))
    found: set[Span] = set()
    for parts in _variants(term):
        for i in range(len(words) - len(parts) + 1):
            window = words[i : i + len(parts)]
            if all(_part_matches(p, w.group()) for p, w in zip(parts, window, strict=True)):
                found.add((window[0].start(), window[-1].end()))
    return found


def _stray_terms(case: FlagCase) -> list[str]:
    """Flag-raising terms of any list found in the text apart from the labelled phrase."""
    start, end = case.span
    return [
        f"{measure}: {case.text[a:b]!r}"
        for measure, term, flags in TERMS
        if flags
        for a, b in _spans(term, case.text)
        if b <= start or a >= end
    ]


def test_flag_cases_have_enough_of_every_category_and_both_labels() -> None:
    data = load_flag_cases()
    assert len(data.cases) >= MIN_CASES
    counts = data.counts()
    for category, cases in data.by_category().items():
        assert len(cases) >= MIN_PER_CATEGORY, category
        true_share = counts[category, True] / len(cases)
        assert 0.4 <= true_share <= 0.6, f"{category}: {true_share:.0%} true uses"


def test_flag_categories_are_the_bias_checks_flag_measures() -> None:
    assert set(FLAG_CATEGORIES) == set(FLAG_MEASURES.values())


def test_every_phrase_occurs_in_its_text_at_its_span() -> None:
    for case in load_flag_cases().cases:
        start, end = case.span
        assert case.text[start:end] == case.phrase, case.id


def test_every_phrase_is_a_term_of_its_categorys_word_list() -> None:
    for case in load_flag_cases().cases:
        listed = (
            case.span in _spans(term, case.text)
            for measure, term, _ in TERMS
            if measure == case.category
        )
        assert any(listed), f"{case.id}: {case.phrase!r} is no term of {case.category}"


def test_no_other_flag_raising_term_occurs_outside_the_phrase() -> None:
    stray = {case.id: found for case in load_flag_cases().cases if (found := _stray_terms(case))}
    assert not stray


def test_no_two_flag_cases_share_a_text() -> None:
    texts = [case.text.casefold() for case in load_flag_cases().cases]
    assert len(set(texts)) == len(texts)


def test_sentence_splits_cover_every_kind_the_issue_names() -> None:
    data = load_sentence_splits()
    assert len(data.cases) >= MIN_SPLITS
    texts = "\n".join(case.text for case in data.cases)
    kinds = {
        "titles": r"\b(?:Ms|Mr|Mrs|Dr|Prof)\. [A-Z]",
        "initials": r"\b[A-Z]\. [A-Z]\. [A-Z][a-z]",
        "abbreviations": r"\b(?:e\.g|i\.e|etc|vs|Inc|Jan|approx)\.",
        "decimals and versions": r"\d\.\d|v\d+\.\d+\.\d+|\$\d+\.\d+M",
        "bullets": r"(?m)^\s*(?:[-*\u2022]|\d+[.)]) ",
        "quotes": r"[\"\u201c]",
        "ellipses": r"\.\.\.|\u2026",
        "question and exclamation marks": r"[?!]",
    }
    missing = [kind for kind, pattern in kinds.items() if not re.search(pattern, texts)]
    assert not missing
    assert sum(len(case.sentences) > 1 for case in data.cases) >= MIN_SPLITS // 2


def _write(path: Path, *rows: object) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


HEADER = {"_source": "written for this test", "_labels": "as in flag_cases.jsonl"}
CASE = {
    "id": "crit-001",
    "category": "personality_criticism",
    "text": "Ana can be abrasive in reviews.",
    "phrase": "abrasive",
    "biased_use": True,
    "note": "describes her temperament",
}


def test_a_well_formed_flag_file_loads_with_the_phrase_span(tmp_path: Path) -> None:
    data = load_flag_cases(_write(tmp_path / "cases.jsonl", HEADER, CASE))
    assert [case.span for case in data.cases] == [(11, 19)]
    assert data.header.source == "written for this test"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([HEADER, CASE, {**CASE, "text": "Ana is abrasive."}], r"line 3: id: 'crit-001' repeats"),
        ([HEADER, {**CASE, "phrase": "bossy"}], r"line 2: phrase: .*'bossy' does not occur"),
        ([HEADER, {**CASE, "phrase": "Abrasive"}], r"line 2: phrase: .*'Abrasive' does not occur"),
        ([HEADER, {**CASE, "phrase": "abras"}], r"line 2: phrase: .*'abras' does not occur"),
        (
            [HEADER, {**CASE, "text": "abrasive and abrasive"}],
            r"line 2: phrase: .*'abrasive' occurs 2 times",
        ),
        ([HEADER, {**CASE, "category": "agentic"}], r"line 2: category: Input should be"),
        ([HEADER, {**CASE, "biased_use": "yes"}], r"line 2: biased_use: Input should be"),
        ([HEADER, {**CASE, "id": "Crit 1"}], r"line 2: id: String should match"),
        ([HEADER, {**CASE, "extra": 1}], r"line 2: extra: Extra inputs"),
        ([HEADER, {k: v for k, v in CASE.items() if k != "note"}], r"line 2: note: Field req"),
        ([CASE], r"line 1: _source: Field required"),
        ([HEADER, ["not", "an", "object"]], r"line 2: not a JSON object"),
    ],
)
def test_the_flag_loader_refuses_bad_rows_naming_line_and_field(
    tmp_path: Path, rows: list[object], expected: str
) -> None:
    with pytest.raises(LabelledDataError, match=expected) as refused:
        load_flag_cases(_write(tmp_path / "cases.jsonl", *rows))
    assert refused.value.field is not None
    assert refused.value.field.startswith("cases.jsonl")


def test_the_loader_refuses_broken_json_repeated_keys_and_unreadable_files(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(HEADER) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(LabelledDataError, match=r"line 2: not a JSON object"):
        load_flag_cases(path)
    path.write_text(json.dumps(HEADER) + '\n{"id": "a-001", "id": "a-002"}\n', encoding="utf-8")
    with pytest.raises(LabelledDataError, match=r"line 2: .*key 'id' repeats"):
        load_flag_cases(path)
    with pytest.raises(LabelledDataError, match="no such file"):
        load_flag_cases(tmp_path / "absent.jsonl")
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(LabelledDataError, match="not UTF-8"):
        load_flag_cases(path)
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(LabelledDataError, match="empty"):
        load_flag_cases(path)


SPLIT = {"id": "split-001", "text": "Mr. Haddad led it. He closed it.", "sentences": []}


@pytest.mark.parametrize(
    ("sentences", "expected"),
    [
        (["Mr. Haddad led it."], r"text after the last sentence"),
        (["Mr. Haddad led it.", "He closed it.", "He closed it."], r"sentence 2 is not in the"),
        (["Haddad led it.", "He closed it."], r"text before sentence 0"),
        (["Mr. Haddad led it. ", "He closed it."], r"white space around it"),
        (["Mr. Haddad led it.", 3], r"sentences\.1: Input should be a valid string"),
        ([], r"sentences: .*at least 1"),
    ],
)
def test_the_split_loader_refuses_sentences_that_do_not_cover_the_text(
    tmp_path: Path, sentences: list[object], expected: str
) -> None:
    path = _write(tmp_path / "splits.jsonl", HEADER, {**SPLIT, "sentences": sentences})
    with pytest.raises(LabelledDataError, match=expected):
        load_sentence_splits(path)


def test_list_items_are_sentences_without_their_markers(tmp_path: Path) -> None:
    text = "Highlights:\n- Cut cost by 30%.\n2) Led the migration"
    sentences = ["Highlights:", "Cut cost by 30%.", "Led the migration"]
    row = {**SPLIT, "text": text, "sentences": sentences}
    path = _write(tmp_path / "splits.jsonl", HEADER, row)
    assert load_sentence_splits(path).cases[0].sentences == tuple(sentences)


# ---- held-out sets: written later, by a writer who had not seen the sense rules

MIN_HOLDOUT_CASES = 180
MIN_HOLDOUT_PER_CATEGORY = 30
MIN_AGENCY_HOLDOUT = 120
MIN_ORDINARY_DRAFTS = 60


def _flag_raising_spans(text: str) -> set[Span]:
    return {span for _, term, flags in TERMS if flags for span in _spans(term, text)}


def test_holdout_flag_cases_cover_every_category_with_both_labels() -> None:
    data = load_flag_cases(FLAG_HOLDOUT_PATH)
    assert len(data.cases) >= MIN_HOLDOUT_CASES
    counts = data.counts()
    for category, cases in data.by_category().items():
        assert len(cases) >= MIN_HOLDOUT_PER_CATEGORY, category
        true_share = counts[category, True] / len(cases)
        assert 0.4 <= true_share <= 0.6, f"{category}: {true_share:.0%} true uses"


def test_holdout_phrases_are_flag_raising_terms_with_nothing_else_flaggable() -> None:
    """As in the development set, and stricter: the header says every phrase is a term
    that raises a flag, so a miss is the sense rule's and not the list's."""
    wrong: dict[str, str] = {}
    stray: dict[str, list[str]] = {}
    for case in load_flag_cases(FLAG_HOLDOUT_PATH).cases:
        terms = (t for measure, t, flags in TERMS if measure == case.category and flags)
        if not any(case.span in _spans(term, case.text) for term in terms):
            wrong[case.id] = case.phrase
        if found := _stray_terms(case):
            stray[case.id] = found
    assert not wrong
    assert not stray


def test_holdout_flag_cases_share_no_id_or_text_with_the_development_set() -> None:
    held = load_flag_cases(FLAG_HOLDOUT_PATH).cases
    developed = load_flag_cases().cases
    texts = [case.text.casefold() for case in held]
    assert len(set(texts)) == len(texts)
    assert not set(texts) & {case.text.casefold() for case in developed}
    assert not {case.id for case in held} & {case.id for case in developed}


def test_agency_holdout_is_balanced_with_a_few_mixed_and_new_texts() -> None:
    held = load_agency_cases(AGENCY_HOLDOUT_PATH).cases
    assert len(held) >= MIN_AGENCY_HOLDOUT
    kept = [case for case in held if not case.mixed]
    agentic = sum(case.label == "agentic" for case in kept)
    assert 0.4 <= agentic / len(kept) <= 0.6
    assert 3 <= len(held) - len(kept) <= len(held) // 10
    for label in ("agentic", "communal"):
        assert len({case.note for case in kept if case.label == label}) >= 8, label
    developed = load_agency_cases(AGENCY_CASES_PATH).cases
    assert not {c.text.casefold() for c in held} & {c.text.casefold() for c in developed}
    assert not {c.id for c in held} & {c.id for c in developed}
    unnamed = [c.id for c in held if c.name and c.name.split()[0] not in c.text]
    assert not unnamed


def test_ordinary_drafts_are_review_texts_of_every_kind_and_4_to_10_sentences() -> None:
    data = load_ordinary_drafts()
    assert len(data.cases) >= MIN_ORDINARY_DRAFTS
    kinds = {kind: sum(d.kind == kind for d in data.cases) for kind in REVIEW_TEXT_KINDS}
    assert min(kinds.values()) >= 10, kinds
    lengths = {d.id: len(split_line(d.text)) for d in data.cases}
    assert {i: n for i, n in lengths.items() if not 4 <= n <= 10} == {}
    texts = [d.text.casefold() for d in data.cases]
    assert len(set(texts)) == len(texts)
    assert sum(bool(d.lookalikes) for d in data.cases) >= len(data.cases) // 2


def test_every_flag_raising_term_in_an_ordinary_draft_is_a_declared_lookalike() -> None:
    """The drafts are unbiased, so any list term in one must be a look-alike the draft
    names (and a reader checks); and every named look-alike is such a term."""
    undeclared: dict[str, list[str]] = {}
    idle: dict[str, list[str]] = {}
    for draft in load_ordinary_drafts().cases:
        declared = [
            (start, start + len(phrase))
            for phrase in draft.lookalikes
            for start in _occurrences_in(phrase, draft.text)
        ]
        found = _flag_raising_spans(draft.text)
        if loose := [draft.text[a:b] for a, b in found if not _inside_any((a, b), declared)]:
            undeclared[draft.id] = loose
        if unused := [p for p in draft.lookalikes if not _covers_a_term(p, draft.text, found)]:
            idle[draft.id] = unused
    assert not undeclared
    assert not idle


def test_ordinary_drafts_name_their_people() -> None:
    """Names are passed to the check as the report passes them; each named person is in
    the text (a self-reflection's writer may not be)."""
    missing = {
        d.id: name
        for d in load_ordinary_drafts().cases
        for name in (d.names if d.kind != "self_reflection" else d.others)
        if name.split()[0] not in d.text
    }
    assert not missing


def _occurrences_in(phrase: str, text: str) -> list[int]:
    pattern = re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)")
    return [m.start() for m in pattern.finditer(text)]


def _inside_any(span: Span, spans: list[Span]) -> bool:
    return any(a <= span[0] and span[1] <= b for a, b in spans)


def _covers_a_term(phrase: str, text: str, found: set[Span]) -> bool:
    spans = [(s, s + len(phrase)) for s in _occurrences_in(phrase, text)]
    return any(_inside_any(term, spans) for term in found)


DRAFT = {
    "id": "draft-001",
    "kind": "peer_feedback",
    "subject": "Ana Lima",
    "text": "Ana's talk appeared in the programme.",
    "lookalikes": ["appeared"],
    "note": "appeared in = was listed in",
}


def test_a_well_formed_ordinary_draft_loads_with_its_names(tmp_path: Path) -> None:
    row = {**DRAFT, "others": ["Bo Chen"]}
    data = load_ordinary_drafts(_write(tmp_path / "drafts.jsonl", HEADER, row))
    assert isinstance(data.cases[0], OrdinaryDraft)
    assert data.cases[0].names == ("Ana Lima", "Bo Chen")
    assert data.cases[0].lookalikes == ("appeared",)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({**DRAFT, "lookalikes": ["appear"]}, r"line 2: lookalikes: .*'appear' does not occur"),
        ({**DRAFT, "lookalikes": ["Appeared"]}, r"line 2: lookalikes: .*'Appeared' does not"),
        ({**DRAFT, "lookalikes": [" "]}, r"line 2: lookalikes: .*an item is empty"),
        ({**DRAFT, "lookalikes": "appeared"}, r"line 2: lookalikes: Input should be"),
        ({**DRAFT, "others": [""]}, r"line 2: others: .*an item is empty"),
        ({**DRAFT, "kind": "calibration_summary"}, r"line 2: kind: Input should be"),
        ({**DRAFT, "subject": ""}, r"line 2: subject: String should have at least"),
        ({k: v for k, v in DRAFT.items() if k != "lookalikes"}, r"line 2: lookalikes: Field req"),
        ({**DRAFT, "biased_use": False}, r"line 2: biased_use: Extra inputs"),
    ],
)
def test_the_draft_loader_refuses_bad_rows_naming_line_and_field(
    tmp_path: Path, row: dict[str, object], expected: str
) -> None:
    with pytest.raises(LabelledDataError, match=expected) as refused:
        load_ordinary_drafts(_write(tmp_path / "drafts.jsonl", HEADER, row))
    assert refused.value.field is not None
    assert refused.value.field.startswith("drafts.jsonl:2")
