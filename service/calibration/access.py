"""Who may see a calibration panel and decide about whom in it, and refusals in the
panel's words: shared by the API and the pages."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from domain.errors import FairdraftError, NotFound, Refused
from service.access.principal import Principal
from service.calibration.panels import PanelView, cohort_people, panel
from service.calibration.pseudonyms import in_panel_words, person_for_label
from service.settings import Settings


def visible_panel(connection: Connection, principal: Principal, panel_id: int) -> PanelView:
    """The panel, for its members and HR; "not found" to anyone else."""
    found = panel(connection, panel_id)
    if found is None or not (principal.hr_admin or panel_id in principal.panels):
        raise NotFound("panel not found")
    return found


def cohort_member(connection: Connection, settings: Settings, found: PanelView, label: str) -> int:
    """The cohort person a label names: a pseudonym, or, when names are shown, an id of
    someone in the cohort (anyone else is not found, like a wrong pseudonym)."""
    person_id = person_for_label(connection, found.id, label)
    if person_id is None and not settings.panel_pseudonymise and label.isdigit():
        cohort = {p.id for p in cohort_people(connection, found)}
        person_id = int(label) if int(label) in cohort else None
    if person_id is None:
        raise NotFound("person in this cohort not found")
    return person_id


def not_self(principal: Principal, person_id: int) -> None:
    """A panel member who is in the cohort themselves sees it, but decides nothing about
    their own rating or placement."""
    if person_id == principal.person_id:
        raise Refused("nobody calibrates, places or finalises themselves")


def panel_subject(
    connection: Connection, settings: Settings, principal: Principal, panel_id: int, label: str
) -> tuple[PanelView, int]:
    """The panel and the cohort person a panel decision is about, for a caller who may
    decide it: the panel visible to them, the person in its cohort and not themselves."""
    found = visible_panel(connection, principal, panel_id)
    person_id = cohort_member(connection, settings, found, label)
    not_self(principal, person_id)
    return found, person_id


@contextmanager
def in_panel_terms(
    connection: Connection, settings: Settings, person_id: int, label: str
) -> Iterator[None]:
    """Refusals raised inside, told in the panel's words: the person by the label the
    panel used, nobody else named when pseudonymised. The class and field stay, so each
    surface still answers them the same way."""
    try:
        yield
    except FairdraftError as exc:
        words = in_panel_words(
            connection, str(exc), person_id, label, pseudonymise=settings.panel_pseudonymise
        )
        raise exc.reworded(words) from None
