"""Filling templates: the slot values a template may use, drawn lazily so a record only
spends random numbers on the slots its templates actually mention.

A template is a `str.format` string such as "Cut {metric} from {baseline} to {achieved}".
Values that belong to the person or the workstream are set up front; the rest (a
colleague's name, a small number, a ticket key) are drawn on first use and then kept, so
a slot used twice in one record says the same thing twice.
"""

import bisect
import itertools
import random
import re
from collections.abc import Callable, Mapping, Sequence

PRONOUNS: dict[str, dict[str, str]] = {
    "she": {"sub": "she", "obj": "her", "pos": "her", "was": "was", "has": "has", "is": "is"},
    "he": {"sub": "he", "obj": "him", "pos": "his", "was": "was", "has": "has", "is": "is"},
    "they": {
        "sub": "they",
        "obj": "them",
        "pos": "their",
        "was": "were",
        "has": "have",
        "is": "are",
    },
}
for _forms in PRONOUNS.values():
    _forms["Sub"] = _forms["sub"].capitalize()
    _forms["Pos"] = _forms["pos"].capitalize()

_NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", "nine")
_WEEK_WORDS = ("two", "three", "four", "five", "six")
_PERCENTS = ("5", "10", "15", "20", "25", "30", "40")


class Slots(dict[str, str]):
    """Values for one record's templates; unknown keys are drawn on first use or refused."""

    def __init__(
        self,
        rng: random.Random,
        pools: Mapping[str, Sequence[str]],
        ticket: Callable[[], str],
        *sources: Mapping[str, str],
    ) -> None:
        super().__init__()
        for source in sources:
            self.update(source)
        self.rng = rng
        self.pools = pools
        self.ticket = ticket

    def __missing__(self, key: str) -> str:
        maker = _LAZY.get(key)
        if maker is None:
            raise KeyError(key)
        value = maker(self)
        if key not in _FRESH:  # a name or ticket stays the same within a record
            self[key] = value
        return value

    def pick(self, pool: str) -> str:
        options = self.pools[pool]
        return options[int(self.rng.random() * len(options))]

    def pick_other(self, pool: str, avoid: str) -> str:
        """A pool member other than `avoid` (a second colleague, say), if there is one."""
        options = [option for option in self.pools[pool] if option != avoid]
        return options[int(self.rng.random() * len(options))] if options else avoid


_LAZY: dict[str, Callable[[Slots], str]] = {
    "colleague": lambda s: s.pick("colleagues"),
    "colleague2": lambda s: s.pick_other("colleagues", s["colleague"]),
    "partner_team": lambda s: s.pick("partner_teams"),
    "skill": lambda s: s.pick("skills"),
    "artifact2": lambda s: s.pick_other("artifacts", s["artifact"]),
    "customer": lambda s: s.pick("customers"),
    "author_team": lambda s: s.pick("partner_teams"),
    "ticket": lambda s: s.ticket(),
    "n_small": lambda s: str(s.rng.randint(2, 9)),
    "n_word": lambda s: _NUMBER_WORDS[s.rng.randrange(len(_NUMBER_WORDS))],
    "n_mid": lambda s: str(s.rng.randint(10, 60)),
    "n_big": lambda s: str(s.rng.randint(80, 400)),
    "minutes": lambda s: str(s.rng.randint(8, 55)),
    "hours": lambda s: str(s.rng.randint(2, 12)),
    "days": lambda s: str(s.rng.randint(2, 9)),
    "weeks": lambda s: _WEEK_WORDS[s.rng.randrange(len(_WEEK_WORDS))],
    "pct": lambda s: _PERCENTS[s.rng.randrange(len(_PERCENTS))],
}

# Numbers are drawn afresh at every use: one record should not say "7" six times.
_FRESH = frozenset(
    {"n_small", "n_word", "n_mid", "n_big", "minutes", "hours", "days", "weeks", "pct"}
)

PERSON_SLOTS = frozenset(
    {"name", "full_name", "level", "next_level", "team", "manager", *PRONOUNS["they"]}
)
WORKSTREAM_SLOTS = frozenset(
    {
        "project",
        "project_desc",
        "system",
        "surface",
        "metric",
        "baseline",
        "target",
        "achieved",
        "interim",
        "improved",
        "Improved",
        "improve",
        "Improve",
        "pct_change",
        "deliverable",
        "Deliverable",
        "artifact",
        "Artifact",
        "due",
    }
)
DATE_SLOTS = frozenset(
    {"month", "prev_month", "next_month", "date", "weekday", "quarter", "next_quarter", "half"}
)
EXTRA_SLOTS = frozenset({"prev_action"})
KNOWN_SLOTS = PERSON_SLOTS | WORKSTREAM_SLOTS | DATE_SLOTS | EXTRA_SLOTS | frozenset(_LAZY)


def fill(template: str, slots: Slots) -> str:
    """A filled sentence, its first letter upper case (a slot such as a metric name may
    open the sentence)."""
    text = _SENTENCE_START.sub(_upper, template.format_map(slots))
    return text[:1].upper() + text[1:]


_SENTENCE_START = re.compile(r"(?<=[.!?] )[a-z]")


def _upper(match: re.Match[str]) -> str:
    return match.group().upper()


def fill_clause(template: str, slots: Slots) -> str:
    """A filled fragment that continues a sentence, left as written."""
    return template.format_map(slots)


def capitalize(text: str) -> str:
    """First letter upper case, the rest untouched (unlike str.capitalize)."""
    return text[:1].upper() + text[1:]


class Weighted:
    """A weighted choice with its cumulative weights computed once (it is drawn often)."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.keys = tuple(weights)
        self.cumulative = tuple(itertools.accumulate(weights.values()))
        if not self.keys or self.cumulative[-1] <= 0:
            raise ValueError("a weighted choice needs at least one positive weight")

    def pick(self, rng: random.Random) -> str:
        point = rng.random() * self.cumulative[-1]
        return self.keys[min(bisect.bisect_right(self.cumulative, point), len(self.keys) - 1)]


def format_value(value: float, unit: str, decimals: int) -> str:
    """A metric value as people write it: "840 ms", "3.1%", "$1.2M", "4.2/5"."""
    if unit == "usd":
        return _money(value)
    number = f"{value:,.{decimals}f}"
    if unit == "pct":
        return f"{number}%"
    if unit == "ms":
        return f"{number} ms"
    if unit == "x":
        return f"{number}x"
    if unit == "per5":
        return f"{number}/5"
    if unit in ("score", "points", "count"):
        return number
    words = {"s": "second", "min": "minute", "hours": "hour", "days": "day"}
    word = words[unit]
    return f"{number} {word}" if number == "1" else f"{number} {word}s"


def _money(value: float) -> str:
    if value >= 1_000_000:
        return f"${value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"${value / 1000:.0f}K"
    if value >= 1000:
        return f"${value / 1000:.1f}K"
    return f"${value:.0f}"


def word_count(text: str) -> int:
    return len(text.split())
