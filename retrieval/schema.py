"""The tables retrieval owns: the declarative base of the whole store, records and chunks.

They live here, not in `service`, because retrieval writes and searches chunks and must not
depend on the service; the service's models share this `Base`.
"""

from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


RECORD_KINDS = ("work_record", "one_on_one", "feedback", "recognition", "goal", "self_note")


class Record(Base):
    """A piece of evidence (work record, 1:1 note, feedback...) about one person."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint(f"kind IN {RECORD_KINDS!r}", name="kind"),
        Index("ix_records_subject_id_occurred_at", "subject_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(String(128))
    external_id: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    author: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    title: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    content_hash: Mapped[str] = mapped_column(String(64))
    # Rules of the injection detector that the title and body matched: [] reads as
    # evidence, a non-empty list as instructions to a model; NULL was ingested before the
    # detector (drafting checks every pack's text again either way).
    instruction_signals: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # What the record says about its person's results (the bias room's `RecordCues`, with
    # its revision), found at ingest; NULL was ingested before, computed when first read.
    cues: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Chunk(Base):
    """A retrievable slice of a record, with its subject, kind, date and source copied in
    so that retrieval filters on one table.

    The embedding column has no fixed dimension: several models can coexist during a
    re-embedding, each chunk naming its model and dimension. Indexes for approximate
    search are built per model as partial expression indexes.
    """

    __tablename__ = "chunks"
    __table_args__ = (
        UniqueConstraint("record_id", "position"),
        Index("ix_chunks_subject_id_occurred_at", "subject_id", "occurred_at"),
        Index("ix_chunks_tsv", "tsv", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)
    # Measured outcomes the text states (`outcomes.outcome_count`), counted once when the
    # chunk is written, not at every search; NULL for chunks written before (counted then).
    outcomes: Mapped[int | None] = mapped_column(SmallInteger)
    tsv: Mapped[str] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english'::regconfig, text)", persisted=True)
    )
    embedding: Mapped[Any] = mapped_column(Vector(), nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(256))
    embedding_dim: Mapped[int | None] = mapped_column(Integer)
