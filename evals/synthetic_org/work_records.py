"""Work records: tickets, pull requests, docs, CRM and queue notes about a person's work.

Each workstream yields a kickoff, one to three progress notes and a closing record with the
outcome, and sometimes a long write-up (retrospective, design review) of several
sections. Routine records (reviews, on-call, small fixes) fill the rest of each month.
How good the outcome is, and whether progress notes talk about slips and rework, follows
the workstream's tier, which follows the person's latent performance.
"""

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from evals.synthetic_org import bank
from evals.synthetic_org.dates import YEAR_END, YEAR_START, clamp_day, random_workday
from evals.synthetic_org.model import Person, Record, Workstream
from evals.synthetic_org.scene import Scene, slug
from evals.synthetic_org.text import Weighted, fill

_MILESTONE_IMPACT = {"strong": 0.9, "solid": 0.65, "weak": 0.4}
_LONG_SHARE = 0.35
_ROUTINE_IMPACT = 0.1
_PROGRESS_IMPACT = 0.25


@dataclass(frozen=True)
class _Bank:
    titles: dict[str, tuple[str, ...]]
    context: tuple[str, ...]
    outcome: dict[str, tuple[str, ...]]
    progress: tuple[str, ...]
    weak_detail: tuple[str, ...]
    collab: tuple[str, ...]
    next: tuple[str, ...]
    sections: dict[str, tuple[str, ...]]
    summary: tuple[str, ...]
    went_well: tuple[str, ...]
    would_change: tuple[str, ...]
    management: tuple[str, ...]
    actions: dict[str, tuple[str, ...]]
    routine: dict[str, tuple[tuple[str, ...], ...]]
    sources: dict[str, Weighted]


def _bank() -> _Bank:
    data: dict[str, Any] = bank.load("work_records")
    org = bank.load("org")
    return _Bank(
        titles={k: bank.texts(v) for k, v in data["titles"].items()},
        context=bank.texts(data["context"]),
        outcome={k: bank.texts(v) for k, v in data["outcome"].items()},
        progress=bank.texts(data["progress"]),
        weak_detail=bank.texts(data["weak_detail"]),
        collab=bank.texts(data["collab"]),
        next=bank.texts(data["next"]),
        sections={k: bank.texts(v) for k, v in data["sections"].items()},
        summary=bank.texts(data["summary"]),
        went_well=bank.texts(data["went_well"]),
        would_change=bank.texts(data["would_change"]),
        management=bank.texts(data["management_actions"]),
        actions={k: bank.texts(v) for k, v in data["actions"].items()},
        routine={k: tuple(tuple(map(str, e)) for e in v) for k, v in data["routine"].items()},
        sources={k: Weighted(bank.weights(v)) for k, v in org["work_sources"].items()},
    )


class WorkWriter:
    """Writes the work records of one person at a time."""

    def __init__(self) -> None:
        self.bank = _bank()

    def year(self, scene: Scene) -> list[Record]:
        records: list[Record] = []
        for workstream in scene.person.workstreams:
            records.extend(self._workstream(scene, workstream))
        months = (YEAR_END - YEAR_START).days / 30.4
        rate = 1.5 + 1.5 * (scene.person.true_performance - 1.0) / 4.0
        wanted = int(rate * months + scene.rng.random())
        for _ in range(max(0, wanted - len(records))):
            records.append(self._routine(scene, random_workday(scene.rng, YEAR_START, YEAR_END)))
        return records

    def _workstream(self, scene: Scene, workstream: Workstream) -> list[Record]:
        rng = scene.rng
        span = (workstream.end - workstream.start).days
        records = [self._progress(scene, workstream, workstream.start, kickoff=True)]
        for step in range(1, 2 + span // 45):
            day = clamp_day(workstream.start + timedelta(days=span * step // (2 + span // 45)))
            records.append(self._progress(scene, workstream, day, kickoff=False))
        records.append(self._milestone(scene, workstream, workstream.end))
        if rng.random() < _LONG_SHARE:
            day = clamp_day(workstream.end + timedelta(days=rng.randint(2, 10)))
            records.append(self._long(scene, workstream, day))
        return records

    def _actions(self, scene: Scene) -> tuple[str, ...]:
        own = self.bank.actions[scene.person.family]
        if scene.person.reports and scene.rng.random() < 0.5:
            return self.bank.management
        return own

    def _progress(
        self, scene: Scene, workstream: Workstream, day: date, *, kickoff: bool
    ) -> Record:
        rng = scene.rng
        source, external_id, metadata, known = self._identity(scene, workstream, code=not kickoff)
        slots = scene.slots(workstream, day, known)
        weak = workstream.tier == "weak" and not kickoff and rng.random() < 0.6
        titles = self.bank.titles["weak" if weak else "progress"]
        sentences = []
        if kickoff or rng.random() < 0.3:
            sentences.append(rng.choice(self.bank.context))
        sentences.append(rng.choice(self._actions(scene)))
        if not kickoff:
            sentences.append(rng.choice(self.bank.weak_detail if weak else self.bank.progress))
        if rng.random() < 0.4:
            sentences.append(rng.choice(self.bank.collab if rng.random() < 0.5 else self.bank.next))
        return scene.record(
            source=source,
            external_id=external_id,
            kind="work_record",
            day=day,
            title=fill(rng.choice(titles), slots),
            body=_paragraphs(rng, [fill(s, slots) for s in sentences]),
            author=self._author(scene, source),
            metadata=metadata,
            impact=_PROGRESS_IMPACT + 0.05 * rng.random(),
        )

    def _milestone(self, scene: Scene, workstream: Workstream, day: date) -> Record:
        rng = scene.rng
        source, external_id, metadata, known = self._identity(scene, workstream)
        slots = scene.slots(workstream, day, known)
        actions = self._actions(scene)
        sentences = [rng.choice(actions)]
        if rng.random() < 0.5:
            sentences.insert(0, rng.choice(self.bank.context))
        if rng.random() < 0.5:
            sentences.append(rng.choice([a for a in actions if a != sentences[-1]]))
        sentences.append(rng.choice(self.bank.outcome[workstream.tier]))
        if rng.random() < 0.5:
            sentences.append(rng.choice(self.bank.collab))
        if rng.random() < 0.5:
            sentences.append(rng.choice(self.bank.next))
        title = rng.choice(self.bank.titles["weak" if workstream.tier == "weak" else "milestone"])
        return scene.record(
            source=source,
            external_id=external_id,
            kind="work_record",
            day=day,
            title=fill(title, slots),
            body=_paragraphs(rng, [fill(s, slots) for s in sentences]),
            author=self._author(scene, source),
            metadata=metadata,
            impact=_MILESTONE_IMPACT[workstream.tier] + 0.05 * rng.random(),
        )

    def _long(self, scene: Scene, workstream: Workstream, day: date) -> Record:
        """A multi-section write-up (retrospective, design review): the long documents a
        chunker has to split."""
        rng = scene.rng
        slots = scene.slots(workstream, day)
        b = self.bank
        actions = self._actions(scene)
        sections = [
            ("summary", [rng.choice(b.summary)]),
            ("background", rng.sample(b.context, 2)),
            ("work", rng.sample(actions, 4)),
            ("results", [rng.choice(b.outcome[workstream.tier]), *rng.sample(b.collab, 2)]),
            ("went_well", rng.sample(b.went_well, 3)),
            ("would_change", rng.sample(b.would_change, 3)),
            ("next", rng.sample(b.next, 2)),
        ]
        parts = [
            f"{rng.choice(b.sections[key])}\n{' '.join(fill(s, slots) for s in sentences)}"
            for key, sentences in sections
        ]
        number = scene.ids.next("docs", 10_000, 5)
        impact = _MILESTONE_IMPACT[workstream.tier] - 0.03 + 0.05 * rng.random()
        return scene.record(
            source="docs",
            external_id=f"doc-{number:06d}",
            kind="work_record",
            day=day,
            title=fill(rng.choice(b.titles["long"]), slots),
            body="\n\n".join(parts),
            author=scene.person,
            metadata={"project": workstream.codename, "doc_type": "write-up"},
            impact=impact,
        )

    def _routine(self, scene: Scene, day: date) -> Record:
        """Everyday work; only code-shaped items (tagged "code") come from GitHub."""
        rng = scene.rng
        workstream = scene.workstream_at(day)
        title, body, *tags = rng.choice(self.bank.routine[scene.person.family])
        source, external_id, metadata, known = self._identity(
            scene, workstream, code="code" in tags
        )
        slots = scene.slots(workstream, day, known)
        text = fill(body, slots)
        return scene.record(
            source=source,
            external_id=external_id,
            kind="work_record",
            day=day,
            title=fill(title, slots),
            body=text,
            author=self._author(scene, source),
            metadata=metadata,
            impact=_ROUTINE_IMPACT * rng.random(),
        )

    def _identity(
        self, scene: Scene, workstream: Workstream, *, code: bool = True
    ) -> tuple[str, str, dict[str, str | int], dict[str, str]]:
        """Source, external id and metadata, in the style of the system the record comes
        from (a Jira key, a pull request path, a CRM opportunity, ...)."""
        source = self.bank.sources[scene.person.family].pick(scene.rng)
        if source == "github" and not code:
            source = "jira"
        ids = scene.ids
        metadata: dict[str, str | int] = {"project": workstream.codename}
        if source == "jira":
            key = ids.ticket(scene.person.ticket_prefix)
            metadata["ticket"] = key
            return source, key, metadata, {"ticket": key}
        if source == "github":
            repo = slug(workstream.slots["system"])
            number = ids.next(f"github:{repo}", scene.rng.randint(40, 900), 4)
            metadata.update(repo=repo, pr=number)
            return source, f"{repo}/pull/{number}", metadata, {}
        if source == "salesforce":
            account = scene.rng.choice(scene.pools["customers"])
            metadata["account"] = account
            number = ids.next("salesforce", 204_000, 7)
            return source, f"OPP-{number:07d}", metadata, {"customer": account}
        if source == "zendesk":
            key = f"ZD-{ids.next('zendesk', 48_000, 9)}"
            metadata["ticket"] = key
            return source, key, metadata, {"ticket": key}
        if source == "asana":
            return source, f"task-{ids.next('asana', 1_200_000_000, 977)}", metadata, {}
        return source, f"doc-{ids.next('docs', 10_000, 5):06d}", metadata, {}

    @staticmethod
    def _author(scene: Scene, source: str) -> Person | None:
        """Tool exports often carry no author; documents always do."""
        if source != "docs" and scene.rng.random() < 0.25:
            return None
        return scene.person


def _paragraphs(rng: random.Random, sentences: list[str]) -> str:
    """Two or three sentences to a paragraph, as people write short notes."""
    paragraphs: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        current.append(sentence)
        if len(current) >= 2 and rng.random() < 0.55:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)
