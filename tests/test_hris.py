"""HRIS exports through their mappings (service/ingest/hris/) and people.csv's leavers:
each shipped sample stored like people.csv, leavers kept but inactive, re-import changing
nothing, and a manager change keeping its history (the trigger of migration 0017)."""

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import aliased

from service.db.models import AuditEvent, Demographic, ManagerSpell, Person
from service.ingest.hris.importer import HrisImport, import_export
from service.ingest.hris.mapping import (
    SHIPPED,
    LoadedMapping,
    load_mapping,
    shipped_path,
    shipped_sample,
)
from service.ingest.people import deactivate_leavers, ingest_people
from service.ingest.summary import IngestSummary
from service.ingest.validate import FileLimits

TODAY = date(2026, 12, 1)
PEOPLE_HEADER = "employee_id,name,email,manager_id,level,job_family,department,location,hire_date"

# Per vendor: (a person, their name, manager, level, job family, hire date), the leaver
# whose termination date has passed, the one leaving later, and one demographic value.
EXPECTED = {
    "workday": (
        ("21004", "Tomás Ferreira", "21002", "L3", "Engineering", date(2022, 7, 11)),
        ("21005", date(2026, 6, 30)),
        ("21006", date(2027, 3, 31)),
        ("21003", "ethnicity", "Asian"),
    ),
    "bamboohr": (
        ("1003", "Priya Raman", "1002", "unlevelled", "engineering", date(2022, 1, 10)),
        ("1004", date(2026, 4, 30)),
        ("1006", date(2027, 1, 31)),
        ("1005", "gender", "Female"),
    ),
    "rippling": (
        ("R-02", "Dev Sharma", "R-01", "Senior", "Engineering", date(2020, 6, 14)),
        ("R-04", date(2026, 7, 15)),
        ("R-06", date(2027, 2, 28)),
        ("R-04", "gender", "Non-binary"),
    ),
    "hibob": (
        ("B102", "Yara Costa", "B101", "Mid", "Backend Engineer", date(2022, 4, 4)),
        ("B103", date(2026, 5, 31)),
        ("B105", date(2027, 4, 30)),
        ("B104", "gender", "Female"),
    ),
    "personio": (
        ("4713", "Leonie Schulz", "4712", "Junior", "Software Engineer", date(2023, 1, 3)),
        ("4714", date(2026, 3, 31)),
        ("4716", date(2027, 2, 28)),
        ("4715", "gender", "diverse"),
    ),
}


def import_sample(
    engine: Engine,
    mapping: LoadedMapping | str,
    path: Path | None = None,
    *,
    today: date = TODAY,
    skip_invalid: bool = False,
) -> IngestSummary:
    return run_import(engine, mapping, path, today=today, skip_invalid=skip_invalid).summary


def run_import(
    engine: Engine,
    mapping: LoadedMapping | str,
    path: Path | None = None,
    *,
    today: date = TODAY,
    skip_invalid: bool = False,
    dry_run: bool = False,
) -> HrisImport:
    loaded = load_mapping(mapping) if isinstance(mapping, str) else mapping
    return import_export(
        engine,
        path or shipped_sample(loaded.name),
        loaded,
        actor="test",
        skip_invalid=skip_invalid,
        batch_rows=2,  # small batches: the rounds and batches both get exercised
        limits=FileLimits(),
        today=today,
        dry_run=dry_run,
    )


def people(engine: Engine) -> dict[str, dict[str, object]]:
    manager = aliased(Person)
    columns = (
        Person.id,
        Person.name,
        Person.email,
        manager.employee_id.label("manager"),
        Person.level,
        Person.job_family,
        Person.hire_date,
        Person.active,
        Person.left_on,
    )
    query = select(Person.employee_id, *columns).outerjoin(manager, Person.manager_id == manager.id)
    with engine.connect() as conn:
        return {row.employee_id: dict(row._mapping) for row in conn.execute(query)}


def demographics(engine: Engine, person_id: object) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Demographic.attribute, Demographic.value).where(
                Demographic.person_id == person_id
            )
        )
        return {row.attribute: row.value for row in rows}


def spells(engine: Engine, employee_id: str) -> list[tuple[str | None, bool]]:
    """(manager's employee_id, still open) of one person's manager history, oldest first."""
    person, manager = aliased(Person), aliased(Person)
    query = (
        select(manager.employee_id, ManagerSpell.ended_at)
        .join(person, ManagerSpell.person_id == person.id)
        .outerjoin(manager, ManagerSpell.manager_id == manager.id)
        .where(person.employee_id == employee_id)
        .order_by(ManagerSpell.id)
    )
    with engine.connect() as conn:
        return [(row[0], row[1] is None) for row in conn.execute(query)]


def write_people_csv(path: Path, rows: list[str], *, leaving: bool = True) -> Path:
    header = PEOPLE_HEADER + (",termination_date" if leaving else "")
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def ingest_csv(engine: Engine, path: Path, today: date = TODAY) -> IngestSummary:
    return ingest_people(
        engine, path, actor="test", skip_invalid=False, batch_rows=500, today=today
    )


@pytest.mark.parametrize("vendor", SHIPPED)
def test_each_shipped_sample_is_mapped_and_stored_with_its_leavers_kept_inactive(
    engine: Engine, vendor: str
) -> None:
    (person, name, manager, level, family, hired), gone, leaving, demo = EXPECTED[vendor]

    summary = import_sample(engine, vendor)

    assert (summary.inserted, summary.updated, summary.unchanged, summary.refused) == (
        6,
        0,
        0,
        [],
    )
    assert summary.format == f"hris:{vendor}"
    stored = people(engine)
    assert len(stored) == 6
    assert (
        stored[person]["name"],
        stored[person]["manager"],
        stored[person]["level"],
        stored[person]["job_family"],
        stored[person]["hire_date"],
        stored[person]["active"],
    ) == (name, manager, level, family, hired, True)
    assert (stored[gone[0]]["active"], stored[gone[0]]["left_on"]) == (False, gone[1])
    assert (stored[leaving[0]]["active"], stored[leaving[0]]["left_on"]) == (True, leaving[1])
    who, attribute, value = demo
    assert demographics(engine, stored[who]["id"])[attribute] == value
    with engine.connect() as conn:
        person_columns = set(
            conn.execute(
                text("SELECT column_name FROM information_schema.columns WHERE table_name='people'")
            ).scalars()
        )
        audited = conn.execute(select(AuditEvent.action, AuditEvent.entity_id)).all()
    assert not {"gender", "ethnicity"} & person_columns
    assert (f"ingest.hris:{vendor}", str(shipped_sample(vendor))) in audited


@pytest.mark.parametrize("vendor", SHIPPED)
def test_reimporting_a_sample_changes_nothing(engine: Engine, vendor: str) -> None:
    import_sample(engine, vendor)
    before = people(engine)

    again = import_sample(engine, vendor)

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 6)
    assert people(engine) == before


def test_a_status_column_marks_a_leaver_without_a_termination_date(engine: Engine) -> None:
    import_sample(engine, "bamboohr")

    naomi = people(engine)["1005"]  # Status "Inactive", Termination Date empty

    assert (naomi["active"], naomi["left_on"]) == (False, None)


def test_a_future_leaver_becomes_inactive_when_reimported_after_their_date(
    engine: Engine,
) -> None:
    import_sample(engine, "workday")

    later = import_sample(engine, "workday", today=date(2027, 3, 31))

    assert (later.updated, later.unchanged) == (1, 5)
    kai = people(engine)["21006"]
    assert (kai["active"], kai["left_on"]) == (False, date(2027, 3, 31))


def test_people_csv_termination_date_past_today_future_and_empty(
    engine: Engine, tmp_path: Path
) -> None:
    rows = [
        "P1,Ada Past,ada@example.com,,L5,eng,Core,Remote,2020-01-01,2026-11-30",
        "P2,Bea Today,bea@example.com,P1,L4,eng,Core,Remote,2020-01-01,2026-12-01",
        "P3,Cal Future,cal@example.com,P1,L4,eng,Core,Remote,2020-01-01,2027-01-15",
        "P4,Dot Staying,dot@example.com,P1,L3,eng,Core,Remote,2020-01-01,",
    ]
    ingest_csv(engine, write_people_csv(tmp_path / "people.csv", rows))

    stored = people(engine)

    assert [(stored[p]["active"], stored[p]["left_on"]) for p in ("P1", "P2", "P3", "P4")] == [
        (False, date(2026, 11, 30)),
        (False, date(2026, 12, 1)),
        (True, date(2027, 1, 15)),
        (True, None),
    ]


def test_people_csv_rehire_with_an_empty_termination_date_makes_them_active_again(
    engine: Engine, tmp_path: Path
) -> None:
    left = "P1,Ada Lee,ada@example.com,,L5,eng,Core,Remote,2020-01-01,2026-06-30"
    ingest_csv(engine, write_people_csv(tmp_path / "a.csv", [left]))
    unchanged = ingest_csv(engine, write_people_csv(tmp_path / "b.csv", [left]))

    back = ingest_csv(engine, write_people_csv(tmp_path / "c.csv", [left.rsplit(",", 1)[0] + ","]))

    assert (unchanged.updated, unchanged.unchanged) == (0, 1)
    assert (back.updated, back.unchanged) == (1, 0)
    assert (people(engine)["P1"]["active"], people(engine)["P1"]["left_on"]) == (True, None)


def test_people_csv_without_the_column_leaves_who_left_alone(
    engine: Engine, tmp_path: Path
) -> None:
    left = "P1,Ada Lee,ada@example.com,,L5,eng,Core,Remote,2020-01-01,2026-06-30"
    ingest_csv(engine, write_people_csv(tmp_path / "a.csv", [left]))

    again = ingest_csv(
        engine, write_people_csv(tmp_path / "b.csv", [left.rsplit(",", 1)[0]], leaving=False)
    )

    assert (again.updated, again.unchanged) == (0, 1)
    assert (people(engine)["P1"]["active"], people(engine)["P1"]["left_on"]) == (
        False,
        date(2026, 6, 30),
    )


def test_a_bad_termination_date_in_people_csv_is_named_by_line(
    engine: Engine, tmp_path: Path
) -> None:
    from service.ingest.errors import IngestRefused

    rows = ["P1,Ada Lee,ada@example.com,,L5,eng,Core,Remote,2020-01-01,30/06/2026"]

    with pytest.raises(IngestRefused) as refused:
        ingest_csv(engine, write_people_csv(tmp_path / "people.csv", rows))

    assert [str(e) for e in refused.value.errors] == [
        "line 2, termination_date: '30/06/2026' is not a date (YYYY-MM-DD)"
    ]


def test_a_manager_change_in_people_csv_keeps_the_history(engine: Engine, tmp_path: Path) -> None:
    base = [
        "M1,Mo One,mo1@example.com,,L7,eng,Core,Remote,2019-01-01,",
        "M2,Mo Two,mo2@example.com,,L7,eng,Core,Remote,2019-01-01,",
    ]
    ingest_csv(
        engine,
        write_people_csv(
            tmp_path / "a.csv", [*base, "E1,Eve,eve@example.com,M1,L4,eng,Core,Remote,,"]
        ),
    )

    moved = ingest_csv(
        engine,
        write_people_csv(
            tmp_path / "b.csv", [*base, "E1,Eve,eve@example.com,M2,L4,eng,Core,Remote,,"]
        ),
    )

    assert (moved.updated, moved.unchanged) == (1, 2)
    assert spells(engine, "E1") == [("M1", False), ("M2", True)]


def test_a_manager_change_in_a_mapped_export_keeps_the_history(
    engine: Engine, tmp_path: Path
) -> None:
    import_sample(engine, "bamboohr")
    sample = shipped_sample("bamboohr").read_text(encoding="utf-8")
    moved = tmp_path / "bamboohr.csv"
    # Priya (1003) now reports to Harriet (1001) instead of Jonah (1002).
    priya = "1003,Priya,Raman,priya.raman@example.com,"
    moved.write_text(sample.replace(priya + "1002,", priya + "1001,"), encoding="utf-8")

    summary = import_sample(engine, "bamboohr", moved)

    assert (summary.updated, summary.unchanged) == (1, 5)
    assert spells(engine, "1003") == [("1002", False), ("1001", True)]
    assert spells(engine, "1002") == [("1001", True)]  # unchanged: no new spell


def test_people_managed_by_someone_new_in_the_same_file_get_one_spell_each(
    engine: Engine,
) -> None:
    """Managers are written in the same statement as their people, managers first, so the
    history never holds a spell without a manager before the real one."""
    import_sample(engine, "personio")

    assert spells(engine, "4713") == [("4712", True)]
    assert spells(engine, "4711") == [(None, True)]


def test_skip_invalid_lands_the_valid_rows_and_names_the_invalid_ones(
    engine: Engine, tmp_path: Path
) -> None:
    sample = shipped_sample("hibob").read_text(encoding="utf-8")
    bad = tmp_path / "hibob.csv"
    bad.write_text(sample.replace("04/04/2022", "2022-04-04"), encoding="utf-8")

    summary = import_sample(engine, "hibob", bad, skip_invalid=True)

    assert (summary.inserted, summary.updated) == (5, 0)
    assert [str(e) for e in summary.refused] == [
        "line 4, Start date: '2022-04-04' is not a date (%d/%m/%Y)"
    ]
    assert "B102" not in people(engine)


def test_leavers_whose_date_has_come_are_deactivated_without_a_new_import(
    engine: Engine,
) -> None:
    import_sample(engine, "workday")  # Kai Brennan (21006) leaves on 2027-03-31

    with engine.begin() as conn:
        before = deactivate_leavers(conn, today=date(2027, 3, 30), actor="test")
        on_the_day = deactivate_leavers(conn, today=date(2027, 3, 31), actor="test")
        events = conn.execute(
            select(AuditEvent.entity_id).where(AuditEvent.action == "person.deactivated")
        ).scalars()
        audited = list(events)

    assert (before, on_the_day, audited) == ([], ["21006"], ["21006"])
    assert people(engine)["21006"]["active"] is False
    assert (import_sample(engine, "workday", today=date(2027, 3, 31)).updated) == 0


def test_an_import_says_who_it_made_inactive_and_who_came_back(
    engine: Engine, tmp_path: Path
) -> None:
    first = run_import(engine, "bamboohr")
    sample = shipped_sample("bamboohr").read_text(encoding="utf-8")
    rehired = tmp_path / "bamboohr.csv"  # Luis (1004) is back: no date, Status Active
    rehired.write_text(sample.replace("04/30/2026,Inactive", ",Active"), encoding="utf-8")

    back = run_import(engine, "bamboohr", rehired)

    assert (first.leavers.deactivated, first.leavers.reactivated) == (["1004", "1005"], [])
    assert (back.leavers.deactivated, back.leavers.reactivated) == ([], ["1004"])
    assert (people(engine)["1004"]["active"], people(engine)["1004"]["left_on"]) == (True, None)


def test_a_dry_run_counts_and_names_leavers_and_writes_nothing(engine: Engine) -> None:
    with engine.connect() as conn:
        audits_before = conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()

    dry = run_import(engine, "personio", dry_run=True)

    assert dry.dry_run and (dry.summary.inserted, dry.summary.updated) == (6, 0)
    assert dry.leavers.deactivated == ["4714"]
    assert people(engine) == {}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == (
            audits_before
        )


def test_people_managed_by_a_refused_row_are_told_why_their_manager_is_missing(
    engine: Engine, tmp_path: Path
) -> None:
    from service.ingest.errors import IngestRefused

    rows = [
        "M1,Mo One,not-an-email,,L7,eng,Core,Remote,2019-01-01,",
        "E1,Eve,eve@example.com,M1,L4,eng,Core,Remote,,",
        "E2,Eli,eli@example.com,E1,L3,eng,Core,Remote,,",
        "E3,Ema,ema@example.com,M9,L3,eng,Core,Remote,,",
    ]

    with pytest.raises(IngestRefused) as refused:
        ingest_csv(engine, write_people_csv(tmp_path / "people.csv", rows))

    assert [str(e) for e in refused.value.errors] == [
        "line 2, email: 'not-an-email' is not an email address",
        "line 3, manager_id: manager M1 is in this file, but their row is refused",
        "line 4, manager_id: manager E1 is in this file, but their row is refused",
        "line 5, manager_id: manager M9 is not in this file or the database",
    ]


def test_a_mapping_that_says_nothing_of_leaving_leaves_active_alone(
    engine: Engine, tmp_path: Path
) -> None:
    """SCIM may own leavers: a mapping without termination_date or [status] does not
    make anyone active again, nor inactive."""
    import_sample(engine, "workday")  # Ana-Sofia (21005) left on 2026-06-30
    text_of = shipped_path("workday").read_text(encoding="utf-8")
    quiet = tmp_path / "quiet.toml"
    quiet.write_text(text_of.replace('termination_date = "Termination_Date"\n', ""), "utf-8")

    again = import_sample(engine, str(quiet), shipped_sample("workday"))

    assert (again.updated, again.unchanged) == (0, 6)
    assert people(engine)["21005"]["active"] is False
