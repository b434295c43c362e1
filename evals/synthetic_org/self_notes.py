"""Private journal notes in the person's own voice: wins, worries, lessons, 1:1 prep, and
for many people a long mid-year reflection. Weaker performers worry more and win less."""

from datetime import date
from typing import Any

from evals.synthetic_org import bank
from evals.synthetic_org.dates import YEAR_END, YEAR_START, random_workday
from evals.synthetic_org.model import Record
from evals.synthetic_org.scene import Scene
from evals.synthetic_org.text import Slots, fill

_REFLECTION_SHARE = 0.6
_REFLECTION_WINDOW = (date(2026, 6, 8), date(2026, 6, 26))


class SelfNoteWriter:
    def __init__(self) -> None:
        data: dict[str, Any] = bank.load("self_notes")
        self.titles = bank.texts(data["titles"])
        self.topics = {k: bank.texts(data[k]) for k in ("wins", "worries", "lessons", "prep")}
        self.reflection = {k: bank.texts(v) for k, v in data["reflection"].items()}
        self.headings = {k: bank.texts(v) for k, v in data["reflection_headings"].items()}

    def year(self, scene: Scene) -> list[Record]:
        rng = scene.rng
        records = [
            self._short(scene, random_workday(rng, YEAR_START, YEAR_END))
            for _ in range(rng.randint(2, 4))
        ]
        if rng.random() < _REFLECTION_SHARE:
            records.append(self._reflection(scene, random_workday(rng, *_REFLECTION_WINDOW)))
        return records

    def _short(self, scene: Scene, day: date) -> Record:
        rng = scene.rng
        slots = scene.slots(scene.workstream_at(day), day)
        good = (scene.person.true_performance - 1.0) / 4.0
        weights = {"wins": 0.5 + good, "worries": 1.5 - good, "lessons": 1.0, "prep": 1.0}
        keys = rng.choices(list(weights), list(weights.values()), k=rng.randint(2, 4))
        sentences: list[str] = []
        for key in keys:
            options = [s for s in self.topics[key] if s not in sentences]
            sentences.append(rng.choice(options))
        title = rng.choice([t for t in self.titles if "reflection" not in t.lower()])
        return self._record(scene, day, title, " ".join(fill(s, slots) for s in sentences), slots)

    def _reflection(self, scene: Scene, day: date) -> Record:
        """A long note (often 300+ words): what went well, what did not, what next."""
        rng = scene.rng
        finished = [w for w in scene.person.workstreams if w.end <= day]
        workstream = finished[-1] if finished else scene.workstream_at(day)
        slots = scene.slots(workstream, day)
        r = self.reflection
        sections = [
            ("went_well", rng.sample(r["went_well"], 4)),
            ("went_badly", rng.sample(r["went_badly"], 3)),
            ("lessons", rng.sample(self.topics["lessons"], 2)),
            ("next", rng.sample(r["next"], 3)),
        ]
        body = "\n\n".join(
            f"{rng.choice(self.headings[key])}\n{' '.join(fill(s, slots) for s in group)}"
            for key, group in sections
        )
        return self._record(scene, day, "Mid-year reflection draft", body, slots)

    def _record(self, scene: Scene, day: date, title: str, body: str, slots: Slots) -> Record:
        number = scene.ids.next(f"journal:{scene.person.employee_id}", 1)
        return scene.record(
            source="journal",
            external_id=f"{scene.person.employee_id}-note-{number}",
            kind="self_note",
            day=day,
            title=fill(title, slots),
            body=body,
            author=scene.person,
        )
