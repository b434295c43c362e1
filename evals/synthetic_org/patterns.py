"""Planted bias in feedback wording, with the truth written to labels.json.

For a labelled set of people (drawn with extra weight on women, nonbinary people and some
under-represented groups, but listed explicitly rather than left as a statistic), some
feedback evaluates an event with gender-coded or personality-focused wording. Each such
record has a matched control: the same event and outcome, written about a comparable
person (same job family, similar true performance, a man where the wording is
gender-coded) in behaviour- and outcome-focused wording. A detector can then be scored on
pairs that differ only in the evaluation.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from evals.synthetic_org import bank
from evals.synthetic_org.dates import clamp_day, date_slots
from evals.synthetic_org.feedback import feedback_day, review_cycle
from evals.synthetic_org.model import Person, Record
from evals.synthetic_org.scene import Scene, SceneMaker
from evals.synthetic_org.text import Weighted, fill

_SHARED_NUMBERS = ("weeks", "days", "minutes", "n_word")


@dataclass(frozen=True)
class BiasedPair:
    biased: Record
    control: Record
    style: str  # "gender_coded" | "personality"
    event: str


def plant_biased_feedback(
    rng: random.Random, people: Sequence[Person], scenes: SceneMaker
) -> list[BiasedPair]:
    data: dict[str, Any] = bank.load("bias")
    count = max(2, round(len(people) * float(data["target_share"])))
    targets = _targets(rng, people, data["target_weights"], count)
    excluded = {p.index for p in targets}
    styles = Weighted(bank.weights(data["style_weights"]))
    opener_bank = bank.texts(bank.load("feedback")["openers"])
    pairs: list[BiasedPair] = []
    for target in targets:
        for _ in range(rng.randint(1, int(data["max_per_target"]))):
            style = styles.pick(rng)
            control = _control(rng, people, target, style, excluded)
            event = rng.choice(data["events"])
            opener = rng.choice(opener_bank)
            pairs.append(_pair(rng, scenes, target, control, style, event, opener))
    return pairs


def _targets(
    rng: random.Random, people: Sequence[Person], weights: dict[str, Any], count: int
) -> list[Person]:
    """A weighted sample without replacement, in a stable order."""
    gender, ethnicity = bank.weights(weights["gender"]), bank.weights(weights["ethnicity"])
    pool = [p for p in people if p.manager is not None and p.circle]
    chosen: list[Person] = []
    while pool and len(chosen) < count:
        scores = [gender[p.gender] * ethnicity[p.ethnicity] for p in pool]
        pick = rng.choices(range(len(pool)), scores)[0]
        chosen.append(pool.pop(pick))
    return sorted(chosen, key=lambda p: p.index)


def _control(
    rng: random.Random, people: Sequence[Person], target: Person, style: str, excluded: set[int]
) -> Person:
    """The most comparable person available: same family, close performance, and for
    gender-coded wording a man, relaxing those conditions only when nobody fits."""
    base = [p for p in people if p.index not in excluded and p.manager is not None and p.circle]
    close = [p for p in base if abs(p.true_performance - target.true_performance) <= 0.75]
    tiers = [
        [p for p in close if p.family == target.family and _gender_ok(p, style)],
        [p for p in close if _gender_ok(p, style)],
        [p for p in base if _gender_ok(p, style)],
        base,
    ]
    for tier in tiers:
        if tier:
            return rng.choice(tier)
    raise ValueError("no one is available as a control")


def _gender_ok(person: Person, style: str) -> bool:
    return style != "gender_coded" or person.gender == "man"


def _pair(
    rng: random.Random,
    scenes: SceneMaker,
    target: Person,
    control: Person,
    style: str,
    event: dict[str, Any],
    opener: str,
) -> BiasedPair:
    day = feedback_day(rng)
    control_day = clamp_day(day + timedelta(days=rng.randint(0, 4)))
    shared_day = date_slots(day)
    shared = {key: shared_day[key] for key in ("month", "next_month", "next_quarter")}
    target_scene, control_scene = scenes.scene(target), scenes.scene(control)
    probe = target_scene.slots(None, day)
    shared.update({key: probe[key] for key in _SHARED_NUMBERS})
    wording = rng.randrange(len(event[style]))
    verdicts = (event[style][wording], event["control"][rng.randrange(len(event["control"]))])
    records = []
    for scene, when, verdict in (
        (target_scene, day, verdicts[0]),
        (control_scene, control_day, verdicts[1]),
    ):
        records.append(_feedback(scene, when, shared, opener, event, verdict))
    return BiasedPair(records[0], records[1], style, str(event["key"]))


def _feedback(
    scene: Scene,
    day: date,
    shared: dict[str, str],
    opener: str,
    event: dict[str, Any],
    verdict: str,
) -> Record:
    rng = scene.rng
    author = scene.people[rng.choice(scene.person.circle)]
    slots = scene.slots(scene.workstream_at(day), day, shared, {"author_team": author.department})
    parts = (opener, str(event["event"]), str(event["outcome"]), verdict)
    number = scene.ids.next("feedback360", 70_000, 3)
    theme = str(event["theme"])
    return scene.record(
        source="feedback360",
        external_id=f"fb-{number}",
        kind="feedback",
        day=day,
        body=" ".join(fill(part, slots) for part in parts),
        author=author,
        metadata={"theme": theme, "cycle": review_cycle(day)},
        theme=theme,
    )
