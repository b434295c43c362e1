"""Measured outcomes in evidence text: "failed retries dropped from 4.1% to 1.3%".

A review stands on results, and results are stated with measures. The queries of a draft
kind find text *about* accomplishments by meaning; this signal finds text that *states* one,
so a routine status update that talks about shipping does not outrank the launch readout
with its numbers. The patterns are data (`data/outcome_patterns.json`), with their source.
"""

import json
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

PATTERNS_FILE = Path(__file__).parent / "data" / "outcome_patterns.json"
# Counts are stored per chunk at ingest (chunks.outcomes, a smallint); ranking caps them at
# 3 anyway. A change to the patterns needs a migration that sets chunks.outcomes to NULL
# (searches then count those chunks' text again, as they did before 0011).
MAX_OUTCOMES = 1000


@cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    """Written in lower case and matched against lowered text: about 30% faster than
    IGNORECASE in Python's re, with the same matches."""
    data = json.loads(PATTERNS_FILE.read_text())
    return tuple(re.compile(p) for p in data["patterns"])


def outcome_count(text: str) -> int:
    """How many measured outcomes the text states (matches of all patterns)."""
    lowered = text.lower()
    return sum(len(pattern.findall(lowered)) for pattern in _patterns())


def outcome_scores(
    texts: Sequence[str], stored: Sequence[int | None] | None = None
) -> npt.NDArray[np.float64]:
    """Each text's count: the one stored at ingest where there is one (`stored`, aligned
    with `texts`), else counted now."""
    counts = stored or [None] * len(texts)
    return np.array(
        [outcome_count(t) if c is None else c for t, c in zip(texts, counts, strict=True)],
        dtype=np.float64,
    )
