"""The command line: summaries, refusals with line and reason, and exit codes."""

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from service.cli import app
from service.db.engine import make_engine
from service.db.migrate import head_revision
from service.db.models import BiasReport
from service.settings import get_settings
from tests.conftest import FIXTURES

runner = CliRunner()
BAD_DATE = FIXTURES / "bad" / "records_bad_date.jsonl"


@pytest.fixture(autouse=True)
def _cli_database(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_MODEL", "hashing-384")
    get_settings.cache_clear()


def test_ingest_of_a_folder_prints_one_summary_row_per_file() -> None:
    result = runner.invoke(app, ["ingest", str(FIXTURES / "org"), "--json"])

    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]  # one JSON document, a file per entry
    assert [(c["format"], c["inserted"], c["refused_rows"]) for c in files] == [
        ("people", 4, []),
        ("records", 6, []),
        ("ratings", 3, []),
    ]


def test_ingest_json_holds_the_skipped_rows_the_text_lists(tmp_path: Path) -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org" / "people.csv")])

    result = runner.invoke(app, ["ingest", str(BAD_DATE), "--skip-invalid", "--json"])

    assert result.exit_code == 0, result.output
    (landed,) = json.loads(result.stdout)["files"]
    assert landed["refused"] == 1 and landed["path"] == str(BAD_DATE)
    (problem,) = landed["refused_rows"]
    assert problem["field"] == "occurred_at" and "'10/02/2026'" in problem["reason"]


def test_the_bias_report_of_a_cycle_that_does_not_exist_is_refused_before_any_work(
    database_url: str,
) -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org")])

    result = runner.invoke(app, ["bias-report", "--cycle", "2027-H1"])

    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "error: cycle: no review cycle 2027-H1 (none set up, no drafts for that period); "
        "cycles: 2026-H1"
    )
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(BiasReport)).scalar_one() == 0
    engine.dispose()


def test_a_period_with_drafts_but_no_cycle_set_up_has_a_bias_report() -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org" / "people.csv")])
    runner.invoke(app, ["ingest", str(FIXTURES / "org" / "records.jsonl")])
    drafted = runner.invoke(
        app,
        ["draft", "--person", "E003", "--period", "2026-H1", "--kind", "self_reflection"],
    )

    result = runner.invoke(app, ["bias-report", "--cycle", "2026-H1", "--json"])

    assert drafted.exit_code == 0, drafted.output
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cycle"] == "2026-H1"
    # stderr says what it is doing, a line as it starts and one as it ends
    assert "bias report 2026-H1: checking 1 drafts and the ratings ..." in result.stderr
    assert "bias report 2026-H1: checking 1 drafts and the ratings: done in" in result.stderr


def test_draft_cycle_prints_progress_lines_when_not_on_a_terminal() -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org")])

    result = runner.invoke(app, ["draft-cycle", "--period", "2026-H1"])

    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("drafting 2026-H1")]
    assert lines[0].startswith("drafting 2026-H1: 0/")
    assert " done in " in lines[-1]
    assert len(lines) <= 12  # a line a tenth at most, not one a draft
    assert "9 new drafts checked for biased language" in result.stdout  # 3 people x 3 kinds


def test_a_refused_file_exits_1_and_names_the_line_field_and_reason() -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org" / "people.csv")])

    result = runner.invoke(app, ["ingest", str(FIXTURES / "bad" / "records_bad_date.jsonl")])

    assert result.exit_code == 1
    assert "refused, 1 invalid row" in result.output
    assert "occurred_at" in result.output and "'10/02/2026'" in result.output
    assert "Traceback" not in result.output


def _deep_folder(tmp_path: Path, *fixtures: Path) -> Path:
    """A folder as deep as a clone under a 150-character path, holding copies of fixtures."""
    deep = tmp_path / ("x" * 140)
    deep.mkdir()
    for fixture in fixtures:
        shutil.copy(fixture, deep)
    return deep


def test_a_refused_file_deep_in_the_tree_is_named_on_one_line(tmp_path: Path) -> None:
    deep = _deep_folder(tmp_path, FIXTURES / "org" / "people.csv", BAD_DATE)
    runner.invoke(app, ["ingest", str(deep / "people.csv")])

    result = runner.invoke(app, ["ingest", str(deep / BAD_DATE.name)])

    assert result.exit_code == 1
    assert f"{deep / BAD_DATE.name}: refused, 1 invalid row" in result.output
    assert "occurred_at" in result.output and "'10/02/2026'" in result.output


def test_a_missing_path_deep_in_the_tree_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / ("x" * 140) / "people.csv"

    result = runner.invoke(app, ["ingest", str(missing)])

    assert result.exit_code == 2
    assert result.output.strip() == f"error: {missing}: no such file or folder"


def test_skipped_rows_of_a_file_deep_in_the_tree_name_it_on_one_line(tmp_path: Path) -> None:
    deep = _deep_folder(tmp_path, FIXTURES / "org" / "people.csv", BAD_DATE)
    runner.invoke(app, ["ingest", str(deep / "people.csv")])

    result = runner.invoke(app, ["ingest", str(deep / BAD_DATE.name), "--skip-invalid"])

    assert result.exit_code == 0, result.output
    assert f"{deep / BAD_DATE.name}: skipped invalid rows" in result.output
    assert "'10/02/2026'" in result.output


def test_a_missing_path_exits_2_with_a_message() -> None:
    result = runner.invoke(app, ["ingest", "/nowhere/people.csv"])

    assert result.exit_code == 2
    assert "no such file or folder" in result.output


def test_an_unreachable_database_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", "postgresql+psycopg://x@127.0.0.1:1/none")
    get_settings.cache_clear()

    result = runner.invoke(app, ["db", "current"])

    assert result.exit_code == 1
    assert "cannot reach the database" in result.output
    assert "Traceback" not in result.output


def test_db_current_names_both_revisions() -> None:
    result = runner.invoke(app, ["db", "current"])

    assert result.exit_code == 0
    head = head_revision()
    assert f"database: {head}; code: {head}" in result.output


def test_db_index_builds_the_hnsw_index_for_the_configured_model() -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org")])

    result = runner.invoke(app, ["db", "index"])

    assert result.exit_code == 0, result.output
    assert "ix_chunks_hnsw_hashing_384_384 is ready" in result.output


def test_draft_then_check_acknowledge_and_approve_from_the_command_line() -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org")])
    person = ["--person", "cy.diaz@example.com", "--period", "2026-H1"]

    drafted = runner.invoke(app, ["draft", *person, "--kind", "self_reflection"])
    refused = runner.invoke(app, ["approve", "--draft", "1", "--by", "bo.chen@example.com"])
    checked = runner.invoke(app, ["check-draft", "--draft", "1"])
    keys = [w for w in checked.output.split() if w.startswith("F") and w[1:].isdigit()]
    for key in keys:
        runner.invoke(
            app,
            ["acknowledge", "--draft", "1", "--flag", key, "--by", "bo", "--reason", "fair"],
        )
    approved = runner.invoke(app, ["approve", "--draft", "1", "--by", "bo.chen@example.com"])

    assert drafted.exit_code == 0, drafted.output
    assert "Offline draft" in drafted.output and "supported sentences" in drafted.output
    assert refused.exit_code == 1 and "needs a bias check" in refused.output
    assert checked.exit_code == 0 and "checked" in checked.output
    assert approved.exit_code == 0, approved.output


def test_an_unknown_draft_kind_is_a_clear_error() -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org")])
    result = runner.invoke(
        app, ["draft", "--person", "cy.diaz@example.com", "--period", "2026-H1", "--kind", "x"]
    )

    assert result.exit_code == 2 and "unknown draft kind 'x'" in result.output


def test_access_commands_make_a_token_and_name_an_unknown_person_without_a_traceback() -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org" / "people.csv")])

    made = runner.invoke(app, ["token", "create", "--person", "bo.chen@example.com"])
    granted = runner.invoke(app, ["role", "grant", "--person", "E001"])
    unknown = runner.invoke(app, ["token", "create", "--person", "nobody@example.com"])
    no_cohort = runner.invoke(
        app,
        [
            "panel",
            "create",
            "--cycle",
            "2026-H1",
            "--level",
            "L3",
            "--job-family",
            "x",
            "--member",
            "nobody@example.com",
        ],
    )

    assert made.exit_code == 0 and "fd_" in made.stdout, made.output
    assert granted.exit_code == 0 and "HR admin" in granted.output
    assert unknown.exit_code == 2 and "no person with employee_id or email" in unknown.output
    assert no_cohort.exit_code == 2, no_cohort.output
    assert "Traceback" not in unknown.output + no_cohort.output


def test_the_bias_report_prints_findings_and_the_probe_skips_offline_drafts() -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org")])
    runner.invoke(app, ["draft-cycle", "--period", "2026-H1"])

    report = runner.invoke(app, ["bias-report", "--cycle", "2026-H1"])
    probe = runner.invoke(
        app, ["bias-probe", "--period", "2026-H1", "--kind", "manager_feedback", "--sample", "2"]
    )

    assert report.exit_code == 0, report.output
    assert "bias report 2026-H1, version 1" in report.output and "findings" in report.output
    assert probe.exit_code == 0 and "skipped" in probe.output


def test_show_then_edit_saves_a_version_and_a_stale_edit_is_refused_keeping_both(
    tmp_path: Path,
) -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org")])
    runner.invoke(
        app,
        [
            "draft",
            "--person",
            "cy.diaz@example.com",
            "--period",
            "2026-H1",
            "--kind",
            "self_reflection",
        ],
    )
    shown = runner.invoke(app, ["show", "--draft", "1"])
    edited = tmp_path / "edited.txt"
    edited.write_text(shown.stdout + "- I also mentored two new hires. [E1, E99]\n")

    first = runner.invoke(
        app, ["edit", "--draft", "1", "--based-on", "1", "--file", str(edited), "--by", "bo"]
    )
    stale = runner.invoke(
        app, ["edit", "--draft", "1", "--based-on", "1", "--file", str(edited), "--by", "ana"]
    )
    again = runner.invoke(app, ["show", "--draft", "1", "--version", "2"])

    assert shown.exit_code == 0 and "## " in shown.stdout and "[E" in shown.stdout
    assert first.exit_code == 0, first.output
    assert "version 2" in first.output and "removed E99" in first.output
    assert (
        stale.exit_code == 1 and "version 2" in stale.output and "nothing was lost" in stale.output
    )
    assert "I also mentored two new hires. [E1]" in again.stdout


def test_an_edited_text_without_a_heading_is_refused_with_the_line(tmp_path: Path) -> None:
    edited = tmp_path / "edited.txt"
    edited.write_text("I shipped the ledger. [E1]\n")

    result = runner.invoke(
        app, ["edit", "--draft", "1", "--based-on", "1", "--file", str(edited), "--by", "bo"]
    )

    assert result.exit_code == 2 and "line 1" in result.output
