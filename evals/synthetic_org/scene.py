"""What a composer needs to write one person's records: the random source, the person and
their colleagues, pools for lazy slots, id counters, and a helper that stamps a record.

Composers (work_records, one_on_ones, feedback, ...) take a Scene so they stay small and
share one way of choosing dates, subjects and ids.
"""

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from evals.synthetic_org import bank
from evals.synthetic_org.dates import date_slots, stamp
from evals.synthetic_org.model import Person, Record, Workstream
from evals.synthetic_org.text import PRONOUNS, Slots

EMAIL_SUBJECT_SHARE = 0.1  # share of records that name the subject by email, not id


class Ids:
    """Per-source counters so every (source, external_id) is unique and looks native."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.counters: dict[str, int] = {}

    def next(self, key: str, first: int, step: int = 1) -> int:
        current = self.counters.get(key)
        value = first if current is None else current + self.rng.randint(1, step)
        self.counters[key] = value
        return value

    def ticket(self, prefix: str) -> str:
        return f"{prefix}-{self.next('jira:' + prefix, self.rng.randint(100, 900), 3)}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def person_slots(person: Person, people: Sequence[Person]) -> dict[str, str]:
    """Template values that describe the person: name, pronouns, team, manager."""
    manager = people[person.manager].first if person.manager is not None else "the board"
    return {
        "name": person.first,
        "full_name": person.name,
        "level": person.level,
        "next_level": f"L{min(8, int(person.level[1:]) + 1)}",
        "team": person.department,
        "manager": manager,
        **PRONOUNS[person.pronoun],
    }


@dataclass
class Scene:
    rng: random.Random
    person: Person
    people: Sequence[Person]
    ids: Ids
    base: dict[str, str]
    pools: Mapping[str, Sequence[str]]

    @property
    def manager(self) -> Person | None:
        index = self.person.manager
        return None if index is None else self.people[index]

    def slots(self, workstream: Workstream | None, day: date, *extra: Mapping[str, str]) -> Slots:
        """All template values for one record about this person on `day`."""
        sources: list[Mapping[str, str]] = [self.base, date_slots(day)]
        if workstream is not None:
            sources.append(workstream.slots)
        sources.extend(extra)
        prefix = self.person.ticket_prefix
        return Slots(self.rng, self.pools, lambda: self.ids.ticket(prefix), *sources)

    def workstream_at(self, day: date) -> Workstream:
        """The workstream the person is on that day, else the one that ended last."""
        active = [w for w in self.person.workstreams if w.start <= day <= w.end]
        if active:
            return active[-1]
        ended = [w for w in self.person.workstreams if w.end < day]
        return ended[-1] if ended else self.person.workstreams[0]

    def record(
        self,
        *,
        source: str,
        external_id: str,
        kind: str,
        day: date,
        body: str,
        author: Person | None,
        title: str | None = None,
        metadata: dict[str, str | int] | None = None,
        impact: float = 0.0,
        theme: str | None = None,
    ) -> Record:
        person = self.person
        by_email = self.rng.random() < EMAIL_SUBJECT_SHARE
        return Record(
            source=source,
            external_id=external_id,
            kind=kind,
            subject=person.employee_id,
            subject_ref=person.email if by_email else person.employee_id,
            author=None if author is None else author.employee_id,
            occurred_at=stamp(self.rng, day),
            title=title,
            body=body,
            metadata=metadata or {},
            impact=impact,
            theme=theme,
        )


class SceneMaker:
    """Builds a Scene per person with pools drawn from the org (colleague names, partner
    teams, skills, artifacts, customers)."""

    def __init__(self, rng: random.Random, people: Sequence[Person]) -> None:
        self.rng = rng
        self.people = people
        self.ids = Ids(rng)
        org = bank.load("org")
        vocab: dict[str, Any] = bank.load("vocab")
        self.vocab = vocab
        self.partners: dict[str, list[str]] = org["partners"]
        self.departments = {
            family: [name for name, _ in depts] for family, depts in org["departments"].items()
        }
        self.customers = bank.texts(vocab["customers"])

    def scene(self, person: Person) -> Scene:
        family = self.vocab["families"][person.family]
        skills = list(bank.texts(family["skills"]))
        artifacts = list(bank.texts(family["artifacts"]))
        if person.reports:
            skills += bank.texts(self.vocab["management"]["skills"])
            artifacts += bank.texts(self.vocab["management"]["artifacts"])
        partner_teams = [d for f in self.partners[person.family] for d in self.departments[f]]
        colleagues = [self.people[i].first for i in person.circle]
        colleagues = [name for name in colleagues if name != person.first] or ["the team"]
        pools = {
            "colleagues": colleagues,
            "partner_teams": partner_teams,
            "skills": skills,
            "artifacts": artifacts,
            "customers": self.customers,
        }
        base = person_slots(person, self.people)
        return Scene(self.rng, person, self.people, self.ids, base, pools)


def set_circles(rng: random.Random, people: Sequence[Person]) -> None:
    """Who each person works with most: their teammates, their reports, their manager's
    peers' teams a little, and a few people from partner job families."""
    partners: dict[str, list[str]] = bank.load("org")["partners"]
    by_family: dict[str, list[int]] = {}
    for person in people:
        by_family.setdefault(person.family, []).append(person.index)
    pools = {
        family: [i for f in partners[family] for i in by_family.get(f, [])] for family in partners
    }
    for person in people:
        teammates = [] if person.manager is None else people[person.manager].reports
        near = [i for i in (*teammates, *person.reports) if i != person.index]
        pool = pools[person.family]
        far = rng.sample(pool, min(len(pool), 6))
        person.circle = near + [i for i in far if i not in near and i != person.index]
