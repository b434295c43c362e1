"""Ratings eval: are the synthetic org's harsh and generous managers found, do clean orgs
stay free of false leniency and mismatch flags, and how many rated reports does a manager
need before a one-point offset can be told from noise?

    python -m evals.eval_ratings --seeds 10 --sizes 120 2400

Detection: for each size and seed, the planted org and its clean control
(`generate_org(plant=False)`) are generated and scored with `evals.eval_bias`'s functions
(`score_ratings`: a planted manager counts as found when `manager_leniency` flags it with
the planted direction; a mismatched rating when `mismatched_ratings` lists the person).
A seed finds a pattern when every planted instance is found; instance recall is reported
too. Each planted manager that is not flagged is counted by what the report says about
it: "not enough evidence" (the interval is too wide to tell) or silence (a confident
"within the evidence", the dangerous miss); each planted far-off rating not flagged, by
whether the report lists it as "not enough evidence" (1.5+ points off, inside its
prediction interval) or it lies under 1.5 points from the prediction.

How far off the planted mismatches are: the median and 90th percentile of their |rating -
expected|, the median half-width of their prediction intervals, and the largest ordinary
|rating - expected| of each clean org (nothing planted there): a planted mismatch smaller
than what a fair org of the same size produces on its own cannot be told apart by any
threshold that leaves the clean orgs unflagged. The evidence model's R^2 is reported as
the report prints it (the trimmed fit) and by plain least squares over everyone, with and
without the two features issue 14 added (`ISSUE_14_FEATURES`), the before and after.

Evidence features and the ratings check run once per org (`check_ratings`: one evidence
fit, one mixed model), as the bias report runs them.

Power curve: on each seed's clean org (`--power-people`, default the largest size), a
set of pseudo-managers is made of k randomly drawn rated people each (k = 2..15, one
pseudo-manager per k, taken from their real teams), whose ratings are moved one point,
alternately down and up, only where the scale leaves room, as the generator plants its
offsets. The share of seeds in which `manager_leniency` flags each one with the right
direction is the power at k reports.

Prints a table per part and ends with one JSON line of the figures.
"""

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from evals.eval_bias import OrgFiles, person_ratings, planted_ratings, read_org, score_check
from evals.synthetic_org import generate_org
from service.bias.ratings import (
    MISMATCH_POINTS,
    ManagerLeniency,
    PersonRating,
    RatingsCheck,
    check_ratings,
    fit_evidence_model,
    manager_leniency,
)

PATTERNS = ("harsh_manager", "generous_manager", "mismatched_rating")
POWER_REPORTS = tuple(range(2, 16))
POWER_OFFSET = 1.0
POWER_MIN_PEOPLE = 600  # the pseudo-managers take 119 people out of their teams
TARGET_FOUND = 0.9  # issue 14: harsh and generous managers found in at least 9 of 10 seeds
TARGET_FALSE = 0.1  # and at most 1 of 10 clean seeds with a false leniency or mismatch flag
# what issue 14 added to the evidence features: the R^2 figure without them is the "before"
ISSUE_14_FEATURES = frozenset({"measured_gain", "targets_met_share"})


def not_enough(m: ManagerLeniency) -> bool:
    """The report says it cannot tell (the code before issue 14 had no such state)."""
    return str(m.model_dump().get("verdict", "")) == "not_enough_evidence"


@dataclass(frozen=True)
class Detection:
    """One size, one seed: the planted org's and the clean org's ratings findings."""

    found: dict[str, tuple[int, int]]  # pattern -> (found, planted)
    planted_false: dict[str, int]  # pattern -> flags on anything not planted with it
    clean_false: dict[str, int]  # pattern -> flags on the clean org
    unflagged_not_enough: int  # planted managers not flagged, stated as "not enough"
    unflagged_silent: int  # planted managers not flagged and not stated as undecided
    clean_not_enough: int  # managers of the clean org stated as "not enough"
    clean_managers: int  # managers of the clean org tested
    r_squared: float  # the evidence model's (trimmed fit, as the report prints it)
    r_squared_ols: float  # plain least squares on everyone, all evidence features
    r_squared_ols_before: float  # the same without the features issue 14 added
    mismatch_not_enough: int  # planted mismatches not flagged, listed "not enough evidence"
    mismatch_silent: int  # planted mismatches less than MISMATCH_POINTS from the evidence
    mismatch_residuals: tuple[float, ...]  # |rating - expected| of each planted mismatch
    mismatch_halves: tuple[float, ...]  # prediction interval half-widths of those listed
    clean_largest_residual: float  # the clean org's largest |rating - expected|
    clean_undecided: int  # clean ratings listed "not enough evidence" (none is a mismatch)


def _planted_managers(org: OrgFiles) -> set[int]:
    planted = planted_ratings(org)
    return planted["harsh_manager"] | planted["generous_manager"]


def ols_r_squared(ratings: Sequence[PersonRating], without: frozenset[str] = frozenset()) -> float:
    """R^2 of plain least squares on everyone (no trimming) with the evidence features less
    `without`: the figure to compare features by (the trimmed fit's R^2 leaves out the
    ratings it fits worst)."""
    kept = [
        replace(r, evidence={k: v for k, v in r.evidence.items() if k not in without})
        for r in ratings
    ]
    model, _ = fit_evidence_model(kept, robust=False)
    return model.r_squared


def _adjusted(ratings: Sequence[PersonRating], check: RatingsCheck) -> list[float]:
    """Each rating minus what the evidence predicts and, for a flagged manager's report,
    minus the manager's offset: the residual the single-ratings check judges."""
    offsets = {m.manager_id: m.estimate or 0.0 for m in check.managers if m.flagged}
    return [
        float(res) - (offsets.get(r.manager_id, 0.0) if r.manager_id is not None else 0.0)
        for r, res in zip(ratings, check.residuals, strict=True)
    ]


def detect(seed: int, people: int, folder: Path) -> tuple[Detection, list[PersonRating]]:
    """Score the planted and the clean org of one seed; also returns the clean org's
    ratings for the power curve. Evidence features and the check run once per org."""
    orgs = {}
    for name, plant in (("planted", True), ("clean", False)):
        out = folder / f"seed-{seed}-{people}-{name}"
        generate_org(out, people=people, seed=seed, plant=plant)
        orgs[name] = read_org(out)
        shutil.rmtree(out, ignore_errors=True)
    ratings, _ = person_ratings(orgs["planted"])
    clean_ratings, _ = person_ratings(orgs["clean"])
    check, clean_check = check_ratings(ratings), check_ratings(clean_ratings)
    planted, r_squared, _ = score_check(orgs["planted"], check)
    clean, _, _ = score_check(orgs["clean"], clean_check)
    truth = _planted_managers(orgs["planted"])
    unflagged = [m for m in check.managers if m.manager_id in truth and not m.flagged]
    far = planted_ratings(orgs["planted"])["mismatched_rating"]
    undecided = {m.person_id for m in check.undecided}
    listed = [m for m in (*check.mismatched, *check.undecided) if m.person_id in far]
    off = dict(zip((r.person_id for r in ratings), _adjusted(ratings, check), strict=True))
    residuals = [abs(off[i]) for i in sorted(far)]
    return (
        Detection(
            found={p: (planted[p].found, planted[p].planted) for p in PATTERNS},
            planted_false={p: planted[p].false_flags for p in PATTERNS},
            clean_false={p: clean[p].false_flags for p in PATTERNS},
            unflagged_not_enough=sum(not_enough(m) for m in unflagged),
            unflagged_silent=sum(not not_enough(m) for m in unflagged),
            clean_not_enough=sum(not_enough(m) for m in clean_check.managers),
            clean_managers=len(clean_check.managers),
            r_squared=r_squared,
            r_squared_ols=ols_r_squared(ratings),
            r_squared_ols_before=ols_r_squared(ratings, ISSUE_14_FEATURES),
            mismatch_not_enough=len(far & undecided),
            mismatch_silent=sum(r < MISMATCH_POINTS for r in residuals),
            mismatch_residuals=tuple(residuals),
            mismatch_halves=tuple(
                (m.pi_high - m.pi_low) / 2
                for m in listed
                if m.pi_high is not None and m.pi_low is not None
            ),
            clean_largest_residual=max(
                map(abs, _adjusted(clean_ratings, clean_check)), default=0.0
            ),
            clean_undecided=len(clean_check.undecided),
        ),
        clean_ratings,
    )


def summarise(people: int, runs: Sequence[Detection]) -> dict[str, float | int]:
    n = len(runs)
    out: dict[str, float | int] = {f"{people}.seeds": n}
    for p in PATTERNS:
        found = sum(r.found[p][0] for r in runs)
        total = sum(r.found[p][1] for r in runs)
        out[f"{people}.{p}.seeds_found"] = sum(r.found[p][0] == r.found[p][1] for r in runs)
        out[f"{people}.{p}.instance_recall"] = round(found / total, 3) if total else 0.0
        out[f"{people}.{p}.planted"] = total
        out[f"{people}.{p}.planted_org_false_flags"] = sum(r.planted_false[p] for r in runs)
        out[f"{people}.{p}.clean_seeds_flagged"] = sum(r.clean_false[p] > 0 for r in runs)
        out[f"{people}.{p}.clean_false_flags"] = sum(r.clean_false[p] for r in runs)
    out[f"{people}.clean_seeds_any_false_flag"] = sum(
        any(r.clean_false[p] > 0 for p in PATTERNS) for r in runs
    )
    out[f"{people}.planted_managers_unflagged_not_enough"] = sum(
        r.unflagged_not_enough for r in runs
    )
    out[f"{people}.planted_managers_unflagged_silent"] = sum(r.unflagged_silent for r in runs)
    out[f"{people}.clean_managers_not_enough_share"] = round(
        sum(r.clean_not_enough for r in runs) / max(1, sum(r.clean_managers for r in runs)), 3
    )
    out[f"{people}.evidence_r2_mean"] = round(sum(r.r_squared for r in runs) / max(n, 1), 3)
    out[f"{people}.evidence_r2_ols_mean"] = _mean([r.r_squared_ols for r in runs])
    out[f"{people}.evidence_r2_ols_before_issue14_features_mean"] = _mean(
        [r.r_squared_ols_before for r in runs]
    )
    out[f"{people}.mismatch_unflagged_not_enough"] = sum(r.mismatch_not_enough for r in runs)
    out[f"{people}.mismatch_unflagged_silent"] = sum(r.mismatch_silent for r in runs)
    residuals = np.asarray([x for r in runs for x in r.mismatch_residuals])
    halves = [x for r in runs for x in r.mismatch_halves]
    largest = [r.clean_largest_residual for r in runs]
    out[f"{people}.mismatch_planted_abs_residual_median"] = _quantile(residuals, 0.5)
    out[f"{people}.mismatch_planted_abs_residual_p90"] = _quantile(residuals, 0.9)
    out[f"{people}.mismatch_interval_half_width_median"] = _quantile(np.asarray(halves), 0.5)
    out[f"{people}.clean_largest_abs_residual_median"] = _quantile(np.asarray(largest), 0.5)
    out[f"{people}.clean_largest_abs_residual_min"] = round(min(largest, default=0.0), 3)
    out[f"{people}.mismatch_planted_share_above_clean_largest_min"] = round(
        float((residuals > min(largest, default=0.0)).mean()) if residuals.size else 0.0, 3
    )
    out[f"{people}.clean_undecided_ratings_mean"] = _mean([float(r.clean_undecided) for r in runs])
    return out


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 3) if values else 0.0


def _quantile(values: npt.NDArray[np.float64], q: float) -> float:
    return round(float(np.quantile(values, q)), 3) if values.size else 0.0


# ---------------------------------------------------------------- power curve


def plant_pseudo_managers(
    ratings: Sequence[PersonRating], seed: int
) -> tuple[list[PersonRating], dict[int, tuple[int, str]]]:
    """The org with one pseudo-manager per k in POWER_REPORTS: k rated people drawn at
    random, moved to a new manager id, their ratings moved one point (down for even k,
    up for odd k) where the 1..5 scale leaves room. Returns the ratings and, per
    pseudo-manager id, (k, direction)."""
    rng = random.Random(seed)
    out = list(ratings)
    taken: set[int] = set()
    truth: dict[int, tuple[int, str]] = {}
    first_id = max((r.person_id for r in ratings), default=0) + 10_000
    for offset, k in enumerate(POWER_REPORTS):
        direction = "harsh" if k % 2 == 0 else "generous"
        step = -POWER_OFFSET if direction == "harsh" else POWER_OFFSET
        room = [
            i
            for i, r in enumerate(out)
            if i not in taken and 1.0 <= r.rating + step <= 5.0 and r.manager_id is not None
        ]
        chosen = rng.sample(room, k)
        taken.update(chosen)
        manager = first_id + offset
        for i in chosen:
            out[i] = replace(out[i], manager_id=manager, rating=out[i].rating + step)
        truth[manager] = (k, direction)
    return out, truth


def power_curve(clean_orgs: Sequence[list[PersonRating]]) -> dict[int, tuple[int, int, int]]:
    """k -> (seeds flagged with the right direction, seeds stated 'not enough', seeds)."""
    found = dict.fromkeys(POWER_REPORTS, 0)
    undecided = dict.fromkeys(POWER_REPORTS, 0)
    for seed, ratings in enumerate(clean_orgs, start=1):
        planted, truth = plant_pseudo_managers(ratings, seed)
        for m in manager_leniency(planted):
            if m.manager_id not in truth:
                continue
            k, direction = truth[m.manager_id]
            found[k] += m.flagged and m.direction == direction
            undecided[k] += not_enough(m)
    return {k: (found[k], undecided[k], len(clean_orgs)) for k in POWER_REPORTS}


# ---------------------------------------------------------------- output


def print_detection(console: Console, people: int, figures: dict[str, float | int]) -> None:
    n = figures[f"{people}.seeds"]
    table = Table(title=f"ratings eval: {n} seeds x (planted org, clean org), {people} people")
    table.add_column("pattern", no_wrap=True)
    for column in (
        f"seeds found (of {n})",
        "instance recall",
        "false flags, planted orgs",
        f"clean seeds with a false flag (of {n})",
        "false flags, clean orgs",
    ):
        table.add_column(column, justify="right")
    for p in PATTERNS:
        table.add_row(
            p,
            str(figures[f"{people}.{p}.seeds_found"]),
            f"{figures[f'{people}.{p}.instance_recall']:.3f} of {figures[f'{people}.{p}.planted']}",
            str(figures[f"{people}.{p}.planted_org_false_flags"]),
            str(figures[f"{people}.{p}.clean_seeds_flagged"]),
            str(figures[f"{people}.{p}.clean_false_flags"]),
        )
    f = {k.removeprefix(f"{people}."): v for k, v in figures.items()}
    table.caption = (
        f"clean seeds with any false leniency or mismatch flag: "
        f"{f['clean_seeds_any_false_flag']}; planted managers not flagged: "
        f"{f['planted_managers_unflagged_not_enough']} stated 'not enough evidence', "
        f"{f['planted_managers_unflagged_silent']} silent; planted mismatches not flagged: "
        f"{f['mismatch_unflagged_not_enough']} listed 'not enough evidence', "
        f"{f['mismatch_unflagged_silent']} under {MISMATCH_POINTS} points off; evidence R^2 "
        f"{f['evidence_r2_mean']} (trimmed fit), plain least squares "
        f"{f['evidence_r2_ols_mean']} (without the issue 14 features "
        f"{f['evidence_r2_ols_before_issue14_features_mean']})"
    )
    console.print(table)
    console.print(
        f"how far off the planted mismatches are ({people} people): |rating - expected| "
        f"median {f['mismatch_planted_abs_residual_median']}, 90th percentile "
        f"{f['mismatch_planted_abs_residual_p90']}; prediction interval half-width median "
        f"{f['mismatch_interval_half_width_median']}; the clean org's largest ordinary "
        f"|rating - expected|: median {f['clean_largest_abs_residual_median']}, smallest "
        f"{f['clean_largest_abs_residual_min']} (share of planted mismatches beyond that "
        f"smallest: {f['mismatch_planted_share_above_clean_largest_min']}); clean ratings "
        f"listed 'not enough evidence' per org: {f['clean_undecided_ratings_mean']}",
        soft_wrap=True,
    )


def print_power(console: Console, curve: dict[int, tuple[int, int, int]], people: int) -> None:
    table = Table(
        title=f"power: a {POWER_OFFSET:.0f}-point offset by rated reports ({people} people)"
    )
    for column in ("rated reports", "flagged, right direction", "'not enough evidence'", "seeds"):
        table.add_column(column, justify="right")
    for k, (found, undecided, seeds) in curve.items():
        table.add_row(str(k), f"{found / seeds:.0%}", f"{undecided / seeds:.0%}", str(seeds))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N (default 10)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[120, 2400])
    parser.add_argument("--power-people", type=int, default=None)
    args = parser.parse_args(argv)
    power_people = args.power_people or max(args.sizes)
    if args.seeds < 1 or any(s < 20 for s in args.sizes):
        parser.error("--seeds must be at least 1 and every size at least 20 people")
    if power_people < POWER_MIN_PEOPLE:
        parser.error(f"--power-people must be at least {POWER_MIN_PEOPLE} (room for the teams)")
    console = Console(width=None if sys.stdout.isatty() else 160)
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="fairdraft-eval-ratings-"))
    figures: dict[str, float | int] = {"first_seed": 1}
    clean_orgs: list[list[PersonRating]] = []
    try:
        for people in sorted(set(args.sizes) | {power_people}):
            runs = []
            for seed in range(1, args.seeds + 1):
                run, clean = detect(seed, people, folder)
                runs.append(run)
                if people == power_people:
                    clean_orgs.append(clean)
            if people in args.sizes:
                figures |= summarise(people, runs)
                print_detection(console, people, figures)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    curve = power_curve(clean_orgs)
    print_power(console, curve, power_people)
    for k, (found, undecided, seeds) in curve.items():
        figures[f"power.{k}_reports"] = round(found / seeds, 3)
        figures[f"power.{k}_reports_not_enough"] = round(undecided / seeds, 3)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    console.print(json.dumps(figures), soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
