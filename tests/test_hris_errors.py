"""What is wrong with a mapping or an export is told by file, line and reason, nothing is
written, and hostile exports (formulas, markup, huge cells, a BOM, another encoding) are
refused or stored as plain text; the `fairdraft hris` commands say the same."""

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from service.cli import app
from service.db.models import Person
from service.ingest.errors import IngestError, IngestRefused
from service.ingest.hris import importer
from service.ingest.hris.mapping import (
    MappingRefused,
    UnknownMapping,
    load_mapping,
    parse_mapping,
    shipped_sample,
)
from service.settings import get_settings
from tests.test_hris import TODAY, import_sample, people

runner = CliRunner()
GOOD = """vendor = "Test HRIS"
date_format = "%d.%m.%Y"

[columns]
employee_id = "ID"
name = { join = ["First", "Last"] }
email = "Email"
manager_id = "Boss"
level = "Level"
job_family = "Family"
department = "Dept"
location = "Site"
hire_date = "Hired"
"""
HEADER = "ID,First,Last,Email,Boss,Level,Family,Dept,Site,Hired"
BAD_MAPPINGS = {
    "an unknown key, with a suggestion": (
        GOOD.replace('hire_date = "Hired"', 'hire_date = { column = "Hired", date_fromat = "x" }'),
        "line 13, columns.hire_date.date_fromat: unknown key (did you mean 'date_format'?)",
    ),
    "an unknown top-level key": (
        'timezone = "UTC"\n' + GOOD,
        "line 1, timezone: unknown key",
    ),
    "a column mapped twice": (
        GOOD.replace('job_family = "Family"', 'job_family = "Level"'),
        "line 10, columns.job_family: column 'Level' is already mapped by columns.level",
    ),
    "a date format that is not one": (
        GOOD.replace('"%d.%m.%Y"', '"%d/%Q"'),
        "line 2, date_format: '%d/%Q' is not a date format "
        "('Q' is a bad directive in format '%d/%Q')",
    ),
    "a date format without the year": (
        GOOD.replace(
            'hire_date = "Hired"', 'hire_date = { column = "Hired", date_format = "%d %m" }'
        ),
        "line 13, columns.hire_date.date_format: '%d %m' is not a date format: "
        "it must give the day, the month and the year",
    ),
    "a required field unmapped": (
        GOOD.replace('level = "Level"\n', ""),
        "line 4, columns.level: is required: map it to an export column, or give a constant",
    ),
    "a key given twice (tomllib's own line)": (
        GOOD + 'email = "Other"\n',
        "line 14, (toml): Cannot overwrite a value (at line 14, column 16)",
    ),
    "neither column, join nor constant": (
        GOOD.replace('department = "Dept"', 'department = { default = "x" }'),
        "line 11, columns.department.column: give exactly one of column, join or constant",
    ),
    "a date format on a field that is not a date": (
        GOOD.replace('location = "Site"', 'location = { column = "Site", date_format = "%Y" }'),
        "line 12, columns.location.date_format: only hire_date and termination_date are dates",
    ),
    "a number where a column name goes": (
        GOOD.replace('email = "Email"', "email = 7"),
        "line 7, columns.email: give the export column's name, or a table with column, "
        "join or constant",
    ),
    "a demographic named like one of our columns": (
        GOOD + '[demographics]\nlevel = "Grade"\n',
        "line 15, demographics.level: is one of people.csv's own columns",
    ),
}


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    path = tmp_path / "test.toml"
    path.write_text(GOOD, encoding="utf-8")
    return path


def export(tmp_path: Path, *rows: str, header: str = HEADER, encoding: str = "utf-8") -> Path:
    path = tmp_path / "export.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding=encoding)
    return path


def count_people(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Person)).scalar_one())


@pytest.mark.parametrize("case", BAD_MAPPINGS)
def test_a_bad_mapping_is_refused_naming_line_key_and_reason(case: str) -> None:
    text, expected = BAD_MAPPINGS[case]

    with pytest.raises(MappingRefused) as refused:
        parse_mapping(text, "test.toml")

    assert [str(error) for error in refused.value.errors] == [expected]
    assert str(refused.value).startswith("test.toml: mapping refused, 1 problem")


def test_every_shipped_mapping_loads() -> None:
    for name in ("workday", "bamboohr", "rippling", "hibob", "personio"):
        assert load_mapping(name).mapping.columns.employee_id is not None


def test_an_unknown_mapping_name_lists_the_shipped_ones() -> None:
    with pytest.raises(UnknownMapping, match="neither a shipped mapping \\(workday, bamboohr"):
        load_mapping("sap")


def test_a_mapping_that_is_not_utf8_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(GOOD.replace("Test", "T\xe9st").encode("latin-1"))

    with pytest.raises(MappingRefused) as refused:
        load_mapping(str(path))

    assert [str(e) for e in refused.value.errors] == ["line 1, (file): not UTF-8 text"]


def test_a_column_missing_from_the_export_is_named_on_the_header_line(
    engine: Engine, tmp_path: Path, mapping_file: Path
) -> None:
    path = export(tmp_path, header=HEADER.replace(",Hired", ""))

    with pytest.raises(IngestRefused) as refused:
        import_sample(engine, str(mapping_file), path)

    assert [str(e) for e in refused.value.errors] == [
        "line 1, Hired: column is missing from the header (the test mapping reads it)"
    ]


def test_bad_values_are_named_by_line_and_the_exports_own_column(
    engine: Engine, tmp_path: Path, mapping_file: Path
) -> None:
    path = export(
        tmp_path,
        "1,Ada,Lee,ada@example.com,,L5,eng,Core,Remote,01.02.2020",
        "2,Bo,Chen,not-an-email,1,L4,eng,Core,Remote,2020-02-01",
        "3,,,cy@example.com,9,L3,eng,Core,Remote,",
        "1,Dee,Oh,dee@example.com,,L3,eng,Core,Remote,",
    )

    with pytest.raises(IngestRefused) as refused:
        import_sample(engine, str(mapping_file), path)

    assert [str(e) for e in refused.value.errors] == [
        "line 3, Email: 'not-an-email' is not an email address",
        "line 3, Hired: '2020-02-01' is not a date (%d.%m.%Y)",
        "line 4, First + Last: is required",
        "line 5, ID: 1 already appears on line 2",
    ]
    assert count_people(engine) == 0


def test_an_unknown_manager_is_named_with_the_exports_column(
    engine: Engine, tmp_path: Path, mapping_file: Path
) -> None:
    path = export(tmp_path, "1,Ada,Lee,ada@example.com,99,L5,eng,Core,Remote,")

    with pytest.raises(IngestRefused) as refused:
        import_sample(engine, str(mapping_file), path)

    assert [str(e) for e in refused.value.errors] == [
        "line 2, Boss: manager 99 is not in this file or the database"
    ]


def test_managers_by_name_refuse_a_name_two_people_share(engine: Engine, tmp_path: Path) -> None:
    sample = shipped_sample("personio").read_text(encoding="utf-8")
    twin = "4717,Jonas,Weber,jonas.weber2@example.com,Greta Vogel,Mid,QA,Eng,Munich,,,Active,male"
    path = tmp_path / "personio.csv"
    path.write_text(sample + twin + "\n", encoding="utf-8")

    with pytest.raises(IngestRefused) as refused:
        import_sample(engine, "personio", path)

    assert [str(e) for e in refused.value.errors] == [
        "line 4, Supervisor: 2 people have the name 'Jonas Weber'; "
        "map the manager's employee id instead",
        "line 5, Supervisor: 2 people have the name 'Jonas Weber'; "
        "map the manager's employee id instead",
    ]


def test_managers_by_email_may_be_people_already_stored(engine: Engine, tmp_path: Path) -> None:
    import_sample(engine, "rippling")
    header = shipped_sample("rippling").read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "new_hire.csv"
    path.write_text(
        header + "\nR-07,Ivo Petrov,ivo.petrov@example.com,DEV.SHARMA@example.com,Mid,"
        "Engineering,Platform,Remote,11/16/2026,,Salaried full-time,Male,White\n",
        encoding="utf-8",
    )

    summary = import_sample(engine, "rippling", path)

    assert (summary.inserted, summary.unchanged) == (1, 0)
    assert people(engine)["R-07"]["manager"] == "R-02"


def test_hostile_values_are_stored_as_the_text_they_are(
    engine: Engine, tmp_path: Path, mapping_file: Path
) -> None:
    formula = '=HYPERLINK(""http://x.example"",""click"")'
    path = export(
        tmp_path,
        f'1,"{formula}",<script>alert(1)</script>,ada@example.com,,L5,eng,Core,Remote,',
        "2,Bo,\"Chen, {{7*7}}\",bo@example.com,1,'+cmd|' /C calc'!A0,eng,Core,Remote,",
    )

    import_sample(engine, str(mapping_file), path)

    stored = people(engine)
    assert stored["1"]["name"] == '=HYPERLINK("http://x.example","click") <script>alert(1)</script>'
    assert stored["2"]["name"] == "Bo Chen, {{7*7}}"
    assert stored["2"]["level"] == "'+cmd|' /C calc'!A0"


def test_a_huge_cell_is_refused_by_line_and_column(
    engine: Engine, tmp_path: Path, mapping_file: Path
) -> None:
    path = export(tmp_path, f"{'9' * 5000},Ada,Lee,ada@example.com,,L5,eng,Core,Remote,")

    with pytest.raises(IngestRefused) as refused:
        import_sample(engine, str(mapping_file), path)

    assert [str(e) for e in refused.value.errors] == ["line 2, ID: longer than 64 characters"]


def test_an_export_with_a_byte_order_mark_is_read(
    engine: Engine, tmp_path: Path, mapping_file: Path
) -> None:
    path = export(tmp_path, "1,Ada,Lee,ada@example.com,,L5,eng,Core,Remote,", encoding="utf-8-sig")

    summary = import_sample(engine, str(mapping_file), path)

    assert summary.inserted == 1


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        (
            "cp1252",
            "line 2, (encoding): invalid UTF-8 at byte column 6 (byte 0xe9); "
            "save the file as UTF-8",
        ),
        ("utf-16", "line 1, (file): this is"),
    ],
)
def test_an_export_in_another_encoding_is_refused_saying_so(
    engine: Engine, tmp_path: Path, mapping_file: Path, encoding: str, expected: str
) -> None:
    path = export(tmp_path, "1,Ren\xe9,Lee,ada@example.com,,L5,eng,Core,Remote,", encoding=encoding)

    with pytest.raises(IngestRefused) as refused:
        import_sample(engine, str(mapping_file), path)

    assert str(refused.value.errors[0]).startswith(expected)
    assert count_people(engine) == 0


def test_a_missing_export_is_an_input_error(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot read the file"):
        import_sample(engine, "workday", tmp_path / "nope.csv")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    """The CLI on this test's database, on the samples' fixed day (their future leavers
    stay in the future whenever the tests run)."""
    monkeypatch.setattr(importer, "today_utc", lambda: TODAY)
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_MODEL", "hashing-384")
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_env")
def test_the_cli_imports_a_shipped_sample_and_again_changes_nothing() -> None:
    sample = str(shipped_sample("bamboohr"))

    first = runner.invoke(app, ["hris", "import", sample, "--mapping", "bamboohr", "--json"])
    again = runner.invoke(app, ["hris", "import", sample, "--mapping", "BambooHR", "--json"])

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    reports = [json.loads(r.stdout) for r in (first, again)]
    counts = [r["file"] for r in reports]
    assert [(c["format"], c["inserted"], c["updated"], c["unchanged"]) for c in counts] == [
        ("hris:bamboohr", 6, 0, 0),
        ("hris:bamboohr", 0, 0, 6),
    ]
    assert [r["deactivated"] for r in reports] == [["1004", "1005"], []]


@pytest.mark.usefixtures("cli_env")
def test_the_cli_dry_run_says_who_would_leave_and_writes_nothing(engine: Engine) -> None:
    sample = str(shipped_sample("workday"))

    result = runner.invoke(app, ["hris", "import", sample, "--mapping", "workday", "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "would be inactive: 21005" in result.output
    assert "dry run: nothing was written" in result.output
    assert count_people(engine) == 0


@pytest.mark.usefixtures("cli_env")
def test_the_cli_names_a_bad_mappings_line_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "mine.toml"
    bad.write_text(GOOD.replace('job_family = "Family"', 'job_family = "Level"'), encoding="utf-8")
    sample = export(tmp_path, "1,Ada,Lee,ada@example.com,,L5,eng,Core,Remote,")

    result = runner.invoke(app, ["hris", "import", str(sample), "--mapping", str(bad)])

    assert result.exit_code == 1
    assert "mapping refused, 1 problem" in result.output
    assert "columns.job_family" in result.output and "already mapped by" in result.output


@pytest.mark.usefixtures("cli_env")
def test_the_cli_lists_and_checks_the_shipped_mappings() -> None:
    listed = runner.invoke(app, ["hris", "mappings", "--json"])
    checked = runner.invoke(app, ["hris", "check", "personio"])
    unknown = runner.invoke(app, ["hris", "check", "sap"])

    assert listed.exit_code == 0, listed.output
    found = json.loads(listed.stdout)["mappings"]
    assert [(m["name"], m["vendor"]) for m in found] == [
        ("workday", "Workday"),
        ("bamboohr", "BambooHR"),
        ("rippling", "Rippling"),
        ("hibob", "HiBob"),
        ("personio", "Personio"),
    ]
    assert all(Path(m["mapping"]).is_file() and Path(m["sample"]).is_file() for m in found)
    assert checked.exit_code == 0 and "ok (Personio)" in checked.output
    assert unknown.exit_code == 2 and "neither a shipped mapping" in unknown.output


@pytest.mark.usefixtures("cli_env")
def test_the_cli_names_a_bad_exports_line_and_column_and_writes_nothing(
    tmp_path: Path, engine: Engine
) -> None:
    sample = shipped_sample("personio").read_text(encoding="utf-8")
    bad = tmp_path / "personio.csv"
    bad.write_text(sample.replace("15.08.2019", "2019-08-15"), encoding="utf-8")

    result = runner.invoke(app, ["hris", "import", str(bad), "--mapping", "personio"])
    missing = runner.invoke(app, ["hris", "import", str(tmp_path / "nope.csv"), "-m", "x"])

    assert result.exit_code == 1, result.output
    # Jonas's row is refused, and with it (as in people.csv) the two people he manages.
    assert "refused, 3 invalid rows" in result.output
    assert "manager 4712 is in this file, but their row is refused" in result.output
    assert "Hire date" in result.output and "'2019-08-15' is not a date (%d.%m.%Y)" in result.output
    assert count_people(engine) == 0
    assert missing.exit_code == 2


def test_a_header_close_to_the_mapped_name_is_suggested(
    engine: Engine, tmp_path: Path, mapping_file: Path
) -> None:
    path = export(tmp_path, header=HEADER.replace("Email", "E-mail"))

    with pytest.raises(IngestRefused) as refused:
        import_sample(engine, str(mapping_file), path)

    assert [str(e) for e in refused.value.errors] == [
        "line 1, Email: column is missing from the header (the test mapping reads it); "
        "the header has 'E-mail'"
    ]


def test_a_semicolon_export_is_read_with_its_delimiter_and_told_without_it(
    engine: Engine, tmp_path: Path, mapping_file: Path
) -> None:
    row = "1;Ada;Lee;ada@example.com;;L5;eng;Core;Remote;01.02.2020"
    path = export(tmp_path, row, header=HEADER.replace(",", ";"))
    with pytest.raises(IngestRefused) as refused:
        import_sample(engine, str(mapping_file), path)
    semicolon = tmp_path / "semicolon.toml"
    semicolon.write_text('delimiter = ";"\n' + GOOD, encoding="utf-8")

    summary = import_sample(engine, str(semicolon), path)

    assert [str(e) for e in refused.value.errors] == [
        "line 1, (header): one column only: is the export delimited by something other "
        "than ','? (set delimiter in the mapping)"
    ]
    assert summary.inserted == 1
    assert people(engine)["1"]["hire_date"] == date(2020, 2, 1)


def test_a_huge_bad_value_is_named_without_being_echoed_whole(
    engine: Engine, tmp_path: Path, mapping_file: Path
) -> None:
    boss, hired = "m" * 5000, "9" * 5000
    path = export(tmp_path, f"1,Ada,Lee,ada@example.com,{boss},L5,eng,Core,Remote,{hired}")

    with pytest.raises(IngestRefused) as refused:
        import_sample(engine, str(mapping_file), path)

    assert [str(e) for e in refused.value.errors] == [
        "line 2, Boss: longer than 64 characters",
        f"line 2, Hired: '{'9' * 60}...' is not a date (%d.%m.%Y)",
    ]
