"""A manager's running notes from biweekly 1:1s with each report.

Every note covers progress on what the report is working on that week (so a project's
numbers and slips show up here too), a couple of other topics (blockers, career,
wellbeing, feedback), follow-ups on last time's action items, and new action items. Each
manager keeps notes in one style of their own: headed paragraphs, bullets or plain prose.
"""

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from evals.synthetic_org import bank
from evals.synthetic_org.dates import WORKDAYS, YEAR_END
from evals.synthetic_org.model import Person, Record, Workstream
from evals.synthetic_org.scene import Scene
from evals.synthetic_org.text import Slots, Weighted, capitalize, fill, fill_clause

_SKIP_SHARE = 0.1  # cancelled 1:1s (holidays, travel)
_OTHER_TOPICS = Weighted({"blockers": 3, "career": 2, "wellbeing": 2, "feedback": 2})


@dataclass(frozen=True)
class _Topic:
    key: str
    sentences: list[str]


class OneOnOneWriter:
    def __init__(self) -> None:
        data: dict[str, Any] = bank.load("one_on_ones")
        self.data = data
        self.headings = {k: bank.texts(v) for k, v in data["headings"].items()}
        self.openers = bank.texts(data["openers"])
        self.progress = {k: bank.texts(v) for k, v in data["progress"].items()}
        self.singles = {k: bank.texts(data[k]) for k in ("blockers", "career", "wellbeing")}
        self.feedback = {k: bank.texts(v) for k, v in data["feedback"].items()}
        self.followups = {k: bank.texts(v) for k, v in data["followups"].items()}
        self.actions = {k: bank.texts(v) for k, v in data["actions"].items()}

    def year(self, scene: Scene) -> list[Record]:
        """All 1:1 notes about one person, written by their manager."""
        manager = scene.manager
        if manager is None:
            return []
        rng = scene.rng
        day = WORKDAYS[rng.randrange(10)]
        records: list[Record] = []
        previous: str | None = None
        while day <= YEAR_END:
            if rng.random() >= _SKIP_SHARE:
                record, previous = self._note(scene, manager, day, previous)
                records.append(record)
            day += timedelta(days=14)
        return records

    def _note(
        self, scene: Scene, manager: Person, day: date, previous: str | None
    ) -> tuple[Record, str | None]:
        rng = scene.rng
        workstream = scene.workstream_at(day)
        extra = {"prev_action": previous} if previous else {}
        slots = scene.slots(workstream, day, extra)
        topics: list[_Topic] = []
        if previous and rng.random() < 0.55:
            state = "done" if rng.random() < 0.45 + 0.1 * scene.person.true_performance else "open"
            topics.append(_Topic("followups", [fill(rng.choice(self.followups[state]), slots)]))
        topics.append(_Topic("progress", self._progress(scene, workstream, day, slots)))
        for key in _pick_topics(rng):
            topics.append(_Topic(key, [fill(self._topic_sentence(scene, key), slots)]))
        actions = self._actions(scene, manager, slots)
        body = self._render(scene, manager, topics, actions, slots)
        record = scene.record(
            source="1on1",
            external_id=f"1on1-{scene.person.employee_id}-{day.isoformat()}",
            kind="one_on_one",
            day=day,
            body=body,
            author=manager,
            metadata={"manager": manager.employee_id, "project": workstream.codename},
        )
        return record, (actions[0] if actions else None)

    def _progress(self, scene: Scene, workstream: Workstream, day: date, slots: Slots) -> list[str]:
        rng = scene.rng
        if workstream.end < day:
            state = "finished"
        elif workstream.tier == "weak" and day > workstream.start + timedelta(days=20):
            state = "behind" if rng.random() < 0.6 else "active"
        else:
            state = "active"
        first, second = rng.sample(self.progress[state], 2)
        return [fill(first, slots)] + ([fill(second, slots)] if rng.random() < 0.65 else [])

    def _topic_sentence(self, scene: Scene, key: str) -> str:
        rng = scene.rng
        if key != "feedback":
            return rng.choice(self.singles[key])
        positive = rng.random() < 0.1 + 0.2 * (scene.person.true_performance - 1.0)
        return rng.choice(self.feedback["positive" if positive else "constructive"])

    def _actions(self, scene: Scene, manager: Person, slots: Slots) -> list[str]:
        rng = scene.rng
        if rng.random() < 0.2:
            return []
        items = []
        for _ in range(rng.randint(1, 2)):
            owner = "report" if rng.random() < 0.7 else "manager"
            who = scene.person.first if owner == "report" else manager.first
            items.append(f"{who} to {fill_clause(rng.choice(self.actions[owner]), slots)}")
        return items if len(items) == 1 or items[0] != items[1] else items[:1]

    def _render(
        self,
        scene: Scene,
        manager: Person,
        topics: list[_Topic],
        actions: list[str],
        slots: Slots,
    ) -> str:
        rng = scene.rng
        lines: list[str] = []
        if rng.random() < 0.35:
            lines.append(fill(rng.choice(self.openers), slots))
        style = manager.note_style
        action_heading = self._heading(rng, "actions")
        if style == "bullets":
            bullets = [f"- {self._heading(rng, t.key)}: {' '.join(t.sentences)}" for t in topics]
            if actions:
                bullets.append(f"- {action_heading}: {'; '.join(actions)}")
            lines.append("\n".join(bullets))
        elif style == "headings":
            lines += [f"{self._heading(rng, t.key)}: {' '.join(t.sentences)}" for t in topics]
            if actions:
                lines.append(f"{action_heading}: {'; '.join(actions)}.")
        else:
            lines += _prose(rng, topics)
            if actions:
                lines.append(f"{capitalize('; '.join(actions))}.")
        return "\n\n".join(lines)

    def _heading(self, rng: random.Random, key: str) -> str:
        return rng.choice(self.headings[key])


def _pick_topics(rng: random.Random) -> list[str]:
    draw = rng.random()
    count = 1 if draw < 0.25 else 2 if draw < 0.75 else 3
    chosen: list[str] = []
    while len(chosen) < count:
        key = _OTHER_TOPICS.pick(rng)
        if key not in chosen:
            chosen.append(key)
    return chosen


def _prose(rng: random.Random, topics: list[_Topic]) -> list[str]:
    """Plain paragraphs: one or two topics to a paragraph."""
    sentences = [topic.sentences for topic in topics]
    paragraphs: list[str] = []
    while sentences:
        take = 2 if len(sentences) > 2 and rng.random() < 0.5 else 1
        paragraphs.append(" ".join(s for group in sentences[:take] for s in group))
        sentences = sentences[take:]
    return paragraphs
