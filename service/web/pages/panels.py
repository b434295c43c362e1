"""Calibration panel pages: the panels a person sits on (HR: all), and one panel's cohort
side by side, with the disagreements to discuss first, the rating distribution and the
managers' leniency as charts, the 9-box grid, and the forms to place, calibrate and
finalise.

The same checks as the API (service/api/routers/calibration.py): a panel is visible to its
members and HR only (anyone else: "not found"), people are named by the label the page
shows, pseudonymised by default, and nobody decides about themselves. Every change goes
through the functions that audit it; a refusal (a rating already final, no bias report
yet) comes back to the panel page as a message.
"""

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import Connection, select

from service.access.principal import Principal
from service.calibration.access import (
    in_panel_terms,
    panel_subject,
    visible_panel,
)
from service.calibration.cohort import CohortRow, CohortView, cohort_view
from service.calibration.panels import GRID, PanelView, all_panels, panels_of, place
from service.calibration.pseudonyms import person_for_label, pseudonyms
from service.db.models import Person
from service.drafting.asks import DRAFT_PANEL_JOB
from service.http.deps import ConnectionDep, Id, SettingsDep
from service.jobs.queue import enqueue
from service.ratings.workflow import calibrate_rating, finalise_rating
from service.settings import Settings
from service.web.charts import distribution_chart, leniency_chart
from service.web.draft_view import TextBlock, text_blocks
from service.web.flash import back_to, redirect_with
from service.web.session import PagePrincipal, SameOrigin
from service.web.templating import render

router = APIRouter(include_in_schema=False)
LEVELS = {1: "Low", 2: "Medium", 3: "High"}
# Below two ratings per parameter of the evidence model (9 features and an intercept) its
# fit says little, however high its R^2: the page says so instead of quoting it.
MIN_FIT = 20


@dataclass(frozen=True)
class Card:
    """One person of the cohort as the page shows them."""

    key: str  # how the page's URLs name them: the pseudonym, or the id when names are shown
    row: CohortRow
    placement: str  # "Performance high, potential medium", or "Not placed"
    choice: int | None  # the rating the calibration form starts at: calibrated, else proposed
    own: bool  # the member themselves: shown, but with no forms
    summary: list[TextBlock]  # the comparable-evidence summary, headed blocks


@dataclass(frozen=True)
class GridCell:
    performance: int
    potential: int
    description: str  # said to screen readers before the people in it
    labels: list[str]


@dataclass(frozen=True)
class GridRow:
    heading: str
    cells: list[GridCell]


@router.get("/panels")
def panels_page(request: Request, principal: PagePrincipal, connection: ConnectionDep) -> Response:
    found = (
        all_panels(connection) if principal.hr_admin else panels_of(connection, principal.person_id)
    )
    return render(request, "panels.html.j2", panels=found)


@router.get("/panels/{panel_id}")
def panel_page(
    panel_id: Id,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
) -> Response:
    found = visible_panel(connection, principal, panel_id)
    view = cohort_view(connection, found.id, pseudonymise=settings.panel_pseudonymise)
    own = own_label(connection, found, principal, view.rows)
    cards = [
        Card(
            _key(r),
            r,
            _placement_text(r),
            _choice(r),
            r.label == own,
            text_blocks(r.summary or ""),
        )
        for r in view.rows
    ]
    low, high = view.distribution.scale
    return render(
        request,
        "panel.html.j2",
        panel=found,
        view=view,
        cards=cards,
        grid=nine_box(view.rows),
        unplaced=[r.label for r in view.rows if r.placement is None],
        levels=sorted(LEVELS.items()),
        scale=list(range(low, high + 1)),
        fit_is_thin=view.evidence_n < MIN_FIT,
        min_fit=MIN_FIT,
        distribution=_distribution(view),
        leniency=leniency_chart(view.managers, chart_id="leniency") if view.managers else None,
    )


@router.post("/panels/{panel_id}/summaries", dependencies=[SameOrigin])
def draft_summaries(
    panel_id: Id, principal: PagePrincipal, connection: ConnectionDep, settings: SettingsDep
) -> Response:
    """The cohort's missing summaries, in one job; its page follows it."""
    visible_panel(connection, principal, panel_id)
    job_id = enqueue(
        connection,
        DRAFT_PANEL_JOB,
        {"panel_id": panel_id},
        requested_by=principal.person_id,
        max_attempts=settings.job_max_attempts,
        actor=principal.actor,
    )
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


def own_label(
    connection: Connection, found: PanelView, principal: Principal, rows: tuple[CohortRow, ...]
) -> str | None:
    """The caller's own row label when they are in the cohort, so that the page offers
    them no decision about themselves. A pseudonym starts with the short label of its
    person (a longer one only after a collision), so only a candidate costs a query."""
    if not rows or rows[0].person_id is not None:  # names shown: ids are on the rows
        return next((r.label for r in rows if r.person_id == principal.person_id), None)
    short = pseudonyms(found, [principal.person_id])[principal.person_id]
    return next(
        (
            r.label
            for r in rows
            if r.label.startswith(short)
            and person_for_label(connection, found.id, r.label) == principal.person_id
        ),
        None,
    )


def _key(row: CohortRow) -> str:
    """Ids never appear on a pseudonymised page; with names shown, a name is no key."""
    return row.label if row.person_id is None else str(row.person_id)


def _choice(row: CohortRow) -> int | None:
    return row.calibrated if row.calibrated is not None else row.proposed


def _placement_text(row: CohortRow) -> str:
    if row.placement is None:
        return "Not placed"
    return (
        f"Performance {LEVELS[row.placement.performance].lower()}, "
        f"potential {LEVELS[row.placement.potential].lower()}"
    )


def _distribution(view: CohortView) -> Markup:
    return distribution_chart(
        view.distribution.proposed, view.distribution.calibrated, chart_id="distribution"
    )


def nine_box(rows: tuple[CohortRow, ...]) -> list[GridRow]:
    """The grid as it is drawn: potential from high (top) to low, performance from low
    (left) to high, each cell with the labels of the people placed in it."""
    low, high = GRID
    out = []
    for potential in range(high, low - 1, -1):
        cells = [
            GridCell(
                performance=performance,
                potential=potential,
                description=(
                    f"{LEVELS[potential]} potential, {LEVELS[performance].lower()} performance"
                ),
                labels=[
                    r.label
                    for r in rows
                    if r.placement is not None
                    and (r.placement.performance, r.placement.potential) == (performance, potential)
                ],
            )
            for performance in range(low, high + 1)
        ]
        out.append(GridRow(f"{LEVELS[potential]} potential", cells))
    return out


def _shown(connection: Connection, settings: Settings, person_id: int, label: str) -> str:
    """The person as the page names them: their pseudonym, or their name."""
    if settings.panel_pseudonymise:
        return label
    name: str = connection.execute(select(Person.name).where(Person.id == person_id)).scalar_one()
    return name


def _back(
    panel_id: int, label: str, *, notice: str | None = None, error: str | None = None
) -> Response:
    return redirect_with(
        f"/panels/{panel_id}#person-{quote(label, safe='')}", notice=notice, error=error
    )


@router.post(
    "/panels/{panel_id}/people/{label}/placement",
    dependencies=[SameOrigin, back_to("/panels/{panel_id}#person-{label}")],
)
def placement(
    panel_id: Id,
    label: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    performance: Annotated[int, Form()],
    potential: Annotated[int, Form()],
) -> Response:
    found, person_id = panel_subject(connection, settings, principal, panel_id, label)
    who = _shown(connection, settings, person_id, label)
    with in_panel_terms(connection, settings, person_id, who):
        place(connection, found.id, person_id, performance, potential, actor=principal.actor)
    return _back(
        found.id,
        label,
        notice=f"{who} placed: performance {LEVELS[performance].lower()}, "
        f"potential {LEVELS[potential].lower()}.",
    )


@router.post(
    "/panels/{panel_id}/people/{label}/calibrated-rating",
    dependencies=[SameOrigin, back_to("/panels/{panel_id}#person-{label}")],
)
def calibrated_rating(
    panel_id: Id,
    label: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    rating: Annotated[int, Form()],
) -> Response:
    found, person_id = panel_subject(connection, settings, principal, panel_id, label)
    who = _shown(connection, settings, person_id, label)
    with in_panel_terms(connection, settings, person_id, who):
        calibrate_rating(connection, found.cycle, person_id, rating, actor=principal.actor)
    return _back(found.id, label, notice=f"{who}: calibrated rating {rating}.")


@router.post(
    "/panels/{panel_id}/people/{label}/finalise",
    dependencies=[SameOrigin, back_to("/panels/{panel_id}#person-{label}")],
)
def finalise(
    panel_id: Id,
    label: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
) -> Response:
    found, person_id = panel_subject(connection, settings, principal, panel_id, label)
    who = _shown(connection, settings, person_id, label)
    with in_panel_terms(connection, settings, person_id, who):
        finalise_rating(connection, found.cycle, person_id, by=principal.actor)
    return _back(found.id, label, notice=f"{who}: rating final.")
