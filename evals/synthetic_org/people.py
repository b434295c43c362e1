"""People for the positions of the tree: names, emails, levels, locations, hire dates,
demographics, and the latent traits (true performance, potential, feedback themes) that the
evidence is later written from.

Demographics follow the family's mix, names follow gender and ethnicity (a first-name list
per gender and origin, surnames from many origins), and latent performance is drawn
independently of every demographic attribute: any group difference in the ratings or the
wording is therefore planted on purpose and labelled.
"""

import random
import unicodedata
from datetime import date, timedelta

from evals.synthetic_org import bank
from evals.synthetic_org.model import Person
from evals.synthetic_org.text import Weighted
from evals.synthetic_org.tree import Position

_NOTE_STYLES = Weighted({"headings": 4, "bullets": 3, "prose": 3})
_SNAPSHOT = date(2025, 12, 31)  # the HRIS export is as of the start of the year


class _Tables:
    """The banks reshaped for drawing: weighted choices built once, not per person."""

    def __init__(self) -> None:
        org = bank.load("org")
        names = bank.load("names")
        self.org = org
        self.gender = {f: Weighted(bank.weights(w)) for f, w in org["gender"].items()}
        self.ethnicity = Weighted(bank.weights(org["ethnicity"]))
        self.age = {level: Weighted(bank.weights(w)) for level, w in org["age_band"].items()}
        self.ic_levels = Weighted(bank.weights(org["ic_levels"]))
        self.manager_levels = {
            int(h): Weighted(bank.weights(w)) for h, w in org["manager_levels"].items()
        }
        self.locations = Weighted(bank.weights(org["locations"]))
        self.origins = {
            e: Weighted(bank.weights(w)) for e, w in names["origins_by_ethnicity"].items()
        }
        self.any_origin = Weighted(dict.fromkeys(names["surnames"], 1.0))
        self.first: dict[str, dict[str, tuple[str, ...]]] = {
            gender: {origin: bank.texts(v) for origin, v in by_origin.items()}
            for gender, by_origin in names["first_names"].items()
            if gender != "neutral"
        }
        self.neutral = bank.texts(names["first_names"]["neutral"])
        self.surnames = {origin: bank.texts(v) for origin, v in names["surnames"].items()}
        self.other_origin = float(names["other_origin_first_name"])
        self.tenure: dict[str, list[float]] = org["tenure_years"]
        self.founded = date.fromisoformat(org["founded"])
        self.themes: dict[str, list[str]] = org["themes_by_family"]


def make_people(rng: random.Random, positions: list[Position]) -> list[Person]:
    """One person per position, in position order (so managers come before reports)."""
    tables = _Tables()
    used_emails: dict[str, int] = {}
    people: list[Person] = []
    for position in positions:
        manager = people[position.parent] if position.parent is not None else None
        people.append(_person(rng, tables, position, manager, used_emails))
    for person in people:
        if person.manager is not None:
            people[person.manager].reports.append(person.index)
    return people


def _person(
    rng: random.Random,
    tables: _Tables,
    position: Position,
    manager: Person | None,
    used_emails: dict[str, int],
) -> Person:
    gender = tables.gender[position.family].pick(rng)
    ethnicity = tables.ethnicity.pick(rng)
    first, last, pronoun = _name(rng, tables, gender, ethnicity)
    level = _level(rng, tables, position)
    performance = round(min(5.0, max(1.0, rng.gauss(3.15, 0.75))), 2)
    potential = round(min(5.0, max(1.0, 0.55 * performance + 0.45 * rng.gauss(3.0, 0.9))), 2)
    themes = rng.sample(tables.themes[position.family], 4)
    return Person(
        index=position.index,
        employee_id=f"E{position.index + 1:05d}",
        first=first,
        last=last,
        email=_email(first, last, used_emails),
        manager=position.parent,
        reports=[],
        height=position.height,
        level=level,
        family=position.family,
        department=position.department,
        ticket_prefix=position.ticket_prefix,
        location=_location(rng, tables, position, manager),
        hire_date=_hire_date(rng, tables, level),
        gender=gender,
        ethnicity=ethnicity,
        age_band=tables.age[level].pick(rng),
        pronoun=pronoun,
        true_performance=performance,
        potential=potential,
        strengths=tuple(themes[:2]),
        growth=tuple(themes[2:]),
        note_style=_NOTE_STYLES.pick(rng),
    )


def _name(rng: random.Random, tables: _Tables, gender: str, ethnicity: str) -> tuple[str, str, str]:
    """First name, surname and the pronoun colleagues use. Undisclosed gender still has a
    name that reads one way or the other, as in real HR data."""
    surname_origin = tables.origins[ethnicity].pick(rng)
    first_origin = surname_origin
    if rng.random() < tables.other_origin:
        first_origin = tables.any_origin.pick(rng)
    if gender == "nonbinary":
        if rng.random() < 0.7:
            return rng.choice(tables.neutral), rng.choice(tables.surnames[surname_origin]), "they"
        list_gender = rng.choice(("woman", "man"))
        pronoun = "they"
    else:
        list_gender = gender if gender in tables.first else rng.choice(("woman", "man"))
        pronoun = "she" if list_gender == "woman" else "he"
    first = rng.choice(tables.first[list_gender][first_origin])
    return first, rng.choice(tables.surnames[surname_origin]), pronoun


def _email(first: str, last: str, used: dict[str, int]) -> str:
    """first.last@example.com in plain ASCII, with a number when the name is taken."""
    local = f"{_ascii(first)}.{_ascii(last)}"
    count = used.get(local, 0) + 1
    used[local] = count
    return f"{local}@example.com" if count == 1 else f"{local}{count}@example.com"


def _ascii(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed.lower() if "a" <= ch <= "z")


def _level(rng: random.Random, tables: _Tables, position: Position) -> str:
    if position.parent is None:
        return "L8"
    if position.height == 0:
        return tables.ic_levels.pick(rng)
    if position.parent == 0:
        return "L7"  # the CEO's direct reports are the VPs
    return tables.manager_levels[min(position.height, 3)].pick(rng)


def _location(
    rng: random.Random, tables: _Tables, position: Position, manager: Person | None
) -> str:
    """Teams mostly sit together: reports usually share their manager's location."""
    if manager is None:
        return str(tables.org["ceo"]["location"])
    stay = 0.75 if position.height == 0 else 0.5
    return manager.location if rng.random() < stay else tables.locations.pick(rng)


def _hire_date(rng: random.Random, tables: _Tables, level: str) -> date:
    low, high = tables.tenure[level]
    years = low + (high - low) * rng.random()
    hired = _SNAPSHOT - timedelta(days=int(years * 365.25))
    return max(hired, tables.founded)
