"""Slack from a workspace export zip (service/connectors/slack_export.py), built by each
test from tests/fixtures/slack/export/: only the named channel's folder read (never
another channel, never a direct message), the same records as the live sync, a re-import
that changes nothing, a later export's edit and deletion followed, and a hostile zip
(too many files, too large, not a zip, no users.json, paths that climb) refused or
ignored with the reason named."""

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from domain.errors import Invalid, Misconfigured
from service.connectors.model import Batch
from service.connectors.slack_export import slack_export
from service.connectors.slack_messages import BOT, JOIN, NO_MENTION
from service.connectors.sync import UNMATCHED, run_sync
from service.db.models import Record
from service.ingest.run import Ingestor
from service.settings import Settings
from tests.conftest import FIXTURES, CountingEmbedder

EXPORT = FIXTURES / "slack" / "export"


def _files() -> dict[str, Any]:
    """The export folder as member name -> parsed JSON."""
    return {
        path.relative_to(EXPORT).as_posix(): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(EXPORT.rglob("*.json"))
    }


def _zip(target: Path, files: dict[str, Any], extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, json.dumps(data))
        for name, raw in (extra or {}).items():
            archive.writestr(name, raw)
    return target


def _settings(base: Settings | None = None, **extra: object) -> Settings:
    values: dict[str, object] = {"slack_channels": ["kudos"]}
    values.update(extra)
    if base is None:
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]
    return base.model_copy(update=values)


def _batches(path: Path, settings: Settings) -> list[Batch]:
    return list(slack_export(path, settings).sync({}, full=False, waits=lambda s, r: None))


def test_only_the_named_channels_folder_becomes_records(tmp_path: Path) -> None:
    batches = _batches(_zip(tmp_path / "export.zip", _files()), _settings())
    records = {r.external_id: r for b in batches for r in b.records}
    assert sorted(records) == [
        "C0KUDOS:1763640000.000100:U02BO",
        "C0KUDOS:1763640000.000100:U03CY",
        "C0KUDOS:1763640300.000100:U09ZED",
        "C0KUDOS:1763726400.000200:U01ANA",
    ]  # the general channel's and the direct message's thanks are never read
    thanks = records["C0KUDOS:1763640000.000100:U03CY"]
    assert thanks.kind == "recognition"
    assert (thanks.subject.email, thanks.author and thanks.author.email) == (
        "cy.diaz@example.com",
        "ana.lima@example.com",
    )
    assert thanks.body == (
        "Huge thanks to @Bo Chen and @Cy for the incident 42 fix "
        "<script>alert(1)</script> & the write-up"
    )
    assert sorted(s.reason for b in batches for s in b.skipped) == sorted([NO_MENTION, BOT, JOIN])


def test_a_named_channel_the_export_lacks_is_skipped_with_the_reason(tmp_path: Path) -> None:
    batches = _batches(
        _zip(tmp_path / "export.zip", _files()), _settings(slack_channels=["kudos", "thanks"])
    )
    assert [s.reason for s in batches[-1].skipped] == ["a named channel the export does not have"]


def test_a_hostile_zip_is_refused_with_the_file_and_the_reason(tmp_path: Path) -> None:
    good = _zip(tmp_path / "export.zip", _files())
    with pytest.raises(Invalid, match=r"export.zip holds 7 files, over the 5 allowed"):
        slack_export(good, _settings(slack_export_max_members=5))
    with pytest.raises(Invalid, match=r"export.zip unpacks to \d+ bytes, over the 2000 allowed"):
        slack_export(good, _settings(slack_export_max_bytes=2000))
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("just text", encoding="utf-8")
    with pytest.raises(Invalid, match=r"notes\.zip is not a zip file"):
        slack_export(not_zip, _settings())
    with pytest.raises(Invalid, match=r"missing\.zip: no such file"):
        slack_export(tmp_path / "missing.zip", _settings())
    files = _files()
    del files["users.json"]
    with pytest.raises(Invalid, match=r"no users\.json at its top"):
        slack_export(_zip(tmp_path / "nousers.zip", files), _settings())
    with pytest.raises(Misconfigured, match="FAIRDRAFT_SLACK_CHANNELS names no channel"):
        slack_export(good, _settings(slack_channels=[]))


def test_names_in_the_zip_are_never_paths_and_bad_members_are_named(tmp_path: Path) -> None:
    files = _files()
    climbing = {
        "../../outside.json": b"[]",
        "kudos/../../../etc/2025-11-22.json": b"[]",
        "/kudos/2025-11-23.json": b"[]",
    }
    batches = _batches(_zip(tmp_path / "export.zip", files, climbing), _settings())
    assert len([r for b in batches for r in b.records]) == 4
    assert not (tmp_path.parent / "outside.json").exists()
    files["kudos/2025-11-21.json"] = None
    broken = _zip(tmp_path / "broken.zip", files, {"kudos/2025-11-22.json": b"{not json"})
    with pytest.raises(Invalid, match=r"broken.zip: kudos/2025-11-22.json is not JSON"):
        _batches(broken, _settings())
    files = _files()
    files["users.json"] = [{"name": "no id"}]
    with pytest.raises(Invalid, match=r"users.json is not shaped as Slack's \(0.id\)"):
        _batches(_zip(tmp_path / "users.zip", files), _settings())


def test_a_reexported_zip_in_a_folder_is_read_the_same(tmp_path: Path) -> None:
    files = {f"Acme Slack export/{name}": data for name, data in _files().items()}
    batches = _batches(_zip(tmp_path / "export.zip", files), _settings())
    assert len([r for b in batches for r in b.records]) == 4


# --- end to end through run_sync ----------------------------------------------------


@pytest.fixture
def people(ingestor: Ingestor) -> None:
    ingestor.ingest(FIXTURES / "org" / "people.csv", "people", skip_invalid=False)


def _stored(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(Record.external_id, Record.body).where(Record.source == "slack"))
        return {r.external_id: r.body for r in rows}


def test_an_import_a_reimport_and_a_later_export_follow_edits_and_deletions(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    tmp_path: Path,
) -> None:
    config = _settings(settings)
    first = _zip(tmp_path / "first.zip", _files())

    def run(path: Path):  # type: ignore[no-untyped-def]
        connector = slack_export(path, config)
        return run_sync(engine, config, connector, actor="test", embedder=lambda: embedder)

    summary = run(first)
    assert summary.status == "succeeded"
    assert (summary.inserted, summary.skip_reasons[UNMATCHED]) == (3, 1)
    embedded = len(embedder.texts)

    again = run(first)
    assert (again.inserted, again.updated, again.deleted, again.chunks_embedded) == (0, 0, 0, 0)
    assert len(embedder.texts) == embedded

    later = _files()
    day20 = later["kudos/2025-11-20.json"]
    edited = next(m for m in day20 if m["ts"] == "1763640000.000100")
    edited["text"] = "Huge thanks to <@U02BO> for the incident 42 fix"
    edited["edited"] = {"user": "U01ANA", "ts": "1763813000.000000"}
    del later["kudos/2025-11-21.json"]  # Dee's kudos to Ana, deleted in Slack
    later["kudos/2025-11-22.json"] = [
        {
            "type": "message",
            "user": "U01ANA",
            "text": "Thanks <@U04DEE>!",
            "ts": "1763812800.000300",
        }
    ]
    changed = run(_zip(tmp_path / "later.zip", later))
    assert changed.status == "succeeded"
    assert (changed.inserted, changed.updated, changed.deleted) == (1, 1, 2)
    assert sorted(_stored(engine)) == [
        "C0KUDOS:1763640000.000100:U02BO",
        "C0KUDOS:1763812800.000300:U04DEE",
    ]


def test_an_export_covering_fewer_days_deletes_nothing_outside_them(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    tmp_path: Path,
) -> None:
    config = _settings(settings)
    run_sync(engine, config, slack_export(_zip(tmp_path / "a.zip", _files()), config), actor="t")
    only_21 = {k: v for k, v in _files().items() if not k.endswith("2025-11-20.json")}
    summary = run_sync(
        engine, config, slack_export(_zip(tmp_path / "b.zip", only_21), config), actor="t"
    )
    assert (summary.status, summary.deleted) == ("succeeded", 0)
    assert len(_stored(engine)) == 3


def test_message_changed_and_message_deleted_events_in_an_export_are_followed(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    tmp_path: Path,
) -> None:
    files = _files()
    files["kudos/2025-11-22.json"] = [
        {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "ts": "1763812900.000100",
            "message": {
                "type": "message",
                "user": "U01ANA",
                "text": "Huge thanks to <@U02BO> for the fix",
                "ts": "1763640000.000100",
                "edited": {"user": "U01ANA", "ts": "1763812900.000100"},
            },
        },
        {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "ts": "1763812950.000100",
            "deleted_ts": "1763726400.000200",
        },
    ]
    config = _settings(settings)
    connector = slack_export(_zip(tmp_path / "events.zip", files), config)
    summary = run_sync(engine, config, connector, actor="test", embedder=lambda: embedder)
    assert summary.status == "succeeded"
    assert _stored(engine) == {
        "C0KUDOS:1763640000.000100:U02BO": "Huge thanks to @Bo Chen for the fix"
    }
