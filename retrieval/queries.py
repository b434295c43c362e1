"""What each draft kind looks for, read from `data/draft_queries.json`."""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from domain.errors import Invalid

QUERIES_FILE = Path(__file__).parent / "data" / "draft_queries.json"


@dataclass(frozen=True)
class LeadGroup:
    """Record kinds that share `slots` of the first places in the pack."""

    kinds: frozenset[str]
    slots: int


@dataclass(frozen=True)
class KindQueries:
    kind: str
    queries: tuple[str, ...]
    terms: tuple[str, ...]
    record_kinds: dict[str, float]
    lead: tuple[LeadGroup, ...] = ()

    def weight(self, record_kind: str) -> float:
        return self.record_kinds.get(record_kind, 1.0)

    def lead_group(self, record_kind: str) -> int:
        """Index of the lead group holding this record kind, or -1."""
        return next((i for i, g in enumerate(self.lead) if record_kind in g.kinds), -1)


class UnknownDraftKind(Invalid):
    pass


@cache
def _all() -> dict[str, KindQueries]:
    data = json.loads(QUERIES_FILE.read_text())
    return {
        kind: KindQueries(
            kind,
            tuple(spec["queries"]),
            tuple(spec["terms"]),
            dict(spec.get("record_kinds", {})),
            tuple(LeadGroup(frozenset(g["kinds"]), int(g["slots"])) for g in spec.get("lead", [])),
        )
        for kind, spec in data.items()
        if not kind.startswith("_")
    }


def draft_kinds() -> tuple[str, ...]:
    return tuple(_all())


def queries_for(kind: str) -> KindQueries:
    try:
        return _all()[kind]
    except KeyError:
        raise UnknownDraftKind(
            f"unknown draft kind {kind!r}; use one of {', '.join(draft_kinds())}"
        ) from None
