"""Reading the evidence features' per-record cues (`RecordCues`) from the store.

Ingest stores each record's cues (records.cues); a record stored before that, or under
another `CUES_REVISION`, has its cues computed here from its text and written back, so the
next report reads them too. Kept apart from `evidence_features`, which stays a pure
function of record text."""

from collections import defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import Connection, Integer, bindparam, case, cast, select, update
from sqlalchemy import Text as SqlText

from domain.periods import Period
from service.bias.evidence_features import (
    CUES_REVISION,
    RecordCues,
    record_cues,
    stored_cues,
)
from service.db.models import Record

Cued = tuple[str, RecordCues]  # (record kind, its cues)


def people_cues(
    connection: Connection, people: Collection[int], period: Period
) -> dict[int, list[Cued]]:
    """person id -> (kind, cues) of each record about them dated inside `period`: one
    query, the text read only of records whose stored cues are missing or stale."""
    current = cast(Record.cues["revision"].astext, Integer) == CUES_REVISION
    rows = connection.execute(
        select(
            Record.id,
            Record.subject_id,
            Record.kind,
            case((current, cast(Record.cues, SqlText))).label("cues"),
            case((current, None), else_=Record.title).label("title"),
            case((current, None), else_=Record.body).label("body"),
            case((current, None), else_=Record.meta).label("meta"),
        ).where(
            Record.subject_id.in_(people),
            Record.occurred_at >= period.starts_at,
            Record.occurred_at < period.ends_before,
        )
    ).all()
    found: dict[int, list[Cued]] = defaultdict(list)
    computed: list[tuple[int, RecordCues]] = []
    for r in rows:
        if r.cues is not None:
            cues = RecordCues.model_validate_json(r.cues)
        else:
            cues = record_cues(r.kind, r.title, r.body, r.meta or {})
            computed.append((r.id, cues))
        found[r.subject_id].append((r.kind, cues))
    _store(connection, computed)
    return found


def _store(connection: Connection, computed: Sequence[tuple[int, RecordCues]]) -> None:
    """Write back cues computed on read, in one executemany."""
    if not computed:
        return
    records = Record.metadata.tables[Record.__tablename__]
    connection.execute(
        update(records)
        .where(records.c.id == bindparam("record_id"))
        .values(cues=bindparam("record_cues")),
        [{"record_id": rid, "record_cues": stored_cues(c)} for rid, c in computed],
    )
