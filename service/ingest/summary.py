"""What one ingest did, for the CLI, the API and the audit trail."""

from dataclasses import asdict, dataclass, field
from typing import Any

from service.ingest.errors import RowError


@dataclass
class IngestSummary:
    path: str
    format: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[RowError] = field(default_factory=list)
    chunks_written: int = 0
    embed_seconds: float = 0.0
    db_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def counts(self) -> dict[str, Any]:
        """The figures without the refused rows' details (for audit and JSON output)."""
        data = asdict(self)
        data["refused"] = len(self.refused)
        return data
