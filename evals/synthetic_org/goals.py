"""Goals: about four set in January (one per early workstream plus a development goal),
mid-year check-ins on some of them, and new goals for work that starts in the second half.
Goals carry the same metric, baseline and target as the workstream they belong to."""

from datetime import date
from typing import Any

from evals.synthetic_org import bank
from evals.synthetic_org.dates import random_workday
from evals.synthetic_org.model import Record, Workstream
from evals.synthetic_org.scene import Scene
from evals.synthetic_org.text import Slots, fill

_JANUARY = (date(2026, 1, 5), date(2026, 1, 30))
_CHECKIN = (date(2026, 6, 15), date(2026, 7, 17))
_CHECKIN_SHARE = 0.6
_H2 = date(2026, 6, 1)


class GoalWriter:
    def __init__(self) -> None:
        data: dict[str, Any] = bank.load("goals")
        self.titles = bank.texts(data["project_titles"])
        self.objectives = bank.texts(data["objectives"])
        self.key_results = bank.texts(data["key_results"])
        self.why = bank.texts(data["why"])
        self.development = list(
            zip(
                bank.texts(data["development_titles"]),
                bank.texts(data["development_bodies"]),
                strict=True,
            )
        )
        self.checkin = {k: bank.texts(v) for k, v in data["checkin"].items()}

    def year(self, scene: Scene) -> list[Record]:
        rng = scene.rng
        records: list[Record] = []
        early = [w for w in scene.person.workstreams if w.start < _H2][:3]
        for number, workstream in enumerate(early, start=1):
            records.append(self._goal(scene, workstream, number, random_workday(rng, *_JANUARY)))
            if rng.random() < _CHECKIN_SHARE:
                records.append(self._checkin(scene, workstream, number))
        records.append(self._development(scene, len(early) + 1))
        later = [w for w in scene.person.workstreams if w.start >= _H2]
        for number, workstream in enumerate(later, start=len(early) + 2):
            records.append(self._goal(scene, workstream, number, workstream.start, h2=True))
        return records

    def _goal(
        self, scene: Scene, workstream: Workstream, number: int, day: date, *, h2: bool = False
    ) -> Record:
        rng = scene.rng
        slots = scene.slots(workstream, day)
        title = fill(rng.choice(self.titles), slots)
        body = self._okr(scene, slots)
        return scene.record(
            source="goals",
            external_id=self._id(scene, number),
            kind="goal",
            day=day,
            title=f"New for H2: {title}" if h2 else title,
            body=body,
            author=scene.person,
            metadata={"project": workstream.codename, "status": "set", "due": slots["due"]},
            impact=0.5,
        )

    def _okr(self, scene: Scene, slots: Slots) -> str:
        rng = scene.rng
        results = rng.sample(self.key_results, rng.randint(2, 4))
        lines = "\n".join(f"- {fill(r, slots)}" for r in results)
        objective = fill(rng.choice(self.objectives), slots)
        why = fill(rng.choice(self.why), slots)
        return f"Objective: {objective}\n\nKey results:\n{lines}\n\n{why}"

    def _checkin(self, scene: Scene, workstream: Workstream, number: int) -> Record:
        rng = scene.rng
        day = random_workday(rng, *_CHECKIN)
        slots = scene.slots(workstream, day)
        status = {"strong": "ahead", "solid": "on track", "weak": "at risk"}[workstream.tier]
        return scene.record(
            source="goals",
            external_id=f"{self._id(scene, number)}-checkin",
            kind="goal",
            day=day,
            title=f"Check-in: {workstream.codename} goal",
            body=fill(rng.choice(self.checkin[workstream.tier]), slots),
            author=scene.person,
            metadata={"project": workstream.codename, "status": status},
            impact=0.45,
        )

    def _development(self, scene: Scene, number: int) -> Record:
        rng = scene.rng
        day = random_workday(rng, *_JANUARY)
        slots = scene.slots(scene.workstream_at(day), day)
        title, body = rng.choice(self.development)
        return scene.record(
            source="goals",
            external_id=self._id(scene, number),
            kind="goal",
            day=day,
            title=fill(title, slots),
            body=fill(body, slots),
            author=scene.person,
            metadata={"status": "set", "type": "development"},
            impact=0.3,
        )

    @staticmethod
    def _id(scene: Scene, number: int) -> str:
        return f"{scene.person.employee_id}-2026-g{number}"
