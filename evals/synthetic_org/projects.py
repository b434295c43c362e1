"""Each person's year as a few workstreams: a slice of one of their team's projects with one
metric, a baseline, a target and an outcome.

Teams share project codenames and systems (so teammates' feedback and 1:1s talk about the
same projects), while each person's workstream has its own metric. How the outcome turns
out (strong, solid or weak) is drawn from the person's latent performance with noise, and
every record about the workstream reports the same numbers.
"""

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from evals.synthetic_org import bank
from evals.synthetic_org.dates import YEAR_END, YEAR_START, clamp_day
from evals.synthetic_org.model import Person, Workstream
from evals.synthetic_org.text import capitalize, format_value

TARGET_SHARE = 0.3  # goals aim to close 30% of the gap
_SHARE_BY_TIER = {"strong": (0.4, 0.75), "solid": (0.15, 0.28), "weak": (0.02, 0.08)}
_HIGHER_GAIN = 1.2  # an uncapped "higher is better" metric grows by share * this


@dataclass(frozen=True)
class Metric:
    """A metric archetype with its text already filled for one workstream."""

    desc: str
    label: str
    unit: str
    low: float
    high: float
    better: str  # "lower" | "higher"
    cap: float | None
    decimals: int


@dataclass(frozen=True)
class TeamProject:
    codename: str
    system: str
    surface: str


def outcome_tier(rng: random.Random, performance: float) -> str:
    """Strong, solid or weak: mostly follows performance, with noise (good people have
    a bad quarter, weak ones a lucky one)."""
    drawn = performance + rng.gauss(0, 0.55)
    if drawn >= 3.6:
        return "strong"
    return "solid" if drawn >= 2.5 else "weak"


def assign_workstreams(rng: random.Random, people: list[Person]) -> None:
    """Give every person three or four workstreams spread over the year."""
    vocab = bank.load("vocab")
    codenames = bank.texts(vocab["codenames"])
    team_projects: dict[int, list[TeamProject]] = {}
    for person in people:
        family = vocab["families"][person.family]
        home = person.index if person.reports or person.manager is None else person.manager
        if home not in team_projects:
            team_projects[home] = _team_projects(rng, codenames, family)
        count = 4 if person.true_performance >= 3.8 and rng.random() < 0.5 else 3
        projects = rng.sample(team_projects[home], min(count, len(team_projects[home])))
        spans = _spans(rng, len(projects))
        person.workstreams = [
            _workstream(rng, person, family, vocab["management"], vocab, project, start, end)
            for project, (start, end) in zip(projects, spans, strict=True)
        ]


def _team_projects(
    rng: random.Random, codenames: tuple[str, ...], family: dict[str, Any]
) -> list[TeamProject]:
    systems, surfaces = bank.texts(family["systems"]), bank.texts(family["surfaces"])
    return [
        TeamProject(codename, rng.choice(systems), rng.choice(surfaces))
        for codename in rng.sample(codenames, 4)
    ]


def _spans(rng: random.Random, count: int) -> list[tuple[date, date]]:
    """Overlapping start/end dates that cover the year between them."""
    year = (YEAR_END - YEAR_START).days
    length = year / count
    spans = []
    for i in range(count):
        start = YEAR_START + timedelta(days=int(i * length - (rng.randint(7, 21) if i else 0)))
        end = start + timedelta(days=int(length * (1.0 + 0.25 * rng.random())))
        spans.append((clamp_day(start), clamp_day(min(end, YEAR_END))))
    return spans


def _workstream(
    rng: random.Random,
    person: Person,
    family: dict[str, Any],
    management: dict[str, Any],
    vocab: dict[str, Any],
    project: TeamProject,
    start: date,
    end: date,
) -> Workstream:
    manages = bool(person.reports) and rng.random() < 0.5
    source = management if manages else family
    fills = {"system": project.system, "surface": project.surface, "team": person.department}
    metric = _metric(rng.choice(source["archetypes"]), fills)
    tier = outcome_tier(rng, person.true_performance)
    baseline, target, achieved = _values(rng, metric, tier)
    verbs = vocab["improve_verbs"][metric.better]
    verb = rng.randrange(len(verbs["past"]))
    deliverable = rng.choice(bank.texts(source["deliverables"]))
    artifact = rng.choice(bank.texts(source["artifacts"]))
    interim = baseline + (achieved - baseline) * (0.3 + 0.4 * rng.random())
    slots = {
        "project": project.codename,
        "project_desc": metric.desc,
        "system": project.system,
        "surface": project.surface,
        "metric": metric.label,
        "baseline": format_value(baseline, metric.unit, metric.decimals),
        "target": format_value(target, metric.unit, metric.decimals),
        "achieved": format_value(achieved, metric.unit, metric.decimals),
        "interim": format_value(interim, metric.unit, metric.decimals),
        "pct_change": f"{abs(achieved - baseline) / baseline:.0%}",
        "improved": verbs["past"][verb],
        "Improved": capitalize(verbs["past"][verb]),
        "improve": verbs["infinitive"][verb],
        "Improve": capitalize(verbs["infinitive"][verb]),
        "deliverable": deliverable,
        "Deliverable": capitalize(deliverable),
        "artifact": artifact,
        "Artifact": capitalize(artifact),
        "due": "June 30" if start.month < 6 else "November 30",
    }
    return Workstream(project.codename, start, end, tier, baseline, target, achieved, slots)


def _metric(archetype: dict[str, Any], fills: dict[str, str]) -> Metric:
    cap = archetype.get("cap")
    return Metric(
        desc=str(archetype["desc"]).format_map(fills),
        label=str(archetype["metric"]).format_map(fills),
        unit=str(archetype["unit"]),
        low=float(archetype["lo"]),
        high=float(archetype["hi"]),
        better=str(archetype["better"]),
        cap=None if cap is None else float(cap),
        decimals=int(archetype.get("decimals", 0)),
    )


def _values(rng: random.Random, metric: Metric, tier: str) -> tuple[float, float, float]:
    """Baseline, target and achieved value; the achieved value is nudged until it reads
    differently from the baseline once rounded."""
    baseline = _round(metric, metric.low + (metric.high - metric.low) * rng.random())
    low, high = _SHARE_BY_TIER[tier]
    share = low + (high - low) * rng.random()
    target = _round(metric, _moved(metric, baseline, TARGET_SHARE))
    achieved = _round(metric, _moved(metric, baseline, share))
    for _ in range(20):
        if _shown(metric, achieved) != _shown(metric, baseline):
            break
        share += 0.01
        achieved = _round(metric, _moved(metric, baseline, share))
    return baseline, target, achieved


def _moved(metric: Metric, baseline: float, share: float) -> float:
    if metric.better == "lower":
        return baseline * (1 - share)
    if metric.cap is not None:
        return baseline + share * (metric.cap - baseline)
    return baseline * (1 + share * _HIGHER_GAIN)


def _round(metric: Metric, value: float) -> float:
    return round(value, metric.decimals)


def _shown(metric: Metric, value: float) -> str:
    return format_value(value, metric.unit, metric.decimals)
