"""The connector framework (service/connectors/sync.py) with a connector that serves a
list held in the test: cursors, identities, opt-outs, deletions, pauses, failures, and
that an unchanged source costs no embedding. Each provider's own tests
(tests/test_connector_<name>.py) run the same path against a local HTTP server."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from domain.errors import Conflict, Invalid, Misconfigured
from service.connectors.http import RateLimited
from service.connectors.identities import (
    Match,
    import_identities,
    list_identities,
    match,
)
from service.connectors.model import Batch, Cursor, Identity, Skipped, SourceRecord, WaitObserver
from service.connectors.overview import resume_connector
from service.connectors.privacy import opt_in, opt_out, purge_source
from service.connectors.runs import RunSummary, load_state, recent_runs, resume
from service.connectors.sync import OPTED_OUT, UNMATCHED, run_sync, sync_configured
from service.db.models import Chunk, ConnectorRun, Person, Record
from service.ingest.run import Ingestor
from service.settings import Settings
from tests.conftest import FIXTURES, CountingEmbedder

START = datetime(2026, 11, 2, 9, tzinfo=UTC)
ANA = Identity("chat", "U-ana", "Ana", "Ana.Lima@example.com")  # matched by email
BO = Identity("chat", "U-bo", "Bo", "bo.chen@example.com")
STRANGER = Identity("chat", "U-zed", "Zed <b>Unknown</b>", None)  # no email: unmatched


@dataclass
class ListConnector:
    """Serves `items` (external_id -> record), one batch per `batch_size`, in order of the
    record's time; the cursor is the last time served. `deleted` are told as deletions."""

    items: dict[str, SourceRecord] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    batch_size: int = 2
    fail_after: int | None = None  # raise after this many batches
    failure: Exception | None = None
    asked: list[Cursor] = field(default_factory=list)
    name: str = "chat"
    system: str = "chat"
    complete_on_full: bool = True
    covers_since: datetime | None = None  # told on the last batch, as Slack's live API does

    def sync(self, cursor: Cursor, *, full: bool, waits: WaitObserver) -> Iterator[Batch]:
        self.asked.append(dict(cursor))
        since = str(cursor.get("since", ""))
        todo = sorted(
            (r for r in self.items.values() if r.occurred_at.isoformat() > since),
            key=lambda r: r.occurred_at.isoformat(),
        )
        waits(1.5, "test limit")
        for number, start in enumerate(range(0, len(todo), self.batch_size)):
            if self.fail_after is not None and number >= self.fail_after:
                assert self.failure is not None
                raise self.failure
            part = todo[start : start + self.batch_size]
            yield Batch(cursor={"since": part[-1].occurred_at.isoformat()}, records=part)
        if self.deleted:
            yield Batch(cursor={"since": since}, deleted=list(self.deleted))
            self.deleted = []
        if self.covers_since is not None:
            yield Batch(cursor={"since": since}, complete_since=self.covers_since)


def kudos(
    number: int, subject: Identity, *, body: str | None = None, hours: int = 0
) -> SourceRecord:
    return SourceRecord(
        external_id=f"msg-{number}",
        kind="recognition",
        subject=subject,
        author=BO,
        occurred_at=START + timedelta(hours=number + hours),
        title=None,
        body=body or f"Thanks {subject.display_name} for unblocking the release, number {number}.",
        metadata={"channel": "kudos"},
    )


@pytest.fixture
def people(ingestor: Ingestor) -> None:
    ingestor.ingest(FIXTURES / "org" / "people.csv", "people", skip_invalid=False)


def _sync(
    engine: Engine,
    settings: Settings,
    connector: ListConnector,
    embedder: CountingEmbedder,
    **kw: bool,
) -> RunSummary:
    return run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder, **kw)


def _stored(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(Record.external_id, Record.body).where(Record.source == "chat"))
        return {r.external_id: r.body for r in rows}


def test_a_first_run_writes_matched_records_and_lists_the_unmatched_identity(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(
        items={r.external_id: r for r in (kudos(1, ANA), kudos(2, ANA), kudos(3, STRANGER))}
    )
    summary = _sync(engine, settings, connector, embedder)
    assert summary.status == "succeeded"
    assert (summary.fetched, summary.inserted, summary.skipped) == (3, 2, 1)
    assert summary.skip_reasons == {UNMATCHED: 1}
    assert (summary.rate_limit_waits, summary.waited_s) == (1, 1.5)
    assert sorted(_stored(engine)) == ["msg-1", "msg-2"]
    with engine.connect() as conn:
        unmatched = list_identities(conn, unmatched_only=True, limit=10)
        ana = conn.execute(select(Record.subject_id, Record.author_id)).first()
        ana_id = conn.execute(select(Person.id).where(Person.employee_id == "E001")).scalar()
        bo_id = conn.execute(select(Person.id).where(Person.employee_id == "E002")).scalar()
    assert [(u.external_id, u.records_waiting) for u in unmatched] == [("U-zed", 1)]
    assert unmatched[0].display_name == "Zed <b>Unknown</b>"
    assert ana is not None and (ana.subject_id, ana.author_id) == (ana_id, bo_id)
    with engine.connect() as conn:
        [run] = recent_runs(conn, connector="chat", limit=5)
        state = load_state(conn, "chat")
    assert run.status == "succeeded" and run.inserted == 2 and run.finished_at is not None
    assert state.cursor == {"since": kudos(3, STRANGER).occurred_at.isoformat()}


def test_a_second_run_over_an_unchanged_source_fetches_from_the_cursor_and_embeds_nothing(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(items={r.external_id: r for r in (kudos(1, ANA), kudos(2, BO))})
    _sync(engine, settings, connector, embedder)
    embedded = len(embedder.texts)
    again = _sync(engine, settings, connector, embedder)
    assert again.status == "succeeded" and again.fetched == 0
    assert connector.asked[-1] == {"since": kudos(2, BO).occurred_at.isoformat()}
    assert len(embedder.texts) == embedded
    full = _sync(engine, settings, connector, embedder, full=True)
    assert (full.fetched, full.unchanged, full.inserted, full.updated) == (2, 2, 0, 0)
    assert full.chunks_embedded == 0 and len(embedder.texts) == embedded


def test_an_edited_item_is_updated_and_a_deleted_one_removed_with_its_chunks(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(items={r.external_id: r for r in (kudos(1, ANA), kudos(2, ANA))})
    _sync(engine, settings, connector, embedder)
    connector.items["msg-1"] = kudos(
        1, ANA, body="Thanks Ana, edited: the release went out.", hours=5
    )
    connector.deleted = ["msg-2"]
    summary = _sync(engine, settings, connector, embedder)
    assert (summary.updated, summary.deleted) == (1, 1)
    assert _stored(engine) == {"msg-1": "Thanks Ana, edited: the release went out."}
    with engine.connect() as conn:
        chunks = conn.execute(select(func.count()).select_from(Chunk)).scalar()
    assert chunks == 1


def test_a_full_run_removes_what_the_source_no_longer_has_and_only_its_own(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    ingestor: Ingestor,
    tmp_path: Path,
) -> None:
    imported = tmp_path / "records.jsonl"
    imported.write_text(
        '{"source": "chat", "external_id": "from-a-file", "kind": "recognition", '
        '"subject": "E001", "occurred_at": "2026-10-01", "body": "Kudos from an export."}\n',
        encoding="utf-8",
    )
    ingestor.ingest(imported, "records", skip_invalid=False)
    connector = ListConnector(items={r.external_id: r for r in (kudos(1, ANA), kudos(2, ANA))})
    _sync(engine, settings, connector, embedder)
    del connector.items["msg-1"]
    summary = _sync(engine, settings, connector, embedder, full=True)
    assert summary.deleted == 1 and sorted(_stored(engine)) == ["from-a-file", "msg-2"]


def test_a_full_run_of_a_source_that_hides_older_history_spares_what_is_older(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    items = {r.external_id: r for r in (kudos(1, ANA), kudos(2, ANA), kudos(30, ANA))}
    connector = ListConnector(items=items)
    _sync(engine, settings, connector, embedder)
    # the source now shows only from message 2's time on, and message 30 was deleted
    connector.items = {"msg-2": items["msg-2"]}
    connector.covers_since = items["msg-2"].occurred_at
    summary = _sync(engine, settings, connector, embedder, full=True)
    assert summary.deleted == 1 and sorted(_stored(engine)) == ["msg-1", "msg-2"]


def test_a_full_pass_paused_by_a_rate_limit_goes_on_from_its_cursor_and_sweeps_at_its_end(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    items = {r.external_id: r for r in (kudos(n, ANA) for n in range(1, 6))}
    connector = ListConnector(items=dict(items))
    _sync(engine, settings, connector, embedder)
    del connector.items["msg-1"]  # gone at the source
    connector.fail_after, connector.failure = 1, RateLimited("chat", 3600)
    paused = _sync(engine, settings, connector, embedder, full=True)
    assert (paused.status, paused.full, paused.deleted) == ("paused", True, 0)
    connector.fail_after = None
    resumed = _sync(engine, settings, connector, embedder)
    assert connector.asked[-1] == {"since": items["msg-3"].occurred_at.isoformat()}
    assert (resumed.status, resumed.full, resumed.deleted) == ("succeeded", True, 1)
    assert sorted(_stored(engine)) == ["msg-2", "msg-3", "msg-4", "msg-5"]
    with engine.connect() as conn:
        state = load_state(conn, "chat")
    assert state.pass_started_at is None and not state.full_next
    after = _sync(engine, settings, connector, embedder)
    assert not after.full  # the pass is over: back to what changed


def test_a_match_made_during_a_full_pass_asks_for_another_once_it_ends(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    items = {r.external_id: r for r in (kudos(1, STRANGER), kudos(2, ANA), kudos(3, ANA))}
    connector = ListConnector(items=items, fail_after=1, failure=RateLimited("chat", 3600))
    _sync(engine, settings, connector, embedder, full=True)
    with engine.begin() as conn:
        match(conn, [Match("chat", "U-zed", "E003")], actor="hr", by="hand")
    connector.fail_after = None
    ended = _sync(engine, settings, connector, embedder)  # the pass goes on and ends
    assert ended.full and connector.asked[-1] != {} and "msg-1" not in _stored(engine)
    again = _sync(engine, settings, connector, embedder)  # a new pass, from nothing
    assert again.full and connector.asked[-1] == {}
    assert sorted(_stored(engine)) == ["msg-1", "msg-2", "msg-3"]


def test_matching_an_identity_by_hand_brings_its_records_in_the_next_run(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(items={r.external_id: r for r in (kudos(1, STRANGER),)})
    _sync(engine, settings, connector, embedder)
    assert _stored(engine) == {}
    with engine.begin() as conn:
        match(conn, [Match("chat", "U-zed", "E003")], actor="hr@example.com", by="hand")
    summary = _sync(engine, settings, connector, embedder)
    assert summary.full and summary.inserted == 1
    with engine.connect() as conn:
        [zed] = [
            i
            for i in list_identities(conn, unmatched_only=False, limit=10)
            if i.external_id == "U-zed"
        ]
        assert not load_state(conn, "chat").full_next
    assert (zed.employee_id, zed.matched_by) == ("E003", "hand")


def test_matching_an_unknown_identity_or_employee_changes_nothing(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    _sync(engine, settings, ListConnector(items={"msg-1": kudos(1, STRANGER)}), embedder)
    with pytest.raises(Exception, match="no employee 'E999'"), engine.begin() as conn:
        match(conn, [Match("chat", "U-zed", "E999")], actor="hr", by="hand")
    with pytest.raises(Exception, match="no chat identity 'U-nobody'"), engine.begin() as conn:
        match(conn, [Match("chat", "U-nobody", "E001")], actor="hr", by="hand")


def test_the_identities_csv_matches_people_before_a_connector_has_seen_them(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    csv = tmp_path / "identities.csv"
    csv.write_text("system,external_id,employee_id\nchat,U-zed,E004\n", encoding="utf-8")
    with engine.begin() as conn:
        assert import_identities(conn, csv, actor="hr") == 1
    summary = _sync(engine, settings, ListConnector(items={"msg-1": kudos(1, STRANGER)}), embedder)
    assert summary.inserted == 1 and summary.skipped == 0


def test_an_identities_csv_with_a_bad_line_is_refused_by_line(
    engine: Engine, people: None, tmp_path: Path
) -> None:
    csv = tmp_path / "identities.csv"
    csv.write_text("system,external_id,employee_id\nchat,,E004\nchat,U-1,E999\n", encoding="utf-8")
    with pytest.raises(Invalid) as refused, engine.begin() as conn:
        import_identities(conn, csv, actor="hr")
    assert refused.value.details() == {
        "problems": [{"line": 2, "field": "external_id", "reason": "is required"}]
    }
    csv.write_text("system,external_id,employee_id\nchat,U-1,E999\n", encoding="utf-8")
    with pytest.raises(Invalid) as refused, engine.begin() as conn:
        import_identities(conn, csv, actor="hr")
    assert refused.value.details() == {
        "problems": [{"line": 2, "field": "employee_id", "reason": "no employee 'E999'"}]
    }
    with engine.connect() as conn:
        assert list_identities(conn, unmatched_only=False, limit=5) == []


def test_an_opted_out_person_is_skipped_and_their_stored_records_purged(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(items={r.external_id: r for r in (kudos(1, ANA), kudos(2, BO))})
    _sync(engine, settings, connector, embedder)
    with engine.begin() as conn:
        ana = conn.execute(select(Person.id).where(Person.employee_id == "E001")).scalar_one()
        assert opt_out(conn, ana, "chat", actor="ana.lima@example.com") == 1
    assert sorted(_stored(engine)) == ["msg-2"]
    connector.items["msg-3"] = kudos(3, ANA)
    summary = _sync(engine, settings, connector, embedder)
    assert summary.skip_reasons == {OPTED_OUT: 1} and sorted(_stored(engine)) == ["msg-2"]


def test_purging_a_source_removes_its_records_and_resets_its_cursor(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(items={r.external_id: r for r in (kudos(1, ANA), kudos(2, BO))})
    _sync(engine, settings, connector, embedder)
    with engine.begin() as conn:
        assert purge_source(conn, "chat", actor="hr") == 2
        assert load_state(conn, "chat").cursor == {}
    assert _stored(engine) == {}


def test_a_rate_limit_past_the_longest_wait_pauses_the_run_keeping_written_batches(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    items = {r.external_id: r for r in (kudos(n, ANA) for n in range(1, 6))}
    connector = ListConnector(items=items, fail_after=1, failure=RateLimited("chat", 3600))
    paused = _sync(engine, settings, connector, embedder)
    assert paused.status == "paused" and "3600 s" in (paused.error or "")
    assert sorted(_stored(engine)) == ["msg-1", "msg-2"]
    connector.fail_after = None
    resumed = _sync(engine, settings, connector, embedder)
    assert connector.asked[-1] == {"since": items["msg-2"].occurred_at.isoformat()}
    assert resumed.status == "succeeded" and resumed.inserted == 3


def test_a_connector_error_fails_the_run_with_a_message_and_no_traceback(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(
        items={"msg-1": kudos(1, ANA), "msg-2": kudos(2, ANA), "msg-3": kudos(3, ANA)},
        fail_after=1,
        failure=KeyError("secret-token-in-a-bug"),
    )
    failed = _sync(engine, settings, connector, embedder)
    assert failed.status == "failed"
    assert failed.error is not None and "KeyError" in failed.error
    assert "secret-token" not in failed.error
    with engine.connect() as conn:
        assert load_state(conn, "chat").cursor == {"since": kudos(2, ANA).occurred_at.isoformat()}


def test_records_a_connector_gets_wrong_are_skipped_with_their_reason(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    bad_kind = SourceRecord("msg-1", "tweet", ANA, START, "text")
    empty = SourceRecord("msg-2", "recognition", ANA, START, "   ")
    huge = SourceRecord("msg-3", "recognition", ANA, START.replace(tzinfo=None), "x\x00" * 200_000)
    connector = ListConnector(items={"a": bad_kind, "b": empty, "c": huge}, batch_size=5)
    summary = _sync(engine, settings, connector, embedder)
    assert summary.skip_reasons == {"kind 'tweet' is not a record kind": 1, "no text to keep": 1}
    body = _stored(engine)["msg-3"]
    assert len(body) == settings.ingest_max_body_chars and "\x00" not in body


def test_a_second_run_while_one_runs_is_refused(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    inner = ListConnector(items={"msg-1": kudos(1, ANA)})

    class Reentrant(ListConnector):
        def sync(self, cursor: Cursor, *, full: bool, waits: WaitObserver) -> Iterator[Batch]:
            with pytest.raises(Conflict, match="already running"):
                _sync(engine, settings, inner, embedder)
            yield Batch(cursor={}, skipped=[Skipped("x", "checked")])

    assert _sync(engine, settings, Reentrant(), embedder).status == "succeeded"


def test_the_schedule_runs_every_configured_connector_and_says_why_one_did_not_run(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.connectors import sync as sync_module

    chat = ListConnector(items={"msg-1": kudos(1, ANA)})

    def build(name: str, settings: Settings) -> ListConnector:
        if name == "broken":
            raise Misconfigured("the broken connector is not configured", field="connector")
        return chat

    monkeypatch.setattr(sync_module, "configured", lambda settings: ["chat", "broken"])
    monkeypatch.setattr(sync_module, "build", build)
    ran = sync_configured(engine, settings, actor="schedule", embedder=lambda: embedder)
    assert ran["broken"] == "the broken connector is not configured"
    chat_run = ran["chat"]
    assert not isinstance(chat_run, str) and chat_run.inserted == 1
    with engine.connect() as conn:
        [run] = recent_runs(conn, connector="chat", limit=5)
    assert run.actor == "schedule"


# --- what a review found (each fails on the code before its fix) ---------------------------


def test_an_opt_out_made_while_a_run_writes_is_not_undone_by_that_run(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    class OptsOutMidway(ListConnector):
        def sync(self, cursor: Cursor, *, full: bool, waits: WaitObserver) -> Iterator[Batch]:
            for number, batch in enumerate(super().sync(cursor, full=full, waits=waits)):
                if number == 1:  # Ana opts out after the first batch is written
                    with engine.begin() as conn:
                        ana = conn.execute(select(Person.id).where(Person.employee_id == "E001"))
                        opt_out(conn, ana.scalar_one(), "chat", actor="ana.lima@example.com")
                yield batch

    items = {r.external_id: r for r in (kudos(1, ANA), kudos(2, BO), kudos(3, ANA))}
    summary = _sync(engine, settings, OptsOutMidway(items=items), embedder)
    assert summary.status == "succeeded"
    assert sorted(_stored(engine)) == ["msg-2"]  # msg-3 was fetched before the opt-out


def test_a_purge_stops_the_connector_until_hr_resumes_it(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(items={r.external_id: r for r in (kudos(1, ANA), kudos(2, BO))})
    _sync(engine, settings, connector, embedder)
    with engine.begin() as conn:
        assert purge_source(conn, "chat", actor="hr@example.com") == 2
    with pytest.raises(Conflict, match=r"stopped .* by hr@example\.com"):
        _sync(engine, settings, connector, embedder)
    assert _stored(engine) == {}
    with engine.begin() as conn:
        assert resume_connector(conn, "github", actor="hr") is False  # never stopped
        resume(conn, "chat")
    again = _sync(engine, settings, connector, embedder)
    assert again.inserted == 2 and connector.asked[-1] == {}


def test_a_purge_made_while_a_run_fetches_stops_that_run_writing(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    class PurgedMidway(ListConnector):
        def sync(self, cursor: Cursor, *, full: bool, waits: WaitObserver) -> Iterator[Batch]:
            for number, batch in enumerate(super().sync(cursor, full=full, waits=waits)):
                if number == 1:
                    with engine.begin() as conn:
                        purge_source(conn, "chat", actor="hr@example.com")
                yield batch

    items = {r.external_id: r for r in (kudos(n, ANA) for n in range(1, 5))}
    summary = _sync(engine, settings, PurgedMidway(items=items), embedder)
    assert summary.status == "failed" and "stopped" in (summary.error or "")
    assert _stored(engine) == {}
    with engine.connect() as conn:
        assert load_state(conn, "chat").cursor == {}


def test_an_identity_unmatched_by_hand_stays_unmatched_and_loses_its_records(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(items={r.external_id: r for r in (kudos(1, ANA), kudos(2, BO))})
    _sync(engine, settings, connector, embedder)  # Ana matched by her email
    with engine.begin() as conn:
        match(conn, [Match("chat", "U-ana", None)], actor="hr", by="hand")
    assert sorted(_stored(engine)) == ["msg-2"]
    connector.items["msg-3"] = kudos(3, ANA)
    after = _sync(engine, settings, connector, embedder)
    assert after.skip_reasons == {UNMATCHED: 1} and sorted(_stored(engine)) == ["msg-2"]
    with engine.connect() as conn:
        assert list_identities(conn, unmatched_only=True, limit=5) == []  # decided, not to-do


def test_an_identity_matched_to_someone_else_moves_its_records_with_the_next_pass(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(items={"msg-1": kudos(1, ANA)})
    _sync(engine, settings, connector, embedder)
    with engine.begin() as conn:
        match(conn, [Match("chat", "U-ana", "E004")], actor="hr", by="hand")
    assert _stored(engine) == {}  # not left on Ana meanwhile
    _sync(engine, settings, connector, embedder)
    with engine.connect() as conn:
        subject = conn.execute(
            select(Person.employee_id).join(Record, Record.subject_id == Person.id)
        )
        assert subject.scalar_one() == "E004"


def test_letting_a_source_in_again_asks_for_a_full_pass_that_brings_the_records_back(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(items={"msg-1": kudos(1, ANA)})
    _sync(engine, settings, connector, embedder)
    with engine.begin() as conn:
        ana = conn.execute(select(Person.id).where(Person.employee_id == "E001")).scalar_one()
        opt_out(conn, ana, "chat", actor="ana")
    _sync(engine, settings, connector, embedder)
    with engine.begin() as conn:
        opt_in(conn, ana, "chat", actor="ana")
    back = _sync(engine, settings, connector, embedder)
    assert back.full and back.inserted == 1


def test_a_run_left_running_by_a_killed_process_is_told_failed_by_the_next(
    engine: Engine, settings: Settings, people: None, embedder: CountingEmbedder
) -> None:
    with engine.begin() as conn:
        conn.execute(insert(ConnectorRun).values(connector="chat", actor="killed"))
    _sync(engine, settings, ListConnector(items={"msg-1": kudos(1, ANA)}), embedder)
    with engine.connect() as conn:
        runs = recent_runs(conn, connector="chat", limit=5)
    assert [(r.actor, r.status) for r in runs] == [("test", "succeeded"), ("killed", "failed")]
    assert "stopped before the end" in (runs[1].error or "")
