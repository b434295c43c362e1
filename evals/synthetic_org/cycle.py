"""The synthetic org's review cycle in progress: a set-up of 2026-H2 in the format
`fairdraft cycle create --setup` reads (service/cycles/setup.py read_setup_file), with its
phases dated from `opens` on, so that on the days after it some phases are under way, one is
due and the rest are still to come.

Written beside people.csv as cycle.toml (the ingest reads only its own files). The default
opening day is fixed, so the same arguments give the same file on any day; pass another one
(`--cycle-opens`) to move the cycle to today.
"""

from datetime import date, timedelta
from pathlib import Path

from evals.synthetic_org.dates import YEAR_END

CYCLE = "2026-H2"
DEFAULT_OPENS = YEAR_END + timedelta(days=3)  # the Monday after the org's last records
LABELS = ("Below expectations", "Partially meets", "Meets", "Exceeds", "Exceptional")
REVIEWS = (
    "self_reflection",
    "peer_feedback",
    "upward_feedback",
    "manager_feedback",
    "promotion_packet",
    "calibration",
)
# Each phase's (opens, due) in days from the cycle's opening day.
PHASE_DAYS = {
    "self_reflection": (0, 11),
    "peer_feedback": (7, 18),
    "manager_review": (14, 32),
    "calibration": (35, 46),
    "release": (49, 51),
    "sign_off": (51, 60),
}


def cycle_toml(opens: date = DEFAULT_OPENS) -> str:
    """The set-up's TOML text: everyone hired by the cycle's first day takes part."""
    phases = "\n".join(
        f"{name:<15} = {{ opens = {opens + timedelta(days=o)}, due = {opens + timedelta(days=d)} }}"
        for name, (o, d) in PHASE_DAYS.items()
    )
    reviews = ", ".join(f'"{r}"' for r in REVIEWS)
    labels = ", ".join(f'"{label}"' for label in LABELS)
    return (
        "# The synthetic org's review cycle (evals/synthetic_org/cycle.py), for\n"
        f"# `fairdraft cycle create --period {CYCLE} --setup cycle.toml`.\n"
        f'title = "{CYCLE} performance review"\n'
        'time_zone = "Europe/Berlin"\n'
        f"reviews = [{reviews}]\n\n"
        "[participants]\n"
        f"cutoff = {opens}\n\n"
        "[scale]\n"
        "min = 1\nmax = 5\n"
        f"labels = [{labels}]\n\n"
        "[phases]\n"
        f"{phases}\n"
    )


def write_cycle(path: Path, opens: date = DEFAULT_OPENS) -> None:
    path.write_text(cycle_toml(opens), encoding="utf-8")
