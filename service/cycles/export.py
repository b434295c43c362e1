"""The cycle's decisions for pay and promotion (issue 16, HR only): per participant who
they are and where they sit, their final calibrated rating with its label, whether an
approved promotion packet recommends them (with its link), and the version of the bias
report their rating was checked against (the cycle's latest report when it was
finalised). As JSON, or as CSV written by domain.spreadsheet (formula-looking cells
neutralised: names and departments are typed by people).
"""

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.orm import aliased

from domain.errors import NotFound
from domain.kinds import DraftKind
from domain.spreadsheet import csv_text
from service.cycles.tasks import participants
from service.db.models import BiasReport, Draft, Person, Rating, ReviewCycle


class ExportRow(BaseModel):
    person_id: int
    employee_id: str
    name: str
    department: str
    level: str
    job_family: str
    manager_employee_id: str | None
    manager: str | None
    final_rating: int | None = Field(description="Null until finalised (or undecided).")
    rating_label: str | None
    promotion_recommended: bool
    promotion_packet: str | None = Field(examples=["/drafts/12"])
    bias_report_version: int | None = Field(
        description="The cycle's bias report current when the rating was finalised."
    )


class CycleExport(BaseModel):
    period: str = Field(examples=["2026-H1"])
    title: str | None
    exported_at: datetime
    rows: list[ExportRow]


CSV_HEADER = (
    "person_id",
    "employee_id",
    "name",
    "department",
    "level",
    "job_family",
    "manager_employee_id",
    "manager",
    "final_rating",
    "rating_label",
    "promotion_recommended",
    "promotion_packet",
    "bias_report_version",
)


def cycle_export(connection: Connection, cycle: str) -> CycleExport:
    """Every participant's decision line, in employee id order, in a few queries whatever
    the cycle's size (the people, their ratings, the packets)."""
    row = connection.execute(
        select(
            ReviewCycle.id,
            ReviewCycle.title,
            ReviewCycle.scale_min,
            ReviewCycle.scale_labels,
            func.now().label("now"),
        ).where(ReviewCycle.name == cycle, ReviewCycle.status.is_not(None))
    ).one_or_none()
    if row is None:
        raise NotFound(f"cycle {cycle} has no set-up", field="cycle")
    who = participants(row.id)
    manager = aliased(Person)
    people = connection.execute(
        select(
            Person.id,
            Person.employee_id,
            Person.name,
            Person.department,
            Person.level,
            Person.job_family,
            manager.employee_id.label("manager_employee_id"),
            manager.name.label("manager"),
        )
        .join(who, who.c.person_id == Person.id)
        .outerjoin(manager, manager.id == Person.manager_id)
        .order_by(Person.employee_id)
    ).all()
    ratings = final_ratings(connection, row.id, cycle)
    packets = _packets(connection, row.id, cycle)
    rows = []
    for p in people:
        value, version = ratings.get(p.id, (None, None))
        packet = packets.get(p.id)
        rows.append(
            ExportRow(
                person_id=p.id,
                employee_id=p.employee_id,
                name=p.name,
                department=p.department,
                level=p.level,
                job_family=p.job_family,
                manager_employee_id=p.manager_employee_id,
                manager=p.manager,
                final_rating=value,
                rating_label=scale_label(row.scale_labels, row.scale_min, value),
                promotion_recommended=packet is not None,
                promotion_packet=None if packet is None else f"/drafts/{packet}",
                bias_report_version=version,
            )
        )
    return CycleExport(period=cycle, title=row.title, exported_at=row.now, rows=rows)


def scale_label(labels: list[str], low: int, rating: int | None) -> str | None:
    """The label of the rating on a cycle's scale (labels from its low end up), if any."""
    if rating is None or not 0 <= rating - low < len(labels):
        return None
    return labels[rating - low]


def final_ratings(
    connection: Connection,
    cycle_id: int,
    cycle: str,
    person_ids: Collection[int] | None = None,
) -> dict[int, tuple[int | None, int | None]]:
    """person id -> (final rating, version of the report current at finalisation), from
    their finalised ratings only (of these people, or everyone). The final rating is the
    panel's calibrated value, or the proposal every rater agreed on; proposals that differ
    and were never calibrated have no one final value (None). The one rule: the export
    and the employee's review (signoff.py) both read it."""
    only = [] if person_ids is None else [Rating.person_id.in_(set(person_ids))]
    value = func.coalesce(Rating.calibrated_rating, Rating.rating)
    report = (
        select(func.max(BiasReport.version))
        .where(BiasReport.cycle == cycle, BiasReport.created_at <= func.min(Rating.finalised_at))
        .correlate(Rating)
        .scalar_subquery()
    )
    rows = connection.execute(
        select(
            Rating.person_id,
            func.min(value).label("low"),
            func.max(value).label("high"),
            report.label("version"),
        )
        .where(Rating.cycle_id == cycle_id, Rating.finalised_at.is_not(None), *only)
        .group_by(Rating.person_id)
    ).all()
    return {r.person_id: (r.low if r.low == r.high else None, r.version) for r in rows}


def _packets(connection: Connection, cycle_id: int, cycle: str) -> dict[int, int]:
    """subject id -> their approved promotion packet of the cycle."""
    rows = connection.execute(
        select(Draft.subject_id, Draft.id).where(
            Draft.kind == DraftKind.PROMOTION_PACKET,
            Draft.status == "approved",
            or_(Draft.cycle_id == cycle_id, and_(Draft.cycle_id.is_(None), Draft.period == cycle)),
        )
    ).all()
    return {r.subject_id: r.id for r in rows}


def export_csv(export: CycleExport) -> str:
    """The export as CSV (domain.spreadsheet: the one CSV writer, formulas neutralised)."""
    rows: list[list[Any]] = [
        [getattr(line, column) for column in CSV_HEADER] for line in export.rows
    ]
    return csv_text(CSV_HEADER, rows)
