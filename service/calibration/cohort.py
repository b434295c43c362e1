"""What a calibration panel sees: its cohort side by side, and where to start the talk.

One row per person of the cohort: their comparable-evidence summary (the current text of
their "calibration_summary" draft for the cycle), the proposed and calibrated rating,
whether it is final, their 9-box placement, and what the evidence predicts. For the
cohort: the distribution of proposed and calibrated ratings, how the managers of the cohort
rate against the evidence (over the whole cycle, as the bias report sees them), and the
disagreements to discuss first.

Pseudonymised (the default for panels), a person appears by label only: no id, no name,
the manager by label too, and the names, emails, employee ids and pronoun sets of anyone
in the summaries replaced (service.calibration.redaction). Nothing demographic is read
here at all; the demographic analyses stay in the bias report, which only HR reads. The
view costs a fixed number of queries, whatever the cohort's size.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from domain.kinds import DraftKind
from domain.periods import PeriodError
from service.bias.ratings import ManagerLeniency, PersonRating, check_ratings
from service.bias.report import rated_people
from service.calibration.panels import (
    CohortPerson,
    PanelNotFound,
    PanelView,
    cohort_people,
    panel,
    placements,
)
from service.calibration.pseudonyms import identities, pseudonyms
from service.calibration.redaction import Redactor
from service.cycles.store import DEFAULT_SCALE, cycle_scale
from service.db.models import Draft, DraftVersion, Person
from service.drafting.structure import DraftBody
from service.ratings.workflow import RatingView, cycle_ratings

SUMMARY_KIND = DraftKind.CALIBRATION_SUMMARY.value
# how a manager's leniency verdict (service.bias.ratings.Verdict) is said on the pages
VERDICT_WORDS = {
    "harsh": "flagged, rates below the evidence",
    "generous": "flagged, rates above the evidence",
    "within": "within half a step of the evidence",
    "not_enough_evidence": "not enough rated reports to tell",
}
DISAGREEMENT_POINTS = 1.0  # a proposal a full rating step from the evidence is worth a talk
_EPSILON = 1e-9


@dataclass(frozen=True)
class NineBox:
    performance: int  # 1 (low) to 3
    potential: int  # 1 (low) to 3


@dataclass(frozen=True)
class CohortRow:
    label: str  # pseudonym, or the name when not pseudonymised
    person_id: int | None  # None when pseudonymised
    manager_label: str | None  # the HRIS manager, labelled like the person
    manager_id: int | None  # None when pseudonymised
    summary: str | None  # the calibration summary's current text; None when not drafted
    proposed: int | None  # the manager's proposal (else the latest by anyone)
    calibrated: int | None
    final: bool  # every rating of the person in the cycle is finalised
    placement: NineBox | None
    predicted: float | None  # what the evidence predicts (None: not rated, or no evidence)


@dataclass(frozen=True)
class Distribution:
    scale: tuple[int, int]
    proposed: dict[int, int]  # scale value -> people with that proposal
    calibrated: dict[int, int]  # after calibration (not yet calibrated: at the proposal)
    rated: int  # people with a proposal
    calibrated_people: int  # people the panel has calibrated


@dataclass(frozen=True)
class ManagerRow:
    label: str  # pseudonym, or the name when not pseudonymised
    manager_id: int | None  # None when pseudonymised
    n: int  # the manager's rated reports in the whole cycle
    mean_residual: float  # mean of (rating - evidence-predicted), clipped at 1 point
    direction: str  # "harsh" or "generous"
    flagged: bool  # the mixed model's 95% interval excludes zero and managers differ at all
    # issue 14: the shrunken estimate, its 95% interval, and "not_enough_evidence" where
    # too few rated reports tell (None from reports stored before it)
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    verdict: str | None = None

    @classmethod
    def of(cls, found: ManagerLeniency, *, label: str, manager_id: int | None) -> "ManagerRow":
        """A manager's leniency as the panel's and the HR page's tables and charts show
        it, by the label (and id, where shown) the page gives them."""
        return cls(
            label=label,
            manager_id=manager_id,
            n=found.n,
            mean_residual=round(found.mean_residual, 2),
            direction=found.direction,
            flagged=found.flagged,
            estimate=None if found.estimate is None else round(found.estimate, 2),
            ci_low=None if found.ci_low is None else round(found.ci_low, 2),
            ci_high=None if found.ci_high is None else round(found.ci_high, 2),
            verdict=found.verdict,
        )

    def said(self) -> str:
        """What the report says of the manager in words, with the shrunken estimate and its
        95% interval where the row has them (empty for rows stored before issue 14)."""
        if self.estimate is None or self.ci_low is None or self.ci_high is None:
            return ""
        numbers = (
            f"{self.estimate:+.2f} points (95% interval {self.ci_low:+.2f} to {self.ci_high:+.2f})"
        )
        return f"{VERDICT_WORDS.get(self.verdict or '', 'estimate')}: {numbers}"


@dataclass(frozen=True)
class Disagreement:
    label: str
    person_id: int | None  # None when pseudonymised
    proposed: int
    predicted: float | None
    calibrated: int | None
    evidence_gap: float | None  # proposed - predicted
    calibration_change: int | None  # calibrated - proposed
    size: float  # the larger of the two, in rating points


@dataclass(frozen=True)
class CohortView:
    panel: PanelView
    pseudonymised: bool
    rows: tuple[CohortRow, ...]  # by label when pseudonymised (an order that reveals nothing)
    distribution: Distribution
    managers: tuple[ManagerRow, ...]  # flagged first, then by the size of the offset
    disagreements: tuple[Disagreement, ...]  # largest first
    evidence_r_squared: float | None  # how much of the cycle's ratings the evidence explains
    evidence_n: int  # ratings the evidence model was fitted on


@dataclass(frozen=True)
class _Evidence:
    predicted: dict[int, float]
    managers: list[ManagerRow]
    r_squared: float | None
    n: int


def cohort_view(connection: Connection, panel_id: int, *, pseudonymise: bool) -> CohortView:
    """Everything the panel looks at, in a fixed number of queries."""
    found = panel(connection, panel_id)
    if found is None:
        raise PanelNotFound(f"no calibration panel {panel_id}")
    people = cohort_people(connection, found)
    ids = [p.id for p in people]
    scale = cycle_scale(connection, found.cycle)
    low_high = (scale.low, scale.high) if scale else DEFAULT_SCALE
    ratings: dict[int, list[RatingView]] = {}
    for r in cycle_ratings(connection, found.cycle, ids):
        ratings.setdefault(r.person_id, []).append(r)
    cycle_people = _rated_people(connection, found.cycle)
    raters = {r.rater_id for rs in ratings.values() for r in rs}
    managers = {p.manager_id for p in people if p.manager_id is not None} | raters
    labels = pseudonyms(found, set(ids) | managers) if pseudonymise else {}
    names = {} if pseudonymise else _names(connection, managers)
    labeller = _Labeller(pseudonymise, labels, names)
    evidence = _evidence(cycle_people, raters, labeller)
    # Anyone the company knows may be named in a summary: all of them are taken out.
    redactor = Redactor(identities(connection), labels) if pseudonymise else None
    summaries = _summaries(connection, found.cycle, ids, redactor)
    grid = {
        p.person_id: NineBox(p.performance, p.potential) for p in placements(connection, found.id)
    }
    rows = [
        _row(p, ratings.get(p.id, []), summaries, grid, evidence.predicted, labeller)
        for p in people
    ]
    rows.sort(key=lambda row: (row.label.casefold(), row.label))
    return CohortView(
        panel=found,
        pseudonymised=pseudonymise,
        rows=tuple(rows),
        distribution=_distribution(rows, low_high),
        managers=tuple(evidence.managers),
        disagreements=tuple(_disagreements(rows)),
        evidence_r_squared=evidence.r_squared,
        evidence_n=evidence.n,
    )


class _Labeller:
    """How a person is named on this page: a pseudonym, or their name and id."""

    def __init__(self, pseudonymise: bool, labels: Mapping[int, str], names: Mapping[int, str]):
        self.pseudonymise = pseudonymise
        self._labels = labels
        self._names = names

    def label(self, person_id: int) -> str:
        if self.pseudonymise:
            return self._labels[person_id]
        return self._names.get(person_id, f"person {person_id}")

    def shown_id(self, person_id: int) -> int | None:
        return None if self.pseudonymise else person_id


def _row(
    person: CohortPerson,
    ratings: Sequence[RatingView],
    summaries: Mapping[int, str],
    grid: Mapping[int, NineBox],
    predicted: Mapping[int, float],
    labeller: _Labeller,
) -> CohortRow:
    proposal = _proposal(ratings, person.manager_id)
    manager = person.manager_id
    return CohortRow(
        label=labeller.label(person.id) if labeller.pseudonymise else person.name,
        person_id=labeller.shown_id(person.id),
        manager_label=None if manager is None else labeller.label(manager),
        manager_id=None if manager is None else labeller.shown_id(manager),
        summary=summaries.get(person.id),
        proposed=None if proposal is None else proposal.rating,
        calibrated=None if proposal is None else proposal.calibrated_rating,
        final=bool(ratings) and all(r.final for r in ratings),
        placement=grid.get(person.id),
        predicted=predicted.get(person.id) if ratings else None,
    )


def _proposal(ratings: Sequence[RatingView], manager_id: int | None) -> RatingView | None:
    """The one proposal a panel talks about: the manager's, or else the latest one (a
    person who changed manager mid-cycle may be rated by the former one)."""
    own = [r for r in ratings if r.rater_id == manager_id]
    if own:
        return own[0]
    return max(ratings, key=lambda r: (r.updated_at, r.rater_id), default=None)


def _rated_people(connection: Connection, cycle: str) -> list[PersonRating]:
    """The whole cycle's ratings with their evidence (empty when the cycle has no dates
    to take records from)."""
    try:
        return rated_people(connection, cycle)
    except PeriodError:
        return []


def _evidence(
    cycle_people: Sequence[PersonRating], managers: set[int], labeller: _Labeller
) -> _Evidence:
    """Predictions from the evidence model over the whole cycle, as the bias report fits
    it, and the leniency of the cohort's raters. A rating's residual is rating - predicted,
    so the prediction is read back from the residual rather than refitted here."""
    if not cycle_people:
        return _Evidence({}, [], None, 0)
    checked = check_ratings(cycle_people)  # one evidence fit and one mixed model, as the report
    predicted = {
        r.person_id: round(r.rating - float(res), 2)
        for r, res in zip(cycle_people, checked.residuals, strict=True)
    }
    rows = [
        ManagerRow.of(
            m, label=labeller.label(m.manager_id), manager_id=labeller.shown_id(m.manager_id)
        )
        for m in checked.managers
        if m.manager_id in managers
    ]
    return _Evidence(predicted, rows, checked.model.r_squared, checked.model.n)


def _names(connection: Connection, ids: set[int]) -> dict[int, str]:
    """Names of the given people, for a view that shows names."""
    query = select(Person.id, Person.name).where(Person.id.in_(ids))
    return {row.id: row.name for row in connection.execute(query)}


def _summaries(
    connection: Connection, cycle: str, ids: Sequence[int], redactor: Redactor | None
) -> dict[int, str]:
    """Each person's calibration summary for the cycle, as the current version reads
    (an edit by a manager included), with everyone in it replaced when pseudonymised.
    The whole text is redacted at once, so a name split over two lines is still seen;
    its citation groups ("[E1, E3]") are left as they are."""
    rows = connection.execute(
        select(Draft.subject_id, DraftVersion.body)
        .join(
            DraftVersion,
            (DraftVersion.draft_id == Draft.id) & (DraftVersion.version == Draft.current_version),
        )
        .where(Draft.kind == SUMMARY_KIND, Draft.period == cycle, Draft.subject_id.in_(ids))
    )
    out = {}
    for row in rows:
        text = DraftBody.model_validate(row.body).as_text()
        out[row.subject_id] = redactor.redact(text, row.subject_id) if redactor else text
    return out


def _distribution(rows: Sequence[CohortRow], scale: tuple[int, int]) -> Distribution:
    """Counts per scale value; a person not yet calibrated counts at their proposal, so
    both distributions hold the same people."""
    proposed = Counter(r.proposed for r in rows if r.proposed is not None)
    calibrated = Counter(
        r.calibrated if r.calibrated is not None else r.proposed
        for r in rows
        if r.proposed is not None
    )
    values = range(scale[0], scale[1] + 1)
    return Distribution(
        scale=scale,
        proposed=_counts(proposed, values),
        calibrated=_counts(calibrated, values),
        rated=sum(proposed.values()),
        calibrated_people=sum(r.calibrated is not None for r in rows),
    )


def _counts(counter: Counter[int], values: range) -> dict[int, int]:
    """Every scale value, zero included; a value off the scale (the scale changed after
    it was given) is kept rather than hidden."""
    counts = {v: counter.get(v, 0) for v in values}
    counts.update({k: n for k, n in counter.items() if k not in counts})
    return dict(sorted(counts.items()))


def _disagreements(rows: Sequence[CohortRow]) -> list[Disagreement]:
    """Proposals a full step from the evidence, and ratings the panel moved, largest
    first: where the panel's time is best spent."""
    out = []
    for row in rows:
        if row.proposed is None:
            continue
        gap = None if row.predicted is None else round(row.proposed - row.predicted, 2)
        change = None if row.calibrated is None else row.calibrated - row.proposed
        size = max(abs(gap or 0.0), abs(change or 0))
        if (gap is not None and abs(gap) >= DISAGREEMENT_POINTS - _EPSILON) or change:
            out.append(
                Disagreement(
                    label=row.label,
                    person_id=row.person_id,
                    proposed=row.proposed,
                    predicted=row.predicted,
                    calibrated=row.calibrated,
                    evidence_gap=gap,
                    calibration_change=change,
                    size=float(size),
                )
            )
    return sorted(out, key=lambda d: (-d.size, d.label))
