"""The bias report as one typed contract (issue 13): built, stored and read back through the
same models; reports stored before the models still load; the command line, the HR page
and the API each show every kind of finding, hostile names as plain text.

tests/fixtures/bias_report_v1.json holds reports as the code before the models wrote
them (its `_source` says how they were made).
"""

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import Connection, Engine, insert, select
from typer.testing import CliRunner

from domain.errors import Misconfigured
from domain.periods import parse_period
from service.bias.display import print_report
from service.bias.nlp import SenseParser
from service.bias.report import build_report, latest_report
from service.bias.report_model import (
    BiasReportBody,
    DataSeen,
    GapFinding,
    ImpactFinding,
    LanguageFinding,
    ManagerFinding,
    MismatchFinding,
    StoredBiasReport,
)
from service.cli import app
from service.db.models import BiasReport
from service.settings import get_settings
from service.web.pages.hr import WHAT
from tests.api_org import CYCLE, ApiOrg
from tests.bias_reports import FINDING_KINDS, WHEN, stored_report
from tests.conftest import FIXTURES
from tests.test_web import sign_in
from tests.test_web_escaping import PAYLOADS, html, injected

OLD = json.loads((FIXTURES / "bias_report_v1.json").read_text())
runner = CliRunner()
# What the models write that reports before them left out (see service/bias/report_model.py).
ADDED_WHEN_RATED = {"ratings.note"}
ADDED_WITHOUT_RATINGS = {"ratings.by_attribute", "ratings.managers", "ratings.mismatched"}
# What issue 14 added (null or empty in reports before it), left out where shapes are compared
# with the reports before the models: the language part's share test and its phrases, and
# the ratings part's intervals and verdicts.
ADDED_LANGUAGE = ("language[].share", "findings[].share", "findings[].phrases")
ADDED_RATINGS = tuple(
    f"{where}.{field}"
    for where in ("findings[]", "ratings.managers[]", "ratings.mismatched[]")
    for field in ("estimate", "ci_low", "ci_high", "verdict", "pi_low", "pi_high", "level")
)
# Keys that are data (attribute names, draft kinds, rating values), not shape.
DATA_KEYS = {"by_attribute", "drafts_by_kind", "counts"}
# Names that rich would read as markup (a style, a closing tag with nothing to close).
MARKUP = ("[prefer not to say]", "a[/]b [bold]c[/bold]")
HOSTILE = (*MARKUP, *PAYLOADS)


def paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value, list items and data-named keys collapsed."""
    if prefix.startswith(ADDED_LANGUAGE) or prefix in ADDED_RATINGS:
        return set()
    found = {prefix} if prefix else set()
    if isinstance(value, dict):
        for key, item in value.items():
            name = "*" if prefix.rsplit(".", 1)[-1] in DATA_KEYS else key
            found |= paths(item, f"{prefix}.{name}" if prefix else name)
    elif isinstance(value, list):
        for item in value:
            found |= paths(item, f"{prefix}[]")
    return found


def store(connection: Connection, report: StoredBiasReport) -> None:
    """As build_report stores a report: the JSON of its models."""
    connection.execute(
        insert(BiasReport).values(
            cycle=report.cycle,
            version=report.version,
            created_by=report.created_by,
            created_at=report.created_at,
            data_seen=report.data_seen.model_dump(mode="json"),
            report=report.report.model_dump(mode="json"),
        )
    )


# ---------------------------------------------------------------- storage


def test_a_built_report_reads_back_equal_in_the_shape_reports_were_stored_in(
    engine: Engine, api_org: ApiOrg, sense_parser: SenseParser
) -> None:
    with engine.begin() as conn:
        built = build_report(conn, parse_period(CYCLE), actor="hal", parser=sense_parser)
    with engine.connect() as conn:
        read = latest_report(conn, CYCLE)
        raw = conn.execute(select(BiasReport.report, BiasReport.data_seen)).one()

    assert read == built
    assert built.report.ratings.ratings > 0 and built.report.language
    assert paths(raw.report) - ADDED_WHEN_RATED <= paths(OLD["rated"])
    assert paths(raw.data_seen) == paths(OLD["data_seen"])


def test_every_kind_of_finding_is_stored_in_the_shape_the_code_before_the_models_wrote() -> None:
    """The report with one finding of each kind, dumped for storage, has exactly the key
    paths of the same report written by the code before (plus `ratings.note`)."""
    new = stored_report("gender", cycle=CYCLE, person=3, manager=2)

    assert paths(new.report.model_dump(mode="json")) == paths(OLD["rated"]) | ADDED_WHEN_RATED
    assert paths(new.data_seen.model_dump(mode="json")) == paths(OLD["data_seen"])
    assert {f["what"] for f in OLD["rated"]["findings"]} == FINDING_KINDS


@pytest.mark.parametrize(
    ("variant", "added"), [("rated", ADDED_WHEN_RATED), ("no_ratings", ADDED_WITHOUT_RATINGS)]
)
def test_a_report_stored_before_the_models_loads_and_dumps_back_with_only_the_defaults(
    engine: Engine, variant: str, added: set[str]
) -> None:
    old = OLD[variant]
    with engine.begin() as conn:
        conn.execute(
            insert(BiasReport).values(
                cycle=CYCLE, version=1, created_by="hr", data_seen=OLD["data_seen"], report=old
            )
        )
    with engine.connect() as conn:
        read = latest_report(conn, CYCLE)

    assert read is not None
    dumped = read.report.model_dump(mode="json")
    assert paths(dumped) == paths(old) | added
    assert {k: v for k, v in _less_added_language(dumped).items() if k != "ratings"} == {
        k: v for k, v in old.items() if k != "ratings"
    }
    ratings = _less_added_ratings(dumped["ratings"])
    assert {k: v for k, v in ratings.items() if k in old["ratings"]} == old["ratings"]
    assert read.data_seen == DataSeen.model_validate(OLD["data_seen"])
    assert read.data_seen.last_draft_version_at == WHEN


def _less_added_language(dumped: dict[str, Any]) -> dict[str, Any]:
    """A dumped report without what issue 14 added to its findings (their defaults)."""
    added: dict[str, Any] = {"share": None, "phrases": []}
    rated: dict[str, Any] = dict.fromkeys(RATED_FIELDS)
    return {
        **dumped,
        "language": [_less(c, added) for c in dumped["language"]],
        "findings": [
            _less(f, added)
            if f["what"] == "language"
            else _less(f, rated)
            if f["what"] in {"manager_harsh", "manager_generous", "mismatched_rating"}
            else f
            for f in dumped["findings"]
        ],
    }


RATED_FIELDS = ("estimate", "ci_low", "ci_high", "verdict", "pi_low", "pi_high", "level")


def _less_added_ratings(ratings: dict[str, Any]) -> dict[str, Any]:
    """The ratings part without the intervals and verdicts issue 14 added (their defaults)."""
    rated = dict.fromkeys(RATED_FIELDS)
    return {
        **ratings,
        **{
            part: [_less(item, rated) for item in ratings[part]]
            for part in ("managers", "mismatched")
            if part in ratings
        },
    }


def _less(item: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    for key, value in defaults.items():
        assert item.get(key, value) == value, key
    return {k: v for k, v in item.items() if k not in defaults}


def test_the_old_reports_findings_load_as_their_kinds_and_the_rest_as_its_defaults() -> None:
    rated = BiasReportBody.model_validate(OLD["rated"])
    bare = BiasReportBody.model_validate(OLD["no_ratings"])

    kinds = [type(f) for f in rated.findings]
    assert set(kinds) == {
        LanguageFinding,
        ImpactFinding,
        GapFinding,
        ManagerFinding,
        MismatchFinding,
    }
    assert rated.ratings.by_attribute["gender"].distribution.groups[0].counts == {
        1: 0,
        2: 1,
        3: 3,
        4: 3,
        5: 1,
    }
    assert bare.ratings.note == "cycle 2026-H1 has no ratings yet"
    assert (bare.ratings.by_attribute, bare.ratings.managers, bare.ratings.mismatched) == (
        {},
        (),
        (),
    )


def test_a_report_stored_in_a_form_this_version_does_not_read_is_a_clear_error(
    engine: Engine,
) -> None:
    newer = {**OLD["rated"], "format": "fairdraft-bias-report/2"}
    with engine.begin() as conn:
        conn.execute(
            insert(BiasReport).values(
                cycle=CYCLE, version=1, created_by="hr", data_seen=OLD["data_seen"], report=newer
            )
        )
    with engine.connect() as conn, pytest.raises(Misconfigured, match="bias report 1 of 2026-H1"):
        latest_report(conn, CYCLE)


# ---------------------------------------------------------------- the command line


def terminal(report: StoredBiasReport) -> str:
    console = Console(record=True, width=250, file=io.StringIO())
    print_report(console, report)
    return console.export_text()


@pytest.mark.parametrize("name", MARKUP)
def test_the_cli_prints_every_kind_of_finding_with_names_as_plain_text(name: str) -> None:
    """Group names with brackets were read as rich markup: "[prefer not to say]" vanished
    and a stray "[/]" stopped the report with a MarkupError."""
    text = terminal(stored_report(name, cycle=CYCLE, person=3, manager=2))

    assert "findings (5), flagged first" in text
    for kind in FINDING_KINDS:
        assert kind in text
    assert f"{name} / {name} / {name}" in text  # language: attribute / scope / measure
    assert "Cliff's delta -0.82" in text
    assert "top-rating rate 14%, ratio 0.29" in text
    assert "-0.61 points with evidence held equal (95% CI -0.95 to -0.27)" in text
    assert "manager 2 (4 reports)" in text and "-0.74 points vs the evidence" in text
    assert "person 3 (rater 2)" in text and "rated 1, evidence suggests 3.6 (-2.6)" in text
    assert f"top ratings (>= 4) by {name}" in text


def test_the_cli_says_why_a_cycle_without_ratings_has_no_ratings_analysis() -> None:
    report = stored_report("gender", cycle=CYCLE, person=3, manager=2)
    bare = BiasReportBody.model_validate(OLD["no_ratings"])

    text = terminal(report.model_copy(update={"report": bare}))

    assert "ratings: cycle 2026-H1 has no ratings yet" in text
    assert "0 ratings" in text


def test_the_cli_json_is_the_stored_report_as_the_api_returns_it(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_MODEL", "hashing-384")
    get_settings.cache_clear()
    runner.invoke(app, ["ingest", str(FIXTURES / "org")])

    result = runner.invoke(app, ["bias-report", "--cycle", CYCLE, "--json"])

    assert result.exit_code == 0, result.output
    printed = StoredBiasReport.model_validate_json(result.stdout)
    with engine.connect() as conn:
        assert latest_report(conn, CYCLE) == printed
    assert printed.report.ratings.ratings == 3


# ---------------------------------------------------------------- the HR page and the API


@pytest.fixture
def hal(client: TestClient, api_org: ApiOrg) -> Iterator[TestClient]:
    sign_in(client, api_org, "hal")
    yield client


def test_the_hr_page_shows_every_kind_of_finding_and_escapes_hostile_names(
    hal: TestClient, engine: Engine, api_org: ApiOrg
) -> None:
    cy, bo = api_org.ids["cy"], api_org.ids["bo"]
    for version, name in enumerate(HOSTILE, start=1):
        report = stored_report(name, cycle=CYCLE, person=cy, manager=bo)
        with engine.begin() as conn:
            store(conn, report.model_copy(update={"version": version}))

        page = hal.get("/hr", params={"cycle": CYCLE})

        assert page.status_code == 200, page.text
        assert not injected(page.text), (name, injected(page.text))
        assert f"Report version {version}" in page.text
        assert "Flagged findings (5)" in page.text
        for kind in FINDING_KINDS:
            assert WHAT[kind] in page.text
        assert "Cy Diaz (E003)" in page.text and "Bo Chen (E002)" in page.text
        assert html(name) in page.text


def test_the_api_returns_the_stored_report_as_its_schema_says(
    client: TestClient, engine: Engine, api_org: ApiOrg
) -> None:
    report = stored_report("gender", cycle=CYCLE, person=api_org.ids["cy"], manager=2)
    with engine.begin() as conn:
        store(conn, report)
    openapi = client.get("/openapi.json").json()
    operation = openapi["paths"]["/api/v1/cycles/{cycle}/bias-report"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": openapi["components"]})

    response = client.get(f"/api/v1/cycles/{CYCLE}/bias-report", headers=api_org.auth("hal"))
    refused = client.get(f"/api/v1/cycles/{CYCLE}/bias-report", headers=api_org.auth("bo"))

    assert response.status_code == 200, response.text
    assert schema == {"$ref": "#/components/schemas/StoredBiasReport"}
    assert not list(validator.iter_errors(response.json()))
    assert StoredBiasReport.model_validate(response.json()) == report
    assert {f["what"] for f in response.json()["report"]["findings"]} == FINDING_KINDS
    assert refused.status_code == 403
