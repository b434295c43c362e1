"""The cycle report reuses the language profiles that checks kept (issue 14): a version is
profiled once, a report built from stored profiles is the report built by profiling every
draft, and a profile kept under other rules, other names or none at all is read again."""

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, select, text, update

from domain.periods import parse_period
from evals.synthetic_org import generate_org
from service.bias import language
from service.bias import report as report_module
from service.bias.gate import check_draft, people_names, subject_name
from service.bias.language import LanguageProfile, language_version, profile_draft
from service.bias.nlp import SenseParser
from service.bias.report import build_report
from service.bias.report_model import LanguageFinding
from service.bias.stored_language import StoredLanguage, language_key, stored_language
from service.db.models import Draft, DraftCheck
from service.drafting.run import Drafting, draft_cycle, offline_drafter
from service.drafting.store import load_version, save_edit
from service.drafting.structure import DraftBody, DraftSentence
from service.ingest.progress import NoProgress
from service.ingest.run import Ingestor, ingest_path
from tests import test_bias_gate

H1 = parse_period("2026-H1")
PEOPLE = 60
EDITED = 12  # women's and men's drafts edited each
ABRASIVE = "She can be abrasive in design reviews."
PLAIN = "He ran the design reviews of the quarter."

draft_id = test_bias_gate.draft_id  # Cy's manager feedback on the fixture org


@pytest.fixture
def profiled(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many drafts each report profiled (the real `profile_drafts`, counted)."""
    counts: list[int] = []
    real = language.profile_drafts  # what the report calls

    def counting(
        drafts: Sequence[tuple[DraftBody, str]],
        names: frozenset[str] = frozenset(),
        *,
        parser: SenseParser | None = None,
    ) -> list[LanguageProfile]:
        counts.append(len(drafts))
        return real(drafts, names, parser=parser)

    monkeypatch.setattr(report_module, "profile_drafts", counting)
    return counts


def _edit(conn: Connection, draft: int, sentence: str) -> None:
    """A new version with `sentence` added to the first section, citing what its first
    sentence cites."""
    current = load_version(conn, draft)
    body = current.body.model_copy(deep=True)
    first = body.sections[0]
    evidence = first.sentences[0].evidence if first.sentences else []
    first.sentences.append(DraftSentence(text=sentence, evidence=list(evidence)))
    save_edit(conn, draft_id=draft, based_on=current.version, body=body, author="editor")


def _feedback_by_gender(conn: Connection, gender: str) -> list[int]:
    return list(
        conn.execute(
            text(
                "SELECT d.id FROM drafts d JOIN restricted.demographics g"
                " ON g.person_id = d.subject_id AND g.attribute = 'gender'"
                " WHERE d.kind = 'manager_feedback' AND g.value = :gender ORDER BY d.id"
            ),
            {"gender": gender},
        ).scalars()
    )


def test_reports_from_stored_profiles_equal_reports_that_profile_every_draft(
    engine: Engine,
    ingestor: Ingestor,
    tmp_path: Path,
    sense_parser: SenseParser,
    profiled: list[int],
) -> None:
    generate_org(tmp_path / "org", people=PEOPLE, seed=3)
    ingest_path(ingestor, tmp_path / "org")
    run = Drafting(engine, ingestor.settings, ingestor.embedder(), offline_drafter(), "test")
    drafted = asyncio.run(
        draft_cycle(
            run, H1, ("self_reflection", "manager_feedback"), concurrency=2, progress=NoProgress()
        )
    )
    assert not drafted.failed and len(drafted.drafted) > PEOPLE
    with engine.begin() as conn:  # edits that raise a language finding with phrases
        for draft in _feedback_by_gender(conn, "woman")[:EDITED]:
            _edit(conn, draft, ABRASIVE)
        for draft in _feedback_by_gender(conn, "man")[:EDITED]:
            _edit(conn, draft, PLAIN)
        drafts = conn.execute(select(func.count()).select_from(Draft)).scalar_one()

    with engine.begin() as conn:
        first = build_report(conn, H1, actor="hr", parser=sense_parser)
    with engine.begin() as conn:
        second = build_report(conn, H1, actor="hr", parser=sense_parser)

    assert profiled == [drafts, 0]
    assert second.report == first.report
    assert second.report.model_dump_json() == first.report.model_dump_json()
    phrased = [f for f in first.report.findings if isinstance(f, LanguageFinding) and f.phrases]
    assert phrased and "abrasive" in phrased[0].phrases
    assert sum(not c.suppressed for c in first.report.language) > 100

    with engine.begin() as conn:  # 5 more edits: only those are profiled
        edited = _feedback_by_gender(conn, "woman")[EDITED : EDITED + 5]
        for draft in edited:
            _edit(conn, draft, ABRASIVE)
    with engine.begin() as conn:
        mixed = build_report(conn, H1, actor="hr", parser=sense_parser)
    with engine.begin() as conn:  # every kept profile dropped: all profiled again
        conn.execute(update(DraftCheck).values(language=None))
        full = build_report(conn, H1, actor="hr", parser=sense_parser)

    assert profiled[2:] == [len(edited), drafts]
    assert mixed.report.model_dump_json() == full.report.model_dump_json()
    assert mixed.report != first.report  # the edits are seen


def test_a_check_by_hand_keeps_the_profile_the_report_then_reuses(
    engine: Engine, draft_id: int, sense_parser: SenseParser, profiled: list[int]
) -> None:
    with engine.begin() as conn:
        result = check_draft(conn, draft_id, actor="bo", parser=sense_parser)
        kept = conn.execute(select(DraftCheck.language)).scalar_one()
        key = language_key(sense_parser, people_names(conn))
    with engine.begin() as conn:
        build_report(conn, H1, actor="hr", parser=sense_parser)
        checks = conn.execute(select(DraftCheck.id, DraftCheck.language)).all()

    stored = StoredLanguage.model_validate(kept)
    assert (stored.revision, stored.names) == (key.revision, key.names)
    assert stored.measures == result.measures
    assert [f.phrase.lower() for f in stored.flags] == ["abrasive"]
    assert profiled == [0]
    assert [(c.id, c.language) for c in checks] == [(result.check_id, kept)]


def _other_rules(conn: Connection) -> None:
    """The kept profile as other rules read it: another revision, other measures."""
    kept = StoredLanguage.model_validate(conn.execute(select(DraftCheck.language)).scalar_one())
    measures = {**kept.measures, "words": 999.0}
    other = kept.model_copy(update={"revision": "0000", "measures": measures})
    conn.execute(update(DraftCheck).values(language=other.model_dump(mode="json")))


def _old_row(conn: Connection) -> None:
    conn.execute(update(DraftCheck).values(language=None))


@pytest.mark.parametrize("change", [_other_rules, _old_row], ids=["other_rules", "before_0010"])
def test_a_profile_kept_under_other_rules_or_none_is_profiled_again_and_replaced(
    engine: Engine,
    draft_id: int,
    sense_parser: SenseParser,
    profiled: list[int],
    change: Callable[[Connection], None],
) -> None:
    with engine.begin() as conn:
        check_draft(conn, draft_id, actor="bo", parser=sense_parser)
        before = conn.execute(select(DraftCheck.id, DraftCheck.profile, DraftCheck.flags)).one()
        change(conn)
    with engine.begin() as conn:
        build_report(conn, H1, actor="hr", parser=sense_parser)
        after = conn.execute(
            select(DraftCheck.id, DraftCheck.profile, DraftCheck.flags, DraftCheck.language)
        ).one()
        expected = _profile_now(conn, draft_id, sense_parser)

    assert profiled == [1]
    assert (after.id, after.profile, after.flags) == tuple(before)  # the check as it was
    assert after.language == stored_language(
        expected, language_key(sense_parser, people_names_of(engine))
    )
    assert after.language["measures"]["words"] == before.profile["words"]


def test_a_new_colleagues_name_makes_the_report_profile_again(
    engine: Engine,
    draft_id: int,
    ingestor: Ingestor,
    org_dir: Path,
    sense_parser: SenseParser,
    profiled: list[int],
) -> None:
    """A name is not a descriptor: a person called Harsh changes what reads as harsh."""
    with engine.begin() as conn:
        check_draft(conn, draft_id, actor="bo", parser=sense_parser)
    with (org_dir / "people.csv").open("a", encoding="utf-8") as handle:
        handle.write(
            "E009,Harsh Abrasive,harsh@example.com,E001,L3,engineering,Payments,Remote,"
            "2024-01-10,man,asian,30_39\n"
        )
    ingest_path(ingestor, org_dir)
    with engine.begin() as conn:
        build_report(conn, H1, actor="hr", parser=sense_parser)
        build_report(conn, H1, actor="hr", parser=sense_parser)

    assert profiled == [1, 0]


def test_the_language_version_names_the_revision_and_the_spacy_model(
    sense_parser: SenseParser, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = language_version(sense_parser)
    other_model = SenseParser(object(), "en_core_web_sm-9.9.9")

    assert language_version(sense_parser) == today
    assert language_version(other_model) != today
    monkeypatch.setattr(language, "LANGUAGE_REVISION", language.LANGUAGE_REVISION + "+1")
    assert language_version(sense_parser) != today


def people_names_of(engine: Engine) -> frozenset[str]:
    with engine.connect() as conn:
        return people_names(conn)


def _profile_now(conn: Connection, draft: int, parser: SenseParser) -> LanguageProfile:
    """The draft's current version profiled as a check profiles it."""
    return profile_draft(
        load_version(conn, draft).body,
        people_names(conn),
        parser=parser,
        subject=subject_name(conn, draft),
    )
