"""Peer feedback (360 reviews and ad-hoc notes) about a person from three to eight of the
people they work with.

Feedback clusters in the mid-year and year-end review windows, with some ad hoc in
between. Each piece is about a theme (ownership, communication, ...) and is mostly one of
the person's own strengths or growth areas, so themes recur across authors; whether it
praises or asks for change follows the person's latent performance. The wording here is
always about behaviour and outcomes; biased wording is planted separately (patterns.py).
"""

import random
from collections.abc import Sequence
from datetime import date
from typing import Any

from evals.synthetic_org import bank
from evals.synthetic_org.dates import YEAR_END, YEAR_START, random_workday
from evals.synthetic_org.model import Person, Record
from evals.synthetic_org.scene import Scene
from evals.synthetic_org.text import Slots, fill

REVIEW_WINDOWS = ((date(2026, 5, 11), date(2026, 6, 19)), (date(2026, 10, 5), date(2026, 11, 13)))
_OWN_THEME_SHARE = 0.8
_STRUCTURED_SHARE = 0.35


def feedback_day(rng: random.Random) -> date:
    """Mostly inside a review window, sometimes ad hoc."""
    draw = rng.random()
    if draw < 0.3:
        return random_workday(rng, *REVIEW_WINDOWS[0])
    if draw < 0.6:
        return random_workday(rng, *REVIEW_WINDOWS[1])
    return random_workday(rng, YEAR_START, YEAR_END)


def reviewers(rng: random.Random, person: Person, people: Sequence[Person]) -> list[Person]:
    """Three to eight people from the person's circle (more for managers: their reports)."""
    pool = list(person.circle)
    count = min(len(pool), rng.randint(3, 8))
    return [people[i] for i in rng.sample(pool, count)]


class FeedbackWriter:
    def __init__(self) -> None:
        data: dict[str, Any] = bank.load("feedback")
        self.openers = bank.texts(data["openers"])
        self.labels = {k: bank.texts(v) for k, v in data["structured_labels"].items()}
        self.closers = {k: bank.texts(v) for k, v in data["closers"].items()}
        self.themes = {
            theme: {polarity: bank.texts(v) for polarity, v in texts.items()}
            for theme, texts in data["themes"].items()
        }
        self.family_themes: dict[str, list[str]] = bank.load("org")["themes_by_family"]

    def year(self, scene: Scene) -> list[Record]:
        rng = scene.rng
        records = []
        for author in reviewers(rng, scene.person, scene.people):
            for _ in range(1 if rng.random() < 0.7 else 2):
                records.append(self._one(scene, author, feedback_day(rng)))
        return records

    def _one(self, scene: Scene, author: Person, day: date) -> Record:
        rng = scene.rng
        person = scene.person
        growth_share = 0.7 - 0.13 * (person.true_performance - 1.0)
        polarity = "growth" if rng.random() < growth_share else "strength"
        theme = self._theme(rng, person, polarity)
        slots = scene.slots(scene.workstream_at(day), day, {"author_team": author.department})
        if rng.random() < _STRUCTURED_SHARE:
            body = self._structured(rng, person, polarity, theme, slots)
        else:
            body = self._prose(rng, person, polarity, theme, slots)
        number = scene.ids.next("feedback360", 70_000, 3)
        return scene.record(
            source="feedback360",
            external_id=f"fb-{number}",
            kind="feedback",
            day=day,
            body=body,
            author=author,
            metadata={"theme": theme, "cycle": review_cycle(day)},
            theme=theme,
        )

    def _theme(self, rng: random.Random, person: Person, polarity: str) -> str:
        own = person.strengths if polarity == "strength" else person.growth
        if rng.random() < _OWN_THEME_SHARE:
            return rng.choice(own)
        return rng.choice(self.family_themes[person.family])

    def _prose(
        self, rng: random.Random, person: Person, polarity: str, theme: str, slots: Slots
    ) -> str:
        first = rng.choice(self.themes[theme][polarity])
        parts = [fill(rng.choice(self.openers), slots), fill(first, slots)]
        if rng.random() < 0.4:
            second = self._theme(rng, person, polarity)
            options = [t for t in self.themes[second][polarity] if t != first]
            parts.append(fill(rng.choice(options), slots))
        body = " ".join(parts)
        if rng.random() < 0.5:
            tone = "positive" if polarity == "strength" else "neutral"
            body = f"{body}\n\n{fill(rng.choice(self.closers[tone]), slots)}"
        return body

    def _structured(
        self, rng: random.Random, person: Person, polarity: str, theme: str, slots: Slots
    ) -> str:
        """A keep-doing / do-differently form: one strength and one growth area."""
        if polarity == "strength":
            strength, growth = theme, self._theme(rng, person, "growth")
        else:
            strength, growth = self._theme(rng, person, "strength"), theme
        keep = fill(rng.choice(self.labels["strength"]), slots)
        change = fill(rng.choice(self.labels["growth"]), slots)
        return (
            f"{keep} {fill(rng.choice(self.themes[strength]['strength']), slots)}\n\n"
            f"{change} {fill(rng.choice(self.themes[growth]['growth']), slots)}"
        )


def review_cycle(day: date) -> str:
    for index, (start, end) in enumerate(REVIEW_WINDOWS):
        if start <= day <= end:
            return ("2026-mid-year", "2026-year-end")[index]
    return "ad-hoc"
