"""The objects the generator passes between its steps: people, their workstreams, records
and ratings. Plain dataclasses; the writer turns them into the ingest formats."""

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass
class Workstream:
    """One piece of a person's year (a project slice with one metric), so that the same
    project, numbers and outcome recur across work records, 1:1s, feedback and goals."""

    codename: str
    start: date
    end: date
    tier: str  # "strong" | "solid" | "weak": how the outcome turns out
    baseline: float
    target: float
    achieved: float
    slots: dict[str, str]  # project, metric, baseline, achieved, ... as text


@dataclass
class Person:
    index: int
    employee_id: str
    first: str
    last: str
    email: str
    manager: int | None
    reports: list[int]
    height: int  # 0 for an individual contributor, 1 for a first-line manager, ...
    level: str
    family: str
    department: str
    ticket_prefix: str
    location: str
    hire_date: date
    gender: str
    ethnicity: str
    age_band: str
    pronoun: str  # "she" | "he" | "they": how colleagues refer to the person
    true_performance: float
    potential: float
    strengths: tuple[str, ...]
    growth: tuple[str, ...]
    note_style: str  # how this person writes 1:1 notes as a manager
    workstreams: list[Workstream] = field(default_factory=list)
    circle: list[int] = field(default_factory=list)  # people they work with most

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def fair_rating(self) -> int:
        """The rating the evidence supports: true performance rounded half up."""
        return max(1, min(5, int(self.true_performance + 0.5)))


@dataclass
class Record:
    source: str
    external_id: str
    kind: str
    subject: str  # employee_id, whatever subject_ref says
    subject_ref: str  # what the file says: the employee_id or, sometimes, the email
    author: str | None
    occurred_at: datetime
    title: str | None
    body: str
    metadata: dict[str, str | int]
    impact: float = 0.0  # how much the record shows of the person's results (labels only)
    theme: str | None = None  # feedback theme carried by the record (labels only)


@dataclass(frozen=True)
class Rating:
    cycle: str
    employee_id: str
    rater_id: str
    rating: int
    calibrated_rating: int | None
