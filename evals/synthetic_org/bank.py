"""The phrase banks, name lists and vocabularies under `data/`, loaded once per process.

Text lives in JSON data files rather than in code so that writers can extend it without
touching the generator, and so that every bank can say where it came from (`_source`).
"""

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).with_name("data")
BANKS = (
    "bias",
    "feedback",
    "goals",
    "names",
    "one_on_ones",
    "org",
    "recognition",
    "self_notes",
    "vocab",
    "work_records",
)


@functools.cache
def load(name: str) -> dict[str, Any]:
    """One bank as parsed JSON; refuses a bank that does not say where it comes from."""
    path = DATA_DIR / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("_source"), str):
        raise ValueError(f"{path}: a bank must be a JSON object with a '_source' string")
    return data


def texts(value: Any) -> tuple[str, ...]:
    """A list of strings from a bank, checked, as a tuple (cheap to index, immutable)."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of strings, got {value!r:.80}")
    return tuple(value)


def weights(value: Any) -> dict[str, float]:
    """A {name: weight} mapping from a bank, checked."""
    if not isinstance(value, dict):
        raise ValueError(f"expected an object of weights, got {value!r:.80}")
    return {str(key): float(weight) for key, weight in value.items()}


def all_strings(value: Any) -> list[str]:
    """Every string inside a bank, in document order (used to check template slots)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [
            text for key, item in value.items() if key != "_source" for text in all_strings(item)
        ]
    if isinstance(value, Sequence):
        return [text for item in value for text in all_strings(item)]
    return []
