"""Calibration on real Postgres: proposing and calibrating ratings, panels and their
cohorts, pseudonyms, the 9-box grid, and the cohort view a panel works from."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, insert, select

from domain.periods import parse_period
from service.bias.nlp import SenseParser
from service.bias.report import build_report
from service.calibration.cohort import NineBox, cohort_view
from service.calibration.panels import (
    PanelNotFound,
    PanelRefused,
    PanelView,
    add_member,
    all_panels,
    cohort_people,
    create_panel,
    panel,
    panels_of,
    place,
    placements,
)
from service.calibration.pseudonyms import NameRedactor, person_for_label, pseudonyms
from service.cycles.store import cycle_scale
from service.db.models import AuditEvent, Person
from service.drafting.citations import check_citations
from service.drafting.store import save_edit, save_generated
from service.drafting.structure import DraftBody, DraftSection, DraftSentence
from service.ingest.run import Ingestor, ingest_path
from service.ratings.workflow import (
    RatingFinal,
    RatingRefused,
    UnknownCycle,
    calibrate_rating,
    cycle_ratings,
    finalise_rating,
    propose_rating,
)

CYCLE = "2026-H1"
# L3 engineering reports of Bo (E002), joining Cy (E003) in the cohort; Jo is L3 design.
EXTRA = [
    ("E005", "Eli Park", "E002", "L3", "engineering"),
    ("E006", "Fay Ross", "E002", "L3", "engineering"),
    ("E007", "Gus Hale", "E002", "L3", "engineering"),
    ("E008", "Hana Ito", "E002", "L3", "engineering"),
    ("E009", "Ivo Lund", "E002", "L3", "engineering"),
    ("E010", "Jo Kim", "E001", "L3", "design"),
]


@pytest.fixture
def ids(engine: Engine, ingestor: Ingestor, org_dir: Path) -> dict[str, int]:
    """The fixture org plus six people: employee id -> person id."""
    ingest_path(ingestor, org_dir)
    with engine.begin() as conn:
        known = _ids(conn)
        add_people(conn, known, EXTRA)
        return _ids(conn)


def _ids(conn: Connection) -> dict[str, int]:
    return {r.employee_id: r.id for r in conn.execute(select(Person.employee_id, Person.id))}


def add_people(
    conn: Connection, known: dict[str, int], people: list[tuple[str, str, str, str, str]]
) -> None:
    conn.execute(
        insert(Person),
        [
            {
                "employee_id": employee_id,
                "name": name,
                "email": f"{employee_id.lower()}@example.com",
                "manager_id": known[manager],
                "level": level,
                "job_family": family,
                "department": "Payments",
                "location": "Remote",
            }
            for employee_id, name, manager, level, family in people
        ],
    )


@pytest.fixture
def rated(engine: Engine, ids: dict[str, int]) -> dict[str, int]:
    """Bo's proposals for his new reports (Ivo far below the rest), Ana's for Jo, and Fay
    calibrated one step down. Cy (4, calibrated 4) and Dee (3) come from the fixture."""
    with engine.begin() as conn:
        for employee, value in (("E005", 4), ("E006", 4), ("E007", 4), ("E008", 4), ("E009", 1)):
            propose_rating(conn, CYCLE, ids[employee], ids["E002"], value, actor="bo")
        propose_rating(conn, CYCLE, ids["E010"], ids["E001"], 3, actor="ana")
        calibrate_rating(conn, CYCLE, ids["E006"], 3, actor="panel")
    return ids


@pytest.fixture
def panel_id(engine: Engine, rated: dict[str, int]) -> int:
    with engine.begin() as conn:
        return create_panel(
            conn,
            parse_period(CYCLE),
            "L3",
            "engineering",
            [rated["E002"], rated["E001"]],
            actor="hr",
        )


def events(engine: Engine, action: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(AuditEvent.__table__)
                .where(AuditEvent.action == action)
                .order_by(AuditEvent.id)
            ).all()
        )


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def summary_body(*sentences: str) -> DraftBody:
    return DraftBody(
        sections=[
            DraftSection(
                heading="Evidence",
                sentences=[DraftSentence(text=s, evidence=["E1"]) for s in sentences],
            )
        ]
    )


# ---------------------------------------------------------------- ratings


def test_a_proposal_is_upserted_per_rater_and_every_change_audited(
    engine: Engine, ids: dict[str, int]
) -> None:
    eli, bo = ids["E005"], ids["E002"]
    with engine.begin() as conn:
        first = propose_rating(conn, CYCLE, eli, bo, 3, actor="bo")
        second = propose_rating(conn, CYCLE, eli, bo, 4, actor="bo")
        same = propose_rating(conn, CYCLE, eli, bo, 4, actor="bo")

    assert (first.id, first.rating, first.calibrated_rating, first.final) == (
        second.id,
        3,
        None,
        False,
    )
    assert second.rating == 4 and same == second
    assert (second.employee_id, second.rater_employee_id, second.cycle) == ("E005", "E002", CYCLE)
    proposed = events(engine, "rating.proposed")
    assert [(e.entity_id, e.before, e.after) for e in proposed] == [
        (f"{CYCLE}/E005/E002", None, {"rating": 3, "calibrated_rating": None}),
        (
            f"{CYCLE}/E005/E002",
            {"rating": 3, "calibrated_rating": None},
            {"rating": 4, "calibrated_rating": None},
        ),
    ]


def test_a_proposal_in_an_unknown_cycle_is_refused_and_creates_no_cycle(
    engine: Engine, ids: dict[str, int]
) -> None:
    # Cycles are HR's to set up (ratings import, panel set-up), never a rater's side effect.
    with engine.begin() as conn, pytest.raises(UnknownCycle, match="no review cycle"):
        propose_rating(conn, "2026-H2", ids["E005"], ids["E002"], 5, actor="bo")
    with engine.connect() as conn:
        assert cycle_scale(conn, "2026-H2") is None
    assert events(engine, "rating.proposed") == []


@pytest.mark.parametrize("value", [0, 6])
def test_a_value_outside_the_scale_is_refused(
    engine: Engine, ids: dict[str, int], value: int
) -> None:
    with engine.begin() as conn, pytest.raises(RatingRefused, match="outside the scale"):
        propose_rating(conn, CYCLE, ids["E005"], ids["E002"], value, actor="bo")
    with engine.begin() as conn, pytest.raises(RatingRefused, match="outside the scale"):
        calibrate_rating(conn, CYCLE, ids["E003"], value, actor="panel")
    assert events(engine, "rating.proposed") == events(engine, "rating.calibrated") == []


def test_unknown_people_and_cycles_are_refused_clearly(engine: Engine, ids: dict[str, int]) -> None:
    with engine.begin() as conn, pytest.raises(RatingRefused, match="no person with id 999999"):
        propose_rating(conn, CYCLE, 999999, ids["E002"], 3, actor="bo")
    with engine.begin() as conn, pytest.raises(UnknownCycle, match="no review cycle"):
        calibrate_rating(conn, "1999-H1", ids["E003"], 3, actor="panel")
    with engine.begin() as conn, pytest.raises(RatingRefused, match="no proposed rating"):
        calibrate_rating(conn, CYCLE, ids["E005"], 3, actor="panel")


def test_calibration_sets_every_rating_of_the_person_and_is_audited(
    engine: Engine, ids: dict[str, int]
) -> None:
    dee = ids["E004"]
    with engine.begin() as conn:
        propose_rating(conn, CYCLE, dee, ids["E001"], 4, actor="ana")  # a second rater
        views = calibrate_rating(conn, CYCLE, dee, 4, actor="panel")
        again = calibrate_rating(conn, CYCLE, dee, 4, actor="panel")

    assert sorted((v.rater_employee_id, v.rating, v.calibrated_rating) for v in views) == [
        ("E001", 4, 4),
        ("E002", 3, 4),
    ]
    assert again == views
    calibrated = events(engine, "rating.calibrated")
    assert len(calibrated) == 2
    assert {(e.before["calibrated_rating"], e.after["calibrated_rating"]) for e in calibrated} == {
        (None, 4)
    }


def test_a_finalised_rating_no_longer_changes(
    engine: Engine, ids: dict[str, int], sense_parser: SenseParser
) -> None:
    cy = ids["E003"]
    with engine.begin() as conn:
        build_report(conn, parse_period(CYCLE), actor="hr", parser=sense_parser)
    with engine.begin() as conn:
        finalise_rating(conn, CYCLE, cy, by="ana")

    with engine.begin() as conn, pytest.raises(RatingFinal, match="finalised by ana"):
        propose_rating(conn, CYCLE, cy, ids["E002"], 5, actor="bo")
    with engine.begin() as conn, pytest.raises(RatingFinal, match="finalised"):
        propose_rating(conn, CYCLE, cy, ids["E001"], 5, actor="ana")  # another rater, too
    with engine.begin() as conn, pytest.raises(RatingFinal, match="finalised"):
        calibrate_rating(conn, CYCLE, cy, 3, actor="panel")
    with engine.connect() as conn:
        (view,) = cycle_ratings(conn, CYCLE, [cy])
    assert view.final and view.finalised_by == "ana" and view.rating == 4


def test_cycle_ratings_reads_the_people_asked_for_in_one_query(
    engine: Engine, rated: dict[str, int]
) -> None:
    wanted = [rated["E003"], rated["E009"]]
    with engine.connect() as conn, statements(engine) as seen:
        some = cycle_ratings(conn, CYCLE, wanted)
        everyone = cycle_ratings(conn, CYCLE)
        nothing = cycle_ratings(conn, "1999-H1")
    assert len(seen) == 3
    assert [(r.employee_id, r.rating) for r in some] == [("E003", 4), ("E009", 1)]
    assert len(everyone) == 9 and nothing == []


# ---------------------------------------------------------------- panels


def test_a_panel_cohort_holds_only_its_level_and_job_family(
    engine: Engine, rated: dict[str, int], panel_id: int
) -> None:
    with engine.connect() as conn:
        found = panel(conn, panel_id)
        assert found is not None
        cohort = cohort_people(conn, found)
        bo_panels = panels_of(conn, rated["E002"])
        assert panels_of(conn, rated["E003"]) == []
    assert {p.employee_id for p in cohort} == {"E003", "E005", "E006", "E007", "E008", "E009"}
    assert {(p.level, p.job_family) for p in cohort} == {("L3", "engineering")}
    assert found.members == tuple(sorted([rated["E001"], rated["E002"]]))
    assert [p.id for p in bo_panels] == [panel_id]
    with engine.begin() as conn:
        design = create_panel(conn, parse_period(CYCLE), "L3", "design", [], actor="hr")
        assert [p.id for p in all_panels(conn)] == [panel_id, design]
        assert all_panels(conn, cycle="2025-H2") == []
    assert events(engine, "panel.created")[0].after["members"] == list(found.members)


def test_a_second_panel_for_a_cohort_and_unknown_members_are_refused(
    engine: Engine, rated: dict[str, int], panel_id: int
) -> None:
    with engine.begin() as conn, pytest.raises(PanelRefused, match=f"panel {panel_id}"):
        create_panel(conn, parse_period(CYCLE), "L3", "engineering", [], actor="hr")
    with engine.begin() as conn, pytest.raises(PanelRefused, match="no person with id 999999"):
        create_panel(conn, parse_period(CYCLE), "L4", "engineering", [999999], actor="hr")
    with engine.begin() as conn:
        assert add_member(conn, panel_id, rated["E004"], actor="hr") is True
        assert add_member(conn, panel_id, rated["E004"], actor="hr") is False
        assert [p.id for p in panels_of(conn, rated["E004"])] == [panel_id]
    with engine.begin() as conn, pytest.raises(PanelNotFound):
        add_member(conn, 999999, rated["E004"], actor="hr")
    assert len(events(engine, "panel.member_added")) == 1


def test_placements_are_validated_upserted_and_audited(
    engine: Engine, rated: dict[str, int], panel_id: int
) -> None:
    cy = rated["E003"]
    with engine.begin() as conn:
        first = place(conn, panel_id, cy, 2, 3, actor="bo")
        moved = place(conn, panel_id, cy, 3, 3, actor="ana")
        place(conn, panel_id, cy, 3, 3, actor="ana")  # no change, no event
    with engine.begin() as conn, pytest.raises(PanelRefused, match="not in the cohort"):
        place(conn, panel_id, rated["E004"], 2, 2, actor="bo")  # Dee is L4
    with engine.begin() as conn, pytest.raises(PanelRefused, match="not in the cohort"):
        place(conn, panel_id, rated["E010"], 2, 2, actor="bo")  # Jo is design
    for performance, potential in ((0, 2), (2, 4)):
        with engine.begin() as conn, pytest.raises(PanelRefused, match="off the grid"):
            place(conn, panel_id, cy, performance, potential, actor="bo")
    with engine.begin() as conn, pytest.raises(PanelNotFound):
        place(conn, 999999, cy, 2, 2, actor="bo")

    assert (first.performance, first.potential, first.placed_by) == (2, 3, "bo")
    assert (moved.performance, moved.potential, moved.placed_by) == (3, 3, "ana")
    with engine.connect() as conn:
        assert placements(conn, panel_id) == [moved]
    audited = events(engine, "placement.set")
    assert [(e.actor, e.entity_id, e.before, e.after) for e in audited] == [
        ("bo", f"{panel_id}/{cy}", None, {"performance": 2, "potential": 3}),
        (
            "ana",
            f"{panel_id}/{cy}",
            {"performance": 2, "potential": 3},
            {"performance": 3, "potential": 3},
        ),
    ]


# ---------------------------------------------------------------- pseudonyms


def test_pseudonyms_are_stable_distinct_and_differ_between_panels(
    engine: Engine, rated: dict[str, int], panel_id: int
) -> None:
    with engine.connect() as conn:
        found = panel(conn, panel_id)
        assert found is not None
        people = [p.id for p in cohort_people(conn, found)]
        again = panel(conn, panel_id)
    assert again is not None
    labels = pseudonyms(found, people)
    assert labels == pseudonyms(again, people)
    assert len(set(labels.values())) == len(people)
    assert all(re.fullmatch(r"P-[0-9a-f]{6}", label) for label in labels.values())
    later = replace(found, created_at=found.created_at + timedelta(microseconds=1))
    other = replace(found, id=found.id + 1)
    assert not set(labels.values()) & set(pseudonyms(later, people).values())
    assert not set(labels.values()) & set(pseudonyms(other, people).values())
    with engine.connect() as conn:
        for person, label in labels.items():
            assert person_for_label(conn, panel_id, label) == person
        assert person_for_label(conn, panel_id, "P-zzzzzz") is None
        assert person_for_label(conn, panel_id, str(rated["E003"])) is None


def test_colliding_labels_are_lengthened_until_distinct() -> None:
    # 6 hex digits rarely collide within one cohort; 20,000 ids make collisions certain,
    # and only the colliding labels grow.
    found = PanelView(1, CYCLE, "L3", "engineering", (), "hr", datetime(2026, 1, 1, tzinfo=UTC))
    labels = pseudonyms(found, range(20000))
    assert len(set(labels.values())) == 20000
    lengths = {len(label) for label in labels.values()}
    assert {len("P-123456"), len("P-12345678")} <= lengths
    short = {p: label for p, label in labels.items() if len(label) == len("P-123456")}
    assert pseudonyms(found, short) == short


def test_names_in_text_become_labels_or_colleague() -> None:
    names = {1: "Cy Diaz", 2: "Bo Chen", 3: "Mary-Jane O'Neil", 4: "Cy Park"}
    redactor = NameRedactor(names, {1: "P-aaaaaa", 2: "P-bbbbbb"})
    text = "Cy's rollout, reviewed by Bo Chen, helped Mary-Jane O'Neil; Diaz and Park agreed."
    assert redactor.redact(text, 1) == (
        "P-aaaaaa's rollout, reviewed by P-bbbbbb, helped [colleague]; P-aaaaaa and "
        "[colleague] agreed."
    )
    assert redactor.redact("Cy wrote it.", 2) == "[colleague] wrote it."  # which Cy?
    assert redactor.redact("Cyclic Boards", 1) == "Cyclic Boards"


# ---------------------------------------------------------------- the cohort view


@pytest.fixture
def summary(engine: Engine, rated: dict[str, int]) -> None:
    """Cy's calibration summary, generated and then edited: the view shows version 2."""
    first = summary_body("Cy moved card payments to the new ledger, as Bo Chen asked.")
    checked, report = check_citations(first, ["E1"])
    with engine.begin() as conn:
        draft, _ = save_generated(
            conn,
            subject_id=rated["E003"],
            kind="calibration_summary",
            period=CYCLE,
            cycle_id=None,
            body=checked,
            report=report,
            origin="offline",
            author="test",
            provenance={"evidence": [{"id": "E1", "text": "ledger"}]},
        )
        save_edit(
            conn,
            draft_id=draft,
            based_on=1,
            body=summary_body("Cy cut failed retries from 4.1% to 1.3%; Bo signed it off."),
            author="bo",
        )


def test_a_pseudonymised_view_names_nobody_and_keeps_its_labels(
    engine: Engine, rated: dict[str, int], panel_id: int, summary: None
) -> None:
    with engine.connect() as conn, statements(engine) as seen:
        view = cohort_view(conn, panel_id, pseudonymise=True)
        again = cohort_view(conn, panel_id, pseudonymise=True)

    assert [r.label for r in view.rows] == [r.label for r in again.rows]
    assert [r.label for r in view.rows] == sorted(r.label for r in view.rows)
    assert len({r.label for r in view.rows}) == len(view.rows) == 6
    assert all(r.person_id is None and r.manager_id is None for r in view.rows)
    shown = repr(view)
    with engine.connect() as conn:
        everyone = list(conn.execute(select(Person.name, Person.employee_id)))
    for name, employee_id in everyone:
        for word in name.split():
            assert not re.search(rf"\b{word}\b", shown), word
        assert employee_id not in shown
    assert not [s for s in seen if "demographic" in s.lower()]

    cy = person_for_label_in(engine, panel_id, view, rated["E003"])
    bo_label = cy.manager_label
    assert cy.summary is not None and "4.1%" in cy.summary and "ledger" not in cy.summary
    assert cy.summary.startswith(f"## Evidence\n{cy.label} cut failed retries")
    assert f"{bo_label} signed it off" in cy.summary
    assert [m.label for m in view.managers] == [bo_label]
    assert view.managers[0].manager_id is None and view.managers[0].n == 7


def person_for_label_in(engine: Engine, panel_id: int, view: Any, person: int) -> Any:
    with engine.connect() as conn:
        return next(r for r in view.rows if person_for_label(conn, panel_id, r.label) == person)


def test_an_open_view_shows_names_ids_and_the_plain_summary(
    engine: Engine, rated: dict[str, int], panel_id: int, summary: None
) -> None:
    with engine.connect() as conn:
        view = cohort_view(conn, panel_id, pseudonymise=False)
    assert [r.label for r in view.rows] == [
        "Cy Diaz",
        "Eli Park",
        "Fay Ross",
        "Gus Hale",
        "Hana Ito",
        "Ivo Lund",
    ]
    cy = view.rows[0]
    assert (cy.person_id, cy.manager_id, cy.manager_label) == (
        rated["E003"],
        rated["E002"],
        "Bo Chen",
    )
    assert cy.summary is not None and "Cy cut failed retries" in cy.summary
    assert (cy.proposed, cy.calibrated, cy.final) == (4, 4, False)
    assert view.rows[1].summary is None
    assert [(m.label, m.manager_id) for m in view.managers] == [("Bo Chen", rated["E002"])]


def test_disagreements_come_largest_first(
    engine: Engine, rated: dict[str, int], panel_id: int
) -> None:
    with engine.connect() as conn:
        view = cohort_view(conn, panel_id, pseudonymise=False)

    found = [(d.label, d.proposed, d.calibrated) for d in view.disagreements]
    assert found == [("Ivo Lund", 1, None), ("Fay Ross", 4, 3)]
    ivo, fay = view.disagreements
    assert ivo.evidence_gap is not None and ivo.evidence_gap <= -1
    assert ivo.size == abs(ivo.evidence_gap) and ivo.calibration_change is None
    assert fay.calibration_change == -1 and fay.size >= 1
    sizes = [d.size for d in view.disagreements]
    assert sizes == sorted(sizes, reverse=True)
    assert view.evidence_n > 0 and view.evidence_r_squared is not None
    rows = {r.label: r for r in view.rows}
    assert rows["Ivo Lund"].predicted is not None and rows["Eli Park"].predicted is not None


def test_the_distribution_counts_proposed_and_calibrated_ratings(
    engine: Engine, rated: dict[str, int], panel_id: int
) -> None:
    with engine.begin() as conn:
        place(conn, panel_id, rated["E009"], 1, 2, actor="bo")
        view = cohort_view(conn, panel_id, pseudonymise=True)

    d = view.distribution
    assert d.scale == (1, 5)
    assert d.proposed == {1: 1, 2: 0, 3: 0, 4: 5, 5: 0}
    assert d.calibrated == {1: 1, 2: 0, 3: 1, 4: 4, 5: 0}
    assert (d.rated, d.calibrated_people) == (6, 2)  # Cy (from the file) and Fay
    placed = [r for r in view.rows if r.placement is not None]
    assert len(placed) == 1 and placed[0].proposed == 1
    assert placed[0].placement == NineBox(performance=1, potential=2)


def test_the_view_costs_the_same_queries_for_a_larger_cohort(
    engine: Engine, rated: dict[str, int], panel_id: int
) -> None:
    with engine.connect() as conn, statements(engine) as small:
        cohort_view(conn, panel_id, pseudonymise=True)
    more = [(f"E1{n:02d}", f"Kai Number{n}", "E002", "L3", "engineering") for n in range(10)]
    with engine.begin() as conn:
        add_people(conn, rated, more)
        everyone = _ids(conn)
        for employee_id, *_ in more:
            propose_rating(conn, CYCLE, everyone[employee_id], rated["E002"], 3, actor="bo")
    with engine.connect() as conn, statements(engine) as large:
        view = cohort_view(conn, panel_id, pseudonymise=True)
    assert len(view.rows) == 16
    assert len(large) == len(small) <= 12
