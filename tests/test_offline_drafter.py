"""The offline drafter: grounded, in the voice of its kind, deterministic, pronoun-free."""

import dataclasses
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from domain.periods import parse_period
from evals.citation_support import supports
from retrieval.evidence import EvidenceItem, EvidencePack
from retrieval.search import retrieve_evidence
from service.db.models import Person
from service.drafting.citations import check_citations
from service.drafting.offline import OFFLINE_LABEL, draft_offline
from service.drafting.structure import DRAFT_KINDS, DraftBody
from service.drafting.subject import DraftSubject
from service.ingest.run import Ingestor, ingest_path
from tests.conftest import CountingEmbedder
from tests.factories import evidence_item

FIXTURES = Path(__file__).parent / "fixtures"
GENDERED = re.compile(r"\b(?:he|she|him|her|his|hers|himself|herself)\b", re.IGNORECASE)


def _item(number: int, kind: str, text: str, *, title: str | None = None) -> EvidenceItem:
    return evidence_item(number, f"{title}\n{text}" if title else text, kind=kind, title=title)


ITEMS = [
    _item(
        1,
        "work_record",
        "Moved card payments from the legacy ledger to the new double-entry service. "
        "Failed payment retries dropped from 4.1% to 1.3% in the first two weeks.\n\n"
        "Follow-up work is tracked in PAY-803.",
        title="Ledger migration for card payments",
    ),
    _item(
        2,
        "feedback",
        "Keep doing: Yuki explained every threshold of the settlement alerts to the team.\n\n"
        "One thing to work on: Yuki's design reviews started late, and her rollout plan "
        "reached the team a week before launch.",
    ),
    _item(
        3,
        "feedback",
        "Writing this after the Lantern review. Yuki caught two stuck settlement batches "
        "before customers noticed. I'd like Yuki to share the runbook with the wider team.",
    ),
    _item(
        4,
        "goal",
        "Objective: Bring payout failures under 0.5% by June 30.\n\n"
        "Key results:\n- Monthly reliability report published",
        title="Own payout reliability",
    ),
    _item(
        5,
        "one_on_one",
        "- Career: Yuki wants to lead the guild talk on the rollback drill.\n"
        "- Next steps: Yuki to draft the guild talk outline",
    ),
    _item(
        6,
        "recognition",
        "Yuki rebuilt the payout export overnight when the bank changed its file format, so "
        "quarter-end close finished on time.",
        title="Saved the quarter-end close",
    ),
]


def _pack(items: list[EvidenceItem], kind: str = "self_reflection") -> EvidencePack:
    return EvidencePack(
        subject_id=1,
        period=parse_period("2026-H1"),
        draft_kind=kind,
        ranking="hybrid",
        token_budget=2000,
        candidates=len(items),
        items=list(items),
    )


def _subject(kind: str, name: str = "Yuki Tanaka") -> DraftSubject:
    return DraftSubject(
        name=name, first_name=name.split()[0], level="L4", job_family="engineering", kind=kind
    )


def _draft(kind: str) -> DraftBody:
    return draft_offline(_pack(ITEMS, kind), _subject(kind))


def _section(body: DraftBody, heading: str) -> list[str]:
    return next([t.text for t in s.sentences] for s in body.sections if s.heading == heading)


@pytest.mark.parametrize("kind", DRAFT_KINDS)
def test_every_sentence_cites_items_of_its_own_pack(kind: str) -> None:
    body = _draft(kind)
    ids = {item.id for item in ITEMS}
    assert body.sentences()
    for sentence in body.sentences():
        assert sentence.evidence and set(sentence.evidence) <= ids, sentence
    _, report = check_citations(body, ids)
    assert report.supported_share == 1.0


@pytest.mark.parametrize("kind", DRAFT_KINDS)
def test_each_sentence_is_supported_by_the_item_it_cites(kind: str) -> None:
    texts = {item.id: item.text for item in ITEMS}
    for sentence in _draft(kind).sentences():
        assert all(supports(sentence.text, texts[c], ["Yuki", "Tanaka"]) for c in sentence.evidence)


def test_a_self_reflection_speaks_in_the_first_person() -> None:
    body = _draft("self_reflection")
    accomplished = _section(body, "What I accomplished")
    assert accomplished[0].startswith("I moved card payments from the legacy ledger")
    assert "4.1% to 1.3%" in accomplished[0]
    texts = [s.text for s in body.sentences()]
    assert "I explained every threshold of the settlement alerts to the team." in texts
    assert not any(re.match(r"Yuki\b", t) for t in texts)  # never the subject of a sentence


def test_manager_feedback_speaks_to_the_report() -> None:
    body = _draft("manager_feedback")
    assert _section(body, "What you delivered")[0].startswith("You moved card payments")
    strengths = _section(body, "Strengths")
    assert "You explained every threshold of the settlement alerts to the team." in strengths
    assert "You want to lead the guild talk on the rollback drill." in _section(
        body, "From our 1:1s"
    )
    growth = _section(body, "Growth areas")
    assert growth == [
        "A colleague wrote: \u201cI'd like Yuki to share the runbook with the wider team.\u201d"
    ]


def test_a_promotion_packet_names_the_person() -> None:
    body = _draft("promotion_packet")
    assert [s.heading for s in body.sections][:2] == ["Scope", "Impact"]
    impact = _section(body, "Impact")
    assert impact[0].startswith("Yuki moved card payments")
    assert not any(re.match(r"(?:I|You)\b", s.text) for s in body.sentences())


def test_a_calibration_summary_is_a_handful_of_sentences() -> None:
    body = _draft("calibration_summary")
    assert 3 <= len(body.sentences()) <= 6


def test_growth_feedback_lands_in_the_growth_section() -> None:
    body = _draft("manager_feedback")
    growth = " ".join(_section(body, "Growth areas"))
    assert "share the runbook" in growth
    strengths = " ".join(_section(body, "Strengths"))
    assert "share the runbook" not in strengths and "started late" not in strengths


def test_a_next_step_from_a_1_1_is_the_persons_own() -> None:
    items = [
        _item(
            1, "one_on_one", "- Next steps: Yuki to draft the guild talk outline; Bo to book a room"
        )
    ]
    body = draft_offline(_pack(items, "manager_feedback"), _subject("manager_feedback"))
    assert body.sentences()[0].text == "A next step for you: draft the guild talk outline."


def test_boilerplate_is_left_out() -> None:
    text = _draft("self_reflection").as_text()
    assert "Writing this after" not in text and "tracked in PAY-803" not in text


@pytest.mark.parametrize("kind", DRAFT_KINDS)
def test_no_gendered_word_reaches_a_draft(kind: str) -> None:
    assert not GENDERED.search(_draft(kind).as_text())


def test_the_subject_has_no_demographic_attributes() -> None:
    fields = {f.name for f in dataclasses.fields(DraftSubject)}
    assert fields == {"name", "first_name", "level", "job_family", "kind"}


def test_the_same_pack_gives_the_same_draft() -> None:
    for kind in DRAFT_KINDS:
        assert _draft(kind) == _draft(kind)


def test_an_empty_pack_gives_no_sections() -> None:
    assert draft_offline(_pack([]), _subject("self_reflection")).sections == []


def test_the_offline_label_is_kept_out_of_the_draft() -> None:
    assert OFFLINE_LABEL.startswith("Offline draft")
    assert OFFLINE_LABEL not in _draft("self_reflection").as_text()


def test_an_unknown_kind_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="haiku"):
        draft_offline(_pack(ITEMS), _subject("haiku"))


def test_a_real_pack_drafts_with_every_sentence_supported(
    engine: Engine, ingestor: Ingestor, embedder: CountingEmbedder
) -> None:
    ingest_path(ingestor, FIXTURES / "org")
    with engine.connect() as conn:
        person = conn.execute(
            select(Person.id, Person.name).where(Person.employee_id == "E003")
        ).one()
        pack = retrieve_evidence(
            conn, embedder, subject_id=person.id, period=None, draft_kind="self_reflection"
        )
    body = draft_offline(pack, _subject("self_reflection", person.name))
    _, report = check_citations(body, [item.id for item in pack.items])
    assert report.sentences and report.supported_share == 1.0
    assert "I moved card payments" in body.as_text()
