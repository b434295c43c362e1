"""Test factories: valid objects in one call, with only what a test cares about named."""

from datetime import UTC, datetime

from retrieval.evidence import EvidenceItem, Scores


def evidence_item(
    number: int,
    text: str,
    *,
    kind: str = "work_record",
    title: str | None = None,
    source: str = "test",
    month: int = 3,
) -> EvidenceItem:
    """Evidence item E<number>, dated <month>/<number> 2026, with plausible scores."""
    return EvidenceItem(
        id=f"E{number}",
        chunk_id=100 + number,
        record_id=200 + number,
        text=text,
        token_count=len(text.split()),
        kind=kind,
        source=source,
        external_id=f"{source}-{number}",
        title=title,
        occurred_at=datetime(2026, month, number, tzinfo=UTC),
        author=None,
        scores=Scores(vector=0.5, text=0.1, fused=0.01, pick=number),
    )
