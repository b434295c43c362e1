"""How a writer asks for a draft to be written again: over another evidence window, without
chosen evidence, or in another tone. Named once here: the API, the pages, the job's payload
and the drafter all read these.

Standard library only (the CLI checks `--tone` before anything heavy loads).
"""

from dataclasses import dataclass, field
from enum import StrEnum

from domain.errors import Invalid
from domain.periods import Period

# A draft's evidence pack holds at most a few dozen items; more exclusions than this is a
# request nobody made by hand.
MAX_EXCLUDED = 200


class Tone(StrEnum):
    """A tone the LLM drafter is asked to write in (the offline drafter has one voice)."""

    SHORTER = "shorter"
    MORE_DIRECT = "more_direct"


TONES: tuple[Tone, ...] = tuple(Tone)


@dataclass(frozen=True)
class DraftOptions:
    """What changes a draft from the default: the evidence window (None: the draft's own
    period), the records left out, and the tone (None: the template's own)."""

    evidence_period: Period | None = None
    exclude_records: frozenset[int] = field(default_factory=frozenset)
    tone: Tone | None = None

    def __post_init__(self) -> None:
        if len(self.exclude_records) > MAX_EXCLUDED:
            raise Invalid(
                f"at most {MAX_EXCLUDED} evidence records may be left out "
                f"({len(self.exclude_records)} given)",
                field="exclude_records",
            )

    @property
    def is_default(self) -> bool:
        return not (self.evidence_period or self.exclude_records or self.tone)

    def as_payload(self) -> dict[str, object]:
        """The options as a job's JSON payload holds them (only those set)."""
        payload: dict[str, object] = {}
        if self.evidence_period is not None:
            payload["evidence_period"] = self.evidence_period.name
        if self.exclude_records:
            payload["exclude_records"] = sorted(self.exclude_records)
        if self.tone is not None:
            payload["tone"] = self.tone.value
        return payload


# Nothing asked: the draft's own period, all its evidence, the template's tone.
DEFAULT_OPTIONS = DraftOptions()
