"""The bias stage on real Postgres: checks, the approval gate, rating finalisation, the
cycle report and its suppression of small groups."""

import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from domain.periods import parse_period
from service.bias.gate import (
    GateRefused,
    acknowledge_flag,
    approve_draft,
    check_draft,
    open_flags,
)
from service.bias.nlp import SenseParser
from service.bias.report import build_report
from service.db.models import AuditEvent, Draft, Rating
from service.drafting.citations import check_citations
from service.drafting.store import save_edit, save_generated
from service.drafting.structure import DraftBody, DraftSection, DraftSentence
from service.ingest.run import Ingestor, ingest_path
from service.ratings.workflow import NotChecked, finalise_rating

ABRASIVE = "Cy can be abrasive in design reviews."
NEUTRAL = "Cy cut failed retries from 4.1% to 1.3% after the ledger move."


def body(*sentences: str) -> DraftBody:
    return DraftBody(
        sections=[
            DraftSection(
                heading="Feedback",
                sentences=[DraftSentence(text=s, evidence=["E1"]) for s in sentences],
            )
        ]
    )


@pytest.fixture
def draft_id(engine: Engine, ingestor: Ingestor, org_dir: Path) -> int:
    """Cy's manager feedback for 2026-H1, with one personality-focused criticism."""
    ingest_path(ingestor, org_dir)
    text = body(NEUTRAL, ABRASIVE)
    checked, report = check_citations(text, ["E1"])
    with engine.begin() as conn:
        cy = conn.execute(select(Rating.person_id).where(Rating.rating == 4)).scalars().first()
        assert cy is not None
        draft, _ = save_generated(
            conn,
            subject_id=cy,
            kind="manager_feedback",
            period="2026-H1",
            cycle_id=None,
            body=checked,
            report=report,
            origin="llm",
            author="test",
            provenance={"evidence": [{"id": "E1", "text": "ledger"}]},
        )
    return draft


def actions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars())


def test_approval_is_refused_without_a_check_of_the_current_version(
    engine: Engine, draft_id: int
) -> None:
    with engine.begin() as conn, pytest.raises(GateRefused, match="needs a bias check"):
        approve_draft(conn, draft_id, by="bo.chen@example.com")


def test_an_open_flag_blocks_approval_until_acknowledged_with_a_reason(
    engine: Engine, draft_id: int, sense_parser: SenseParser
) -> None:
    with engine.begin() as conn:
        result = check_draft(conn, draft_id, actor="test", parser=sense_parser)
    flag = next(f for f in result.flags if f["phrase"].lower() == "abrasive")
    assert flag["measure"] == "personality_criticism" and flag["suggestion"]

    with engine.begin() as conn, pytest.raises(GateRefused, match="open flags"):
        approve_draft(conn, draft_id, by="bo.chen@example.com")
    with engine.begin() as conn, pytest.raises(GateRefused, match="needs a reason"):
        acknowledge_flag(conn, draft_id, flag["key"], by="bo.chen@example.com", reason="  ")
    with engine.begin() as conn:
        for open_flag in open_flags(conn, draft_id):
            acknowledge_flag(
                conn,
                draft_id,
                open_flag["key"],
                by="bo.chen@example.com",
                reason="Quoted from two peers; discussed with Cy in our 1:1.",
            )
        approve_draft(conn, draft_id, by="bo.chen@example.com")

    with engine.connect() as conn:
        assert conn.execute(select(Draft.status).where(Draft.id == draft_id)).scalar() == (
            "approved"
        )
    assert {"draft.checked", "flag.acknowledged", "draft.approved"} <= set(actions(engine))


def test_checking_approved_text_again_records_the_check_and_keeps_the_approval(
    engine: Engine, draft_id: int, sense_parser: SenseParser
) -> None:
    with engine.begin() as conn:
        check_draft(conn, draft_id, actor="test", parser=sense_parser)
        for open_flag in open_flags(conn, draft_id):
            acknowledge_flag(conn, draft_id, open_flag["key"], by="bo", reason="quoted peers")
        approve_draft(conn, draft_id, by="bo")
        again = check_draft(conn, draft_id, actor="test", parser=sense_parser)

    with engine.connect() as conn:
        assert conn.execute(select(Draft.status).where(Draft.id == draft_id)).scalar() == (
            "approved"
        )
    assert again.flags


def test_an_edit_after_the_check_needs_a_new_check_and_a_fixed_text_passes(
    engine: Engine, draft_id: int, sense_parser: SenseParser
) -> None:
    with engine.begin() as conn:
        check_draft(conn, draft_id, actor="test", parser=sense_parser)
        save_edit(conn, draft_id=draft_id, based_on=1, body=body(NEUTRAL), author="bo")
    with engine.begin() as conn, pytest.raises(GateRefused, match="current version 2"):
        approve_draft(conn, draft_id, by="bo")

    with engine.begin() as conn:
        recheck = check_draft(conn, draft_id, actor="test", parser=sense_parser)
        approve_draft(conn, draft_id, by="bo")

    assert recheck.version == 2
    assert not [f for f in recheck.flags if f["measure"] == "personality_criticism"]


def test_a_rating_is_finalised_only_after_the_cycle_report_saw_the_ratings(
    engine: Engine, draft_id: int, sense_parser: SenseParser
) -> None:
    with engine.connect() as conn:
        person = conn.execute(select(Rating.person_id)).scalars().first()
    assert person is not None
    with engine.begin() as conn, pytest.raises(NotChecked, match="run the bias report"):
        finalise_rating(conn, "2026-H1", person, by="ana")
    with engine.begin() as conn:
        build_report(conn, parse_period("2026-H1"), actor="hr", parser=sense_parser)
    with engine.begin() as conn:
        finalise_rating(conn, "2026-H1", person, by="ana")
        conn.execute(update(Rating).values(rating=Rating.rating))  # a change after the report
    with engine.begin() as conn, pytest.raises(NotChecked, match="run the bias report"):
        finalise_rating(conn, "2026-H1", person, by="ana")
    assert "rating.finalised" in actions(engine)


def test_the_report_checks_drafts_suppresses_small_groups_and_is_versioned(
    engine: Engine, draft_id: int, caplog: pytest.LogCaptureFixture, sense_parser: SenseParser
) -> None:
    caplog.set_level(logging.DEBUG)
    with engine.begin() as conn:
        first = build_report(conn, parse_period("2026-H1"), actor="hr", parser=sense_parser)
        second = build_report(conn, parse_period("2026-H1"), actor="hr", parser=sense_parser)

    assert (first.version, second.version) == (1, 2)
    assert first.data_seen.drafts == 1
    assert set(first.data_seen.attributes) == {"gender", "ethnicity", "age_band"}
    assert all(c.suppressed for c in first.report.language)
    for parts in first.report.ratings.by_attribute.values():
        assert all(g.suppressed and g.mean is None for g in parts.distribution.groups)
    assert not [f for f in first.report.findings if f.what in ("language", "adverse_impact")]
    with engine.connect() as conn:
        assert conn.execute(select(Draft.status).where(Draft.id == draft_id)).scalar() == (
            "checked"
        )
    logged = caplog.text.lower()
    assert "hispanic_latino" not in logged and "nonbinary" not in logged


LOOK_ALIKES = (
    "Her designs appeared in the launch keynote.",
    "Cy calmed an emotional customer escalation in March.",
    "It was an intense quarter for the payments team.",
)


def test_a_check_keeps_only_flags_whose_phrase_describes_the_person(
    engine: Engine, draft_id: int, sense_parser: SenseParser
) -> None:
    """The word lists alone flag every look-alike; the check passes the parser."""
    with engine.begin() as conn:
        save_edit(
            conn, draft_id=draft_id, based_on=1, body=body(*LOOK_ALIKES, ABRASIVE), author="bo"
        )
        result = check_draft(conn, draft_id, actor="test", parser=sense_parser)
    assert [(f["phrase"].lower(), f["measure"]) for f in result.flags] == [
        ("abrasive", "personality_criticism")
    ]


def test_the_cycle_report_stores_the_same_flags_as_a_check_by_hand(
    engine: Engine, draft_id: int, sense_parser: SenseParser
) -> None:
    with engine.begin() as conn:
        save_edit(
            conn, draft_id=draft_id, based_on=1, body=body(*LOOK_ALIKES, ABRASIVE), author="bo"
        )
    with engine.begin() as conn:
        build_report(conn, parse_period("2026-H1"), actor="hr", parser=sense_parser)
        by_report = open_flags(conn, draft_id)
    with engine.begin() as conn:
        by_hand = check_draft(conn, draft_id, actor="test", parser=sense_parser).flags
    assert by_report == by_hand
    assert [f["phrase"].lower() for f in by_hand] == ["abrasive"]
