"""Kudos posts: occasional public thanks from a manager or colleague, more often for people
who perform well, naming a finished piece of work and its numbers, or help given."""

from datetime import date
from typing import Any

from evals.synthetic_org import bank
from evals.synthetic_org.dates import YEAR_END, YEAR_START, random_workday
from evals.synthetic_org.model import Person, Record
from evals.synthetic_org.scene import Scene
from evals.synthetic_org.text import fill


class RecognitionWriter:
    def __init__(self) -> None:
        data: dict[str, Any] = bank.load("recognition")
        self.titles = {k: bank.texts(v) for k, v in data["titles"].items()}
        self.bodies = {k: bank.texts(v) for k, v in data["bodies"].items()}

    def year(self, scene: Scene) -> list[Record]:
        rng = scene.rng
        count = int(0.4 + 0.6 * (scene.person.true_performance - 1.0) + rng.random())
        return [self._one(scene, random_workday(rng, YEAR_START, YEAR_END)) for _ in range(count)]

    def _one(self, scene: Scene, day: date) -> Record:
        rng = scene.rng
        person = scene.person
        finished = [w for w in person.workstreams if w.end < day and w.tier != "weak"]
        workstream = finished[-1] if finished else scene.workstream_at(day)
        author = self._author(scene)
        slots = scene.slots(workstream, day, {"author_team": author.department})
        kind = "outcome" if finished else "help"
        number = scene.ids.next("kudos", 3_000, 2)
        impact = (0.8 if kind == "outcome" else 0.5) + 0.1 * rng.random()
        return scene.record(
            source="kudos",
            external_id=f"kudos-{number}",
            kind="recognition",
            day=day,
            title=fill(rng.choice(self.titles[kind]), slots),
            body=fill(rng.choice(self.bodies[kind]), slots),
            author=author,
            metadata={"project": workstream.codename, "channel": "#kudos"},
            impact=impact,
        )

    @staticmethod
    def _author(scene: Scene) -> Person:
        manager = scene.manager
        if manager is not None and scene.rng.random() < 0.4:
            return manager
        circle = scene.person.circle
        if not circle:
            return manager or scene.person
        return scene.people[scene.rng.choice(circle)]
