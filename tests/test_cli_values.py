"""The command line's period, cycle and token-lifetime options: a value out of bounds is one
line and exit 2, before any database is opened; nothing is made from it."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from typer.testing import CliRunner

from service.cli import app
from service.cli_service import TOKEN_DAYS
from service.db.engine import make_engine
from service.db.models import ApiToken, ReviewCycle
from service.settings import Settings, get_settings
from tests.conftest import FIXTURES

runner = CliRunner()
REPORTED = ("9999-Q4", "9999", "2026-01-01..9999-12-31", "9999-12", "0001-H1", "2026-H1\n")


@pytest.fixture(autouse=True)
def _cli_database(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_MODEL", "hashing-384")
    get_settings.cache_clear()


def _count(database_url: str, model: type[ApiToken] | type[ReviewCycle]) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(model)).scalar_one())
    finally:
        engine.dispose()


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


COMMANDS = (
    ["evidence", "--person", "E003", "--kind", "self_reflection", "--period"],
    ["draft", "--person", "E003", "--kind", "self_reflection", "--period"],
    ["draft-cycle", "--period"],
    ["bias-probe", "--kind", "manager_feedback", "--period"],
    ["bias-report", "--cycle"],
    ["finalise-rating", "--person", "E003", "--by", "hr", "--cycle"],
    ["panel", "create", "--level", "L3", "--job-family", "eng", "--member", "E001", "--cycle"],
)


@pytest.mark.parametrize("value", REPORTED)
def test_every_period_and_cycle_option_refuses_a_bad_period_in_one_line(
    value: str, database_url: str
) -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org")])
    cycles = _count(database_url, ReviewCycle)
    for command in COMMANDS:
        result = runner.invoke(app, [*command, value])
        assert result.exit_code == 2, (command, result.output)
        line = _one_line_error(result.output)
        assert line.startswith("error:") and "is not a period" in line, (command, line)
    assert _count(database_url, ReviewCycle) == cycles


@pytest.mark.parametrize("days", ["0", "-1", str(TOKEN_DAYS[1] + 1), "99999999"])
def test_a_token_lifetime_out_of_bounds_is_refused_in_one_line(
    days: str, database_url: str
) -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org" / "people.csv")])

    result = runner.invoke(app, ["token", "create", "--person", "E002", "--days", days])

    assert result.exit_code == 2, result.output
    assert _one_line_error(result.output) == (
        f"error: --days: {days} is not a lifetime; give 1 to 3650 days"
    )
    assert _count(database_url, ApiToken) == 0


@pytest.mark.parametrize("days", [1, 3650])
def test_a_token_lifetime_within_bounds_is_the_one_asked(days: int, database_url: str) -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org" / "people.csv")])

    result = runner.invoke(app, ["token", "create", "--person", "E002", "--days", str(days)])

    assert result.exit_code == 0, result.output
    engine = make_engine(database_url)
    with engine.connect() as conn:
        expires = conn.execute(select(ApiToken.expires_at)).scalar_one()
    engine.dispose()
    assert abs(expires - (datetime.now(UTC) + timedelta(days=days))) < timedelta(minutes=5)


def test_the_token_bounds_are_the_settings_bounds() -> None:
    assert TOKEN_DAYS == (1, 3650)
    for days in (TOKEN_DAYS[0] - 1, TOKEN_DAYS[1] + 1):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, api_token_days=days)
