"""Peer feedback (issue 16): nominations within their bounds, approval sending requests
with the cycle's questions, answers saved as drafts and submitted once, declines with a
reason, and answers becoming authorless evidence of the subject only from 3 answers on."""

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from domain.errors import Invalid
from domain.phases import FeedbackKind, RequestStatus, TaskKind, TaskStatus
from retrieval.embedding import Embedder
from service.cli import app as cli_app
from service.cycles.nominations import (
    NominationsApproved,
    NoPeerFeedback,
    approve_nominations,
    nominations,
    set_nominations,
)
from service.cycles.peer_feedback import (
    MIN_ANSWERS_SHOWN,
    PEER_SOURCE,
    AnswersIn,
    DeclineIn,
    RequestClosed,
    RequestNotFound,
    Viewer,
    decline,
    peer_feedback_of,
    request_of,
    requests_of,
    save_draft,
    submit,
)
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.db.models import AuditEvent, Chunk, CycleTask, FeedbackRequest, Record
from service.ingest.records import ChunkSettings
from service.settings import get_settings
from tests.cycle_org import PERIOD, CycleOrg, build_cycle_org, setup_body, start_cycle_org

CYCLE = PERIOD.name
CHUNKING = ChunkSettings(max_tokens=200, overlap_tokens=30)
UPWARD = FeedbackKind.UPWARD
GOOD = ["Clear reviews of my designs.", "Share plans earlier.", "Keep pairing with juniors."]


@pytest.fixture
def org(engine: Engine) -> CycleOrg:
    return start_cycle_org(engine)


def _ids(org: CycleOrg, *keys: str) -> list[int]:
    return [org.ids[k] for k in keys]


def _approved_for_bea(engine: Engine, org: CycleOrg) -> dict[str, int]:
    """Bea nominates Al, Ned, Cal and Hana; Mia approves: request id by peer key."""
    with engine.begin() as conn:
        set_nominations(
            conn,
            CYCLE,
            org.ids["bea"],
            _ids(org, "al", "ned", "cal", "hana"),
            actor="bea",
            by_manager=False,
        )
        approve_nominations(conn, CYCLE, org.ids["bea"], actor="mia")
        rows = conn.execute(select(FeedbackRequest.id, FeedbackRequest.peer_id)).all()
    return {org.key_of(r.peer_id): r.id for r in rows}


def _submit(engine: Engine, org: CycleOrg, embedder: Any, request_id: int, who: str) -> None:
    with engine.begin() as conn:
        submit(
            conn,
            request_id,
            org.ids[who],
            AnswersIn(answers=GOOD),
            actor=who,
            embedder=lambda: embedder,
            chunking=CHUNKING,
        )


def test_nominations_hold_their_bounds_with_the_field_named(engine: Engine, org: CycleOrg) -> None:
    bea = org.ids["bea"]
    cases = {
        "named twice": _ids(org, "al", "al", "cal"),
        "yourself": _ids(org, "bea", "al", "cal"),
        "manager": _ids(org, "mia", "al", "cal"),
        "not a participant": _ids(org, "jo", "al", "cal"),
        "3 to 8": list(range(1, 10)),
    }
    for reason, peers in cases.items():
        with engine.begin() as conn, pytest.raises(Invalid) as refused:
            set_nominations(conn, CYCLE, bea, peers, actor="bea", by_manager=False)
        assert refused.value.field == "peers"
        assert reason.split()[0] in str(refused.value) or reason == "named twice", refused.value
    # An incomplete list is a draft; approving it is refused.
    with engine.begin() as conn:
        draft = set_nominations(conn, CYCLE, bea, _ids(org, "al"), actor="bea", by_manager=False)
    assert [p.id for p in draft.peers] == [org.ids["al"]] and not draft.approved
    with engine.begin() as conn, pytest.raises(Invalid, match="3 to 8"):
        approve_nominations(conn, CYCLE, bea, actor="mia")


def test_manager_edits_and_approval_sends_requests_with_the_cycles_questions(
    engine: Engine, org: CycleOrg
) -> None:
    bea = org.ids["bea"]
    with engine.begin() as conn:
        set_nominations(
            conn, CYCLE, bea, _ids(org, "al", "ned", "cal"), actor="bea", by_manager=False
        )
        edited = set_nominations(
            conn, CYCLE, bea, _ids(org, "al", "cal", "hana"), actor="mia", by_manager=True
        )
    assert {p.id: p.added_by_manager for p in edited.peers} == {
        org.ids["al"]: False,
        org.ids["cal"]: False,
        org.ids["hana"]: True,
    }
    with engine.begin() as conn:
        sent = approve_nominations(conn, CYCLE, bea, actor="mia")
        assert sent.requests == 3
        assert nominations(conn, CYCLE, bea).approved
        tasks = {
            (r.kind, r.assignee_id): r.status
            for r in conn.execute(select(CycleTask).where(CycleTask.subject_id == bea))
        }
        actions = conn.execute(select(AuditEvent.action, AuditEvent.actor)).all()
    assert tasks[(TaskKind.APPROVE_NOMINATIONS, org.ids["mia"])] == TaskStatus.DONE
    assert tasks[(TaskKind.NOMINATE_PEERS, bea)] == TaskStatus.DONE
    for peer in ("al", "cal", "hana"):
        assert tasks[(TaskKind.GIVE_PEER_FEEDBACK, org.ids[peer])] == TaskStatus.OPEN
    assert ("nominations.set", "mia") in actions and ("nominations.approved", "mia") in actions
    with engine.connect() as conn:
        lines = requests_of(conn, org.ids["hana"])
        assert [(r.subject_name, str(r.due_on)) for r in lines] == [("Bea Ross", "2026-07-17")]
        request = request_of(conn, lines[0].id, org.ids["hana"])
    assert request.questions[0].startswith("What has this person done well")
    with engine.begin() as conn, pytest.raises(NominationsApproved):
        set_nominations(
            conn, CYCLE, bea, _ids(org, "al", "ned", "cal"), actor="bea", by_manager=False
        )
    with engine.begin() as conn, pytest.raises(NominationsApproved):
        approve_nominations(conn, CYCLE, bea, actor="mia")


def test_a_cycle_without_peer_feedback_or_a_non_participant_has_no_nominations(
    engine: Engine, org: CycleOrg
) -> None:
    with engine.begin() as conn, pytest.raises(NoPeerFeedback) as missing:
        nominations(conn, CYCLE, org.ids["jo"])
    assert missing.value.field == "subject_id"
    with engine.begin() as conn, pytest.raises(NoPeerFeedback) as missing:
        nominations(conn, "2031-H1", org.ids["bea"])
    assert missing.value.field == "cycle"


def test_a_peer_reads_and_answers_only_their_own_request(
    engine: Engine, org: CycleOrg, embedder: Embedder
) -> None:
    requests = _approved_for_bea(engine, org)
    mine = requests["al"]
    for stranger in ("cal", "bea", "mia", "hana", "jo"):
        with engine.begin() as conn, pytest.raises(RequestNotFound):
            request_of(conn, mine, org.ids[stranger])
        with engine.begin() as conn, pytest.raises(RequestNotFound):
            save_draft(conn, mine, org.ids[stranger], AnswersIn(answers=["x"]))
    with engine.begin() as conn:
        saved = save_draft(conn, mine, org.ids["al"], AnswersIn(answers=["Half a tho"]))
    assert saved.answers == ["Half a tho"] and saved.status == RequestStatus.OPEN
    with engine.begin() as conn, pytest.raises(Invalid) as blank:
        submit(
            conn,
            mine,
            org.ids["al"],
            AnswersIn(answers=["Only one"]),
            actor="al",
            embedder=lambda: embedder,
            chunking=CHUNKING,
        )
    assert blank.value.field == "answers[1]"
    _submit(engine, org, embedder, mine, "al")
    with engine.begin() as conn, pytest.raises(RequestClosed):
        save_draft(conn, mine, org.ids["al"], AnswersIn(answers=["changed"]))
    with engine.begin() as conn, pytest.raises(RequestClosed):
        decline(conn, mine, org.ids["al"], DeclineIn(reason="no"), actor="al")
    with engine.connect() as conn:
        assert request_of(conn, mine, org.ids["al"]).answers == GOOD


def test_hostile_answers_are_refused_with_the_field_or_kept_as_text(
    engine: Engine, org: CycleOrg
) -> None:
    request = _approved_for_bea(engine, org)["cal"]
    cal = org.ids["cal"]
    refused = {
        "answers[0]": ["x" * 10_001],
        "answers[1]": ["fine", "bell\x07"],
        "answers": ["a", "b", "c", "d"],
    }
    for field, answers in refused.items():
        with engine.begin() as conn, pytest.raises(Invalid) as error:
            save_draft(conn, request, cal, AnswersIn(answers=answers))
        assert error.value.field == field
    markup = ["<script>alert(1)</script> {{ 7*7 }}", "line one\nline two\ttab"]
    with engine.begin() as conn:
        assert save_draft(conn, request, cal, AnswersIn(answers=markup)).answers == markup
        assert save_draft(conn, request, cal, AnswersIn(answers=["y" * 10_000])).answers
    for reason in ("", "   ", "r" * 501, "nul\x00"):
        with engine.begin() as conn, pytest.raises(Invalid) as error:
            decline(conn, request, cal, DeclineIn(reason=reason), actor="cal")
        assert error.value.field == "reason"


def test_answers_become_authorless_evidence_only_from_three_answers(
    engine: Engine, org: CycleOrg, embedder: Embedder
) -> None:
    requests = _approved_for_bea(engine, org)
    bea = org.ids["bea"]
    with engine.begin() as conn:
        decline(
            conn,
            requests["hana"],
            org.ids["hana"],
            DeclineIn(reason="Barely worked together"),
            actor="hana",
        )
    for answered, who in enumerate(("al", "ned"), 1):
        _submit(engine, org, embedder, requests[who], who)
        with engine.connect() as conn:
            seen = peer_feedback_of(conn, bea, CYCLE, viewer=Viewer.SUBJECT)
            assert (seen.answered, seen.answers) == (answered, [])
            assert conn.execute(select(Record).where(Record.source == PEER_SOURCE)).all() == []
    _submit(engine, org, embedder, requests["cal"], "cal")
    with engine.connect() as conn:
        records = conn.execute(select(Record).where(Record.source == PEER_SOURCE)).all()
        chunks = conn.execute(select(Chunk.record_id).where(Chunk.source == PEER_SOURCE)).all()
        subject = peer_feedback_of(conn, bea, CYCLE, viewer=Viewer.SUBJECT)
        manager = peer_feedback_of(conn, bea, CYCLE, viewer=Viewer.MANAGER)
        hr = peer_feedback_of(conn, bea, CYCLE, viewer=Viewer.HR)
    assert len(records) == MIN_ANSWERS_SHOWN and {len({c.record_id for c in chunks})} == {3}
    assert {(r.subject_id, r.author, r.author_id, r.kind) for r in records} == {
        (bea, None, None, "feedback")
    }
    assert len({r.occurred_at for r in records}) == 1
    assert all(GOOD[0] in r.body for r in records)
    assert (subject.asked, subject.answered, subject.declined) == (4, 3, 1)
    for view in (subject, manager):
        assert {(a.author, a.author_id) for a in view.answers} == {("a peer", None)}
        assert "Barely" not in view.model_dump_json()
    assert {a.author_id for a in hr.answers} == set(_ids(org, "al", "ned", "cal"))


def test_upward_feedback_asks_each_report_about_their_manager_and_hides_them(
    engine: Engine, embedder: Embedder
) -> None:
    org = build_cycle_org(engine)
    reviews = ["self_reflection", "upward_feedback", "manager_feedback"]
    with engine.begin() as conn:
        create_cycle(
            conn, PERIOD, CycleSetupIn.model_validate(setup_body(reviews=reviews)), actor="t"
        )
        started = start_cycle(conn, CYCLE, actor="t")
        requests = conn.execute(
            select(FeedbackRequest.id, FeedbackRequest.peer_id, FeedbackRequest.subject_id)
        ).all()
    # Jo joined after the cut-off: not asked; Mia and Hana have no manager.
    assert started.tasks[TaskKind.GIVE_UPWARD_FEEDBACK] == 4
    assert sorted((org.key_of(r.peer_id), org.key_of(r.subject_id)) for r in requests) == [
        ("al", "mia"),
        ("bea", "mia"),
        ("cal", "mia"),
        ("ned", "al"),
    ]
    with engine.connect() as conn:
        (line,) = requests_of(conn, org.ids["ned"])
        assert (line.kind, line.subject_name) == ("upward", "Al Reyes")
        assert "manager" in request_of(conn, line.id, org.ids["ned"]).questions[0]
    for r in requests:
        if r.subject_id == org.ids["mia"]:
            _submit(engine, org, embedder, r.id, org.key_of(r.peer_id))
    _submit(engine, org, embedder, line.id, "ned")
    with engine.connect() as conn:
        mia = peer_feedback_of(conn, org.ids["mia"], CYCLE, viewer=Viewer.SUBJECT, kind=UPWARD)
        al = peer_feedback_of(conn, org.ids["al"], CYCLE, viewer=Viewer.SUBJECT, kind=UPWARD)
        peers = peer_feedback_of(conn, org.ids["mia"], CYCLE, viewer=Viewer.SUBJECT)
        records = conn.execute(select(Record.subject_id, Record.title, Record.author)).all()
    assert {a.author for a in mia.answers} == {"a report"} and len(mia.answers) == 3
    assert (al.answered, al.answers) == (1, [])  # one report: never shown, never evidence
    assert (peers.asked, peers.answers) == (0, [])
    assert {(r.subject_id, r.author) for r in records} == {(org.ids["mia"], None)}
    assert {r.title for r in records} == {f"Upward feedback, cycle {CYCLE}"}


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_MODEL", "hashing-384")
    get_settings.cache_clear()
    return CliRunner()


def test_the_cli_sets_approves_and_shows_a_list_and_its_feedback(
    cli_env: CliRunner, org: CycleOrg
) -> None:
    base = ["--period", CYCLE, "--person", "bea@example.com"]
    peers = [x for who in ("al", "ned") for x in ("--peer", f"{who}@example.com")]
    short = cli_env.invoke(cli_app, ["cycle", "nominate", *base, *peers])
    assert short.exit_code == 0, short.output
    too_few = cli_env.invoke(cli_app, ["cycle", "approve-nominations", *base])
    assert too_few.exit_code == 2 and "3 to 8" in too_few.output
    manager = cli_env.invoke(
        cli_app, ["cycle", "nominate", *base, *peers, "--peer", "mia@example.com"]
    )
    assert manager.exit_code == 2 and "manager" in manager.output
    full = cli_env.invoke(
        cli_app, ["cycle", "nominate", *base, *peers, "--peer", "cal@example.com", "--json"]
    )
    assert len(json.loads(full.stdout)["peers"]) == 3
    approved = cli_env.invoke(cli_app, ["cycle", "approve-nominations", *base, "--json"])
    assert json.loads(approved.stdout)["requests"] == 3
    shown = cli_env.invoke(cli_app, ["cycle", "peer-feedback", *base])
    assert shown.exit_code == 0 and "3 asked, 0 answered" in shown.output
    bad = cli_env.invoke(cli_app, ["cycle", "peer-feedback", *base, "--kind", "sideways"])
    assert bad.exit_code == 2 and "--kind" in bad.output


def test_two_answers_submitted_at_once_release_all_three(
    engine: Engine, org: CycleOrg, embedder: Embedder
) -> None:
    """The second and third answers arrive together: the one counted last still sees the
    other, so the three are released (without the subject's lock each counts two)."""
    requests = _approved_for_bea(engine, org)
    _submit(engine, org, embedder, requests["al"], "al")
    errors: list[BaseException] = []

    def third() -> None:
        try:
            _submit(engine, org, embedder, requests["cal"], "cal")
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    with engine.connect() as first:
        transaction = first.begin()
        submit(
            first,
            requests["ned"],
            org.ids["ned"],
            AnswersIn(answers=GOOD),
            actor="ned",
            embedder=lambda: embedder,
            chunking=CHUNKING,
        )
        other = threading.Thread(target=third)
        other.start()
        time.sleep(0.5)  # the third waits on the subject's lock
        transaction.commit()
    other.join(timeout=30)
    assert not errors and not other.is_alive()
    with engine.connect() as conn:
        records = conn.execute(select(Record.id).where(Record.source == PEER_SOURCE)).all()
    assert len(records) == 3


def test_the_nominate_task_is_done_while_the_list_is_complete(
    engine: Engine, org: CycleOrg
) -> None:
    bea = org.ids["bea"]

    def status() -> str:
        with engine.connect() as conn:
            return conn.execute(
                select(CycleTask.status).where(
                    CycleTask.kind == TaskKind.NOMINATE_PEERS, CycleTask.assignee_id == bea
                )
            ).scalar_one()

    steps = [("al", "ned", "cal"), ("al",), ("al", "ned", "cal", "hana")]
    seen = []
    for peers in steps:
        with engine.begin() as conn:
            set_nominations(conn, CYCLE, bea, _ids(org, *peers), actor="bea", by_manager=False)
        seen.append(status())
    assert seen == [TaskStatus.DONE, TaskStatus.OPEN, TaskStatus.DONE]
