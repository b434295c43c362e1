"""The management tree: who reports to whom, and which division, job family and department
each position sits in.

The shape is grown top-down: the CEO's direct reports are one VP per division (sized by the
division's weight); below that each manager gets a span of 3 to 9 direct reports, mostly
managers while the subtree is large and individual contributors once it is small enough to
be one team. Positions are numbered breadth-first, so the CEO is E00001 and VPs come next.
"""

import random
from dataclasses import dataclass, field
from typing import Any

from evals.synthetic_org import bank
from evals.synthetic_org.text import Weighted

MIN_PEOPLE = 30
_SPANS = (4, 5, 5, 6, 6, 6, 7, 7, 8, 9)
_DIRECT_ICS = (0, 0, 0, 1, 1, 2)
_TEAM_MAX = 9
_MIN_SUBTREE = 4  # a manager and at least three reports

# A subtree shape: the list of its direct reports' shapes; an individual contributor is [].
Shape = list["Shape"]


@dataclass
class Position:
    index: int
    parent: int | None
    children: list[int] = field(default_factory=list)
    height: int = 0
    division: str = ""
    family: str = ""
    department: str = ""
    ticket_prefix: str = ""


def build_tree(rng: random.Random, people: int) -> list[Position]:
    """A realistic org chart of exactly `people` positions (at least MIN_PEOPLE)."""
    if people < MIN_PEOPLE:
        raise ValueError(f"an org needs at least {MIN_PEOPLE} people, got {people}")
    org = bank.load("org")
    divisions: list[dict[str, Any]] = org["divisions"]
    sizes = _partition(rng, people - 1, [float(d["weight"]) for d in divisions], jitter=False)
    shape: Shape = [_shape(rng, size - 1) for size in sizes]
    positions = _flatten(shape)
    _set_heights(positions)
    ceo = org["ceo"]
    root = positions[0]
    root.division, root.family = "Office of the CEO", str(ceo["job_family"])
    root.department, root.ticket_prefix = str(ceo["department"]), str(ceo["ticket"])
    for vp_index, division in zip(root.children, divisions, strict=True):
        _assign_division(rng, positions, positions[vp_index], division, org["departments"])
    return positions


def _shape(rng: random.Random, below: int) -> Shape:
    """The shape under a manager with `below` people in their organisation."""
    if below <= _TEAM_MAX:
        return [[] for _ in range(below)]
    span = rng.choice(_SPANS)
    direct = rng.choice(_DIRECT_ICS)
    managers = min(span - direct, (below - direct) // _MIN_SUBTREE)
    if managers + direct < 3:
        direct = 3 - managers
    sizes = _partition(rng, below - direct, [1.0] * managers, jitter=True)
    return [_shape(rng, size - 1) for size in sizes] + [[] for _ in range(direct)]


def _partition(rng: random.Random, total: int, weights: list[float], *, jitter: bool) -> list[int]:
    """Split `total` people into subtrees of at least _MIN_SUBTREE, roughly by weight."""
    if jitter:
        weights = [w * (0.7 + 0.6 * rng.random()) for w in weights]
    spare = total - _MIN_SUBTREE * len(weights)
    if spare < 0:
        raise ValueError(f"cannot split {total} people into {len(weights)} teams")
    scale = sum(weights)
    sizes = [_MIN_SUBTREE + int(spare * w / scale) for w in weights]
    for i in range(total - sum(sizes)):
        sizes[i % len(sizes)] += 1
    return sizes


def _flatten(shape: Shape) -> list[Position]:
    """Number the positions breadth-first from the root (the CEO)."""
    positions = [Position(0, None)]
    queue: list[tuple[int, Shape]] = [(0, shape)]
    for parent, children in queue:
        for child_shape in children:
            child = Position(len(positions), parent)
            positions.append(child)
            positions[parent].children.append(child.index)
            queue.append((child.index, child_shape))
    return positions


def _set_heights(positions: list[Position]) -> None:
    """Height 0 for individual contributors, 1 for first-line managers, and so on up."""
    for position in reversed(positions):
        if position.children:
            position.height = 1 + max(positions[c].height for c in position.children)


def _assign_division(
    rng: random.Random,
    positions: list[Position],
    vp: Position,
    division: dict[str, Any],
    departments: dict[str, list[list[str]]],
) -> None:
    """Give a VP's organisation its division; each direct report's subtree gets one job
    family and department, covering every family of the division before repeating."""
    families: dict[str, float] = bank.weights(division["families"])
    vp.division = str(division["name"])
    vp.family = next(iter(families))
    vp.department, vp.ticket_prefix = vp.division, str(division["ticket"])
    chooser = Weighted(families)
    queues: dict[str, list[list[str]]] = {}
    for order, child in enumerate(vp.children):
        family = list(families)[order] if order < len(families) else chooser.pick(rng)
        queue = queues.setdefault(family, [])
        if not queue:
            queue.extend(rng.sample(departments[family], len(departments[family])))
        department, prefix = queue.pop(0)
        _apply_unit(positions, child, vp.division, family, department, prefix)


def _apply_unit(
    positions: list[Position], top: int, division: str, family: str, department: str, prefix: str
) -> None:
    stack = [top]
    while stack:
        position = positions[stack.pop()]
        position.division, position.family = division, family
        position.department, position.ticket_prefix = department, prefix
        stack.extend(position.children)
