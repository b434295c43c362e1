"""The evidence store's schema: typed SQLAlchemy 2 models, one per table.

Demographic attributes live in their own `restricted` schema so that production can grant
it to the bias check and HR roles alone (`GRANT USAGE ON SCHEMA restricted TO ...`).
"""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    case,
    column,
    func,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, ENUM, JSONB, UUID
from sqlalchemy.orm import Mapped, column_property, mapped_column

from domain.phases import (
    CYCLE_STATUSES,
    FEEDBACK_KINDS,
    PHASES,
    REQUEST_STATUSES,
    TASK_KINDS,
    TASK_STATUSES,
)
from domain.reminders import CHANNELS, MESSAGE_STATUSES, REMINDER_RULES
from retrieval.schema import RECORD_KINDS, Base, Chunk, Record

__all__ = [
    "PROCRASTINATE_JOBS",
    "RECORD_KINDS",
    "ApiToken",
    "AuditEvent",
    "Base",
    "BiasReport",
    "CalibrationPanel",
    "Chunk",
    "ConnectorRun",
    "ConnectorSeen",
    "ConnectorState",
    "CyclePhase",
    "CycleRelease",
    "CycleTask",
    "Demographic",
    "Draft",
    "DraftCheck",
    "DraftVersion",
    "ExternalIdentity",
    "FeedbackRequest",
    "FlagAcknowledgement",
    "Job",
    "ManagerSpell",
    "PanelMember",
    "PeerNomination",
    "Person",
    "PersonRole",
    "Placement",
    "Rating",
    "Record",
    "Reminder",
    "ReminderPreference",
    "ReviewAcknowledgement",
    "ReviewCycle",
    "ScimGroup",
    "ScimGroupMember",
    "ScimUser",
    "SignInLink",
    "SourceOptOut",
    "WebSession",
]

RESTRICTED_SCHEMA = "restricted"


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def _updated_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK's condition: the column holds one of these names (domain's own, no input)."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Person(Base):
    """One employee from the HRIS export; `employee_id` is the HRIS key, `id` ours."""

    __tablename__ = "people"
    # One person an address whatever its case (SCIM and sign-in compare without case).
    __table_args__ = (Index("uq_people_email_lower", func.lower(text("email")), unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    level: Mapped[str] = mapped_column(String(32))
    job_family: Mapped[str] = mapped_column(String(128))
    department: Mapped[str] = mapped_column(String(128))
    location: Mapped[str] = mapped_column(String(128))
    hire_date: Mapped[date | None] = mapped_column(Date)
    # A leaver (HRIS termination date passed, or deactivated by the identity provider) is
    # kept with their evidence and reviews but can no longer sign in or be a participant.
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    left_on: Mapped[date | None] = mapped_column(Date)
    # The identity provider's subject this person first signed in with (single sign-on);
    # another subject with the same email is refused.
    sso_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ManagerSpell(Base):
    """Who managed a person from when to when. Written by a trigger on `people` (migration
    0017), so people.csv, an HRIS export and SCIM all keep the history the same way."""

    __tablename__ = "manager_history"
    __table_args__ = (Index("ix_manager_history_person_id_started_at", "person_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = _created_at()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Demographic(Base):
    """One demographic attribute of one person, read only by the bias check and HR roles."""

    __tablename__ = "demographics"
    __table_args__ = {"schema": RESTRICTED_SCHEMA}

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    attribute: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = _updated_at()


class ReviewCycle(Base):
    """A review period with its rating scale (default 1 to 5) and, once HR sets it up
    (service.cycles.setup_store), its set-up: `status` is NULL for a cycle created without
    one (a ratings import, a panel's set-up), then `draft` (editable), then `started`.
    Participants: hired on or before `cutoff_on` (or with no hire date), in the listed
    departments, levels and job families (an empty list: all)."""

    __tablename__ = "review_cycles"
    __table_args__ = (
        CheckConstraint("scale_min < scale_max", name="scale"),
        CheckConstraint(_one_of("status", CYCLE_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    scale_min: Mapped[int] = mapped_column(Integer, server_default="1")
    scale_max: Mapped[int] = mapped_column(Integer, server_default="5")
    created_at: Mapped[datetime] = _created_at()
    title: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    cutoff_on: Mapped[date | None] = mapped_column(Date)
    departments: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    levels: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    job_families: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    reviews: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    scale_labels: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    questions: Mapped[dict[str, list[str]] | None] = mapped_column(JSONB)
    copied_from: Mapped[int | None] = mapped_column(
        ForeignKey("review_cycles.id", ondelete="SET NULL")
    )
    set_up_by: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CyclePhase(Base):
    """A phase of a set-up cycle with the day it opens and the day it is due (both in the
    cycle's time zone). Its open tasks are due on its due day."""

    __tablename__ = "cycle_phases"
    __table_args__ = (
        CheckConstraint("opens_on <= due_on", name="dates"),
        CheckConstraint(_one_of("phase", PHASES), name="phase"),
    )

    cycle_id: Mapped[int] = mapped_column(
        ForeignKey("review_cycles.id", ondelete="CASCADE"), primary_key=True
    )
    phase: Mapped[str] = mapped_column(String(32), primary_key=True)
    opens_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # release
    closed_by: Mapped[str | None] = mapped_column(Text)


class CycleTask(Base):
    """Something one person must do in a cycle, by the due day of its phase: write a
    self-reflection, nominate peers, approve a report's nominations, write a report's
    feedback, acknowledge a released review. `subject_id` is whose review it serves (the
    assignee themselves for their own). One task per (cycle, kind, assignee, subject)."""

    __tablename__ = "cycle_tasks"
    __table_args__ = (
        UniqueConstraint("cycle_id", "kind", "assignee_id", "subject_id"),
        Index("ix_cycle_tasks_cycle_phase", "cycle_id", "phase", "status"),
        CheckConstraint(_one_of("status", TASK_STATUSES), name="status"),
        CheckConstraint(_one_of("kind", TASK_KINDS), name="kind"),
        CheckConstraint(_one_of("phase", PHASES), name="phase"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("review_cycles.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    assignee_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    subject_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(String(32))
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()


class PeerNomination(Base):
    """A peer nominated to give feedback on a subject in a cycle: by the subject, or added
    by their manager (`added_by`: the actor). The list is fixed once the manager approves
    it (the subject's approve_nominations task done)."""

    __tablename__ = "peer_nominations"
    __table_args__ = (CheckConstraint("subject_id <> peer_id", name="not_self"),)

    cycle_id: Mapped[int] = mapped_column(
        ForeignKey("review_cycles.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    peer_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_by: Mapped[str] = mapped_column(Text)
    by_manager: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = _created_at()


class FeedbackRequest(Base):
    """One person's feedback on another in a cycle: `kind` peer (asked when the manager
    approved the nominations) or upward (a report's about their manager, asked at the
    start). The questions as they were then, the answers (a draft while `open`, fixed once
    `submitted`), a decline's reason, and the feedback record a submitted answer became
    (`record_id`: evidence of the subject, its author hidden from them)."""

    __tablename__ = "feedback_requests"
    __table_args__ = (
        UniqueConstraint("cycle_id", "kind", "subject_id", "peer_id"),
        CheckConstraint(_one_of("status", REQUEST_STATUSES), name="status"),
        CheckConstraint(_one_of("kind", FEEDBACK_KINDS), name="kind"),
        CheckConstraint("subject_id <> peer_id", name="not_self"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("review_cycles.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), server_default="peer")
    subject_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    peer_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("cycle_tasks.id", ondelete="SET NULL"))
    questions: Mapped[list[str]] = mapped_column(JSONB)
    answers: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    decline_reason: Mapped[str | None] = mapped_column(Text)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id", ondelete="SET NULL"))
    saved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()


class Rating(Base):
    """A rating proposed by a rater for a person in a cycle, and its calibrated value."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("cycle_id", "person_id", "rater_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("review_cycles.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="RESTRICT"))
    rating: Mapped[int] = mapped_column(Integer)
    calibrated_rating: Mapped[int | None] = mapped_column(Integer)
    finalised_by: Mapped[str | None] = mapped_column(Text)
    finalised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class AuditEvent(Base):
    """Who did what, when, with the state before and after: written by every write that
    matters and never updated."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Draft(Base):
    """One draft of one kind for one person and period. Its text lives in its versions;
    `status` moves draft -> checked -> approved (the bias check and the approval gate)."""

    __tablename__ = "drafts"
    __table_args__ = (
        UniqueConstraint("subject_id", "kind", "period"),
        CheckConstraint("status IN ('draft', 'checked', 'approved')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(64))
    cycle_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_cycles.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    current_version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class DraftVersion(Base):
    """A version of a draft, never changed once written: version 1 as generated (with its
    full provenance), later ones as edited or regenerated, each with its author and time."""

    __tablename__ = "draft_versions"
    __table_args__ = (UniqueConstraint("draft_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))  # "llm", "offline" or "edit"
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    citations: Mapped[dict[str, Any]] = mapped_column(JSONB)
    supported_share: Mapped[float] = mapped_column(Float)
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created_at()


class DraftCheck(Base):
    """The bias check of one draft version: its language profile and the flags it raised.
    A draft can be approved only on a check of its current version. `language`: the
    profile as the report reuses it, with the rules and names it was read with
    (`service/bias/stored_language.py`); NULL for checks before migration 0010."""

    __tablename__ = "draft_checks"
    __table_args__ = (Index("ix_draft_checks_draft_id_version", "draft_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    checked_by: Mapped[str] = mapped_column(Text)
    profile: Mapped[dict[str, Any]] = mapped_column(JSONB)
    flags: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    language: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = _created_at()


class FlagAcknowledgement(Base):
    """A named person's decision to keep a flagged phrase, with their reason."""

    __tablename__ = "flag_acknowledgements"
    __table_args__ = (
        UniqueConstraint("check_id", "flag"),
        CheckConstraint("length(btrim(reason)) > 0", name="reason"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("draft_checks.id", ondelete="CASCADE"))
    flag: Mapped[str] = mapped_column(String(16))
    acknowledged_by: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()


class BiasReport(Base):
    """A cycle's bias report, versioned: what it found, the data it saw, and when."""

    __tablename__ = "bias_reports"
    __table_args__ = (UniqueConstraint("cycle", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(Text)
    data_seen: Mapped[dict[str, Any]] = mapped_column(JSONB)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created_at()


class ApiToken(Base):
    """A per-person bearer token. Only its SHA-256 is stored: a leaked table grants nothing."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()


class WebSession(Base):
    """A signed-in browser: the cookie holds a random id whose SHA-256 is stored here, never
    the bearer token it was opened with. Bound to that token (revoking it ends the session)
    or to the OIDC identity; ends at sign-out, after an idle gap, or at its absolute end."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    oidc_subject: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignInLink(Base):
    """A one-time sign-in link (service/access/links.py): only the SHA-256 of its secret is
    stored, like a token's. Used once (`used_at`), dead after `expires_at` either way."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    link_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PersonRole(Base):
    """Roles that the reporting tree cannot tell: HR administration. Employee and manager
    follow from `people.manager_id`, panel membership from `panel_members`."""

    __tablename__ = "person_roles"
    __table_args__ = (CheckConstraint("role IN ('hr_admin')", name="role"),)

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()


class CalibrationPanel(Base):
    """A panel that calibrates one cohort (a level and job family) of one cycle."""

    __tablename__ = "calibration_panels"
    __table_args__ = (UniqueConstraint("cycle", "level", "job_family"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(32))
    job_family: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()


class PanelMember(Base):
    __tablename__ = "panel_members"

    panel_id: Mapped[int] = mapped_column(
        ForeignKey("calibration_panels.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Placement(Base):
    """A person's place on a panel's 9-box grid: performance and potential, 1 (low) to 3."""

    __tablename__ = "placements"
    __table_args__ = (
        UniqueConstraint("panel_id", "person_id"),
        CheckConstraint("performance BETWEEN 1 AND 3", name="performance"),
        CheckConstraint("potential BETWEEN 1 AND 3", name="potential"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    panel_id: Mapped[int] = mapped_column(ForeignKey("calibration_panels.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    performance: Mapped[int] = mapped_column(Integer)
    potential: Mapped[int] = mapped_column(Integer)
    placed_by: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = _updated_at()


# procrastinate's table of jobs, as far as fairdraft reads it. Revision 0007 creates it from
# procrastinate's own SQL: not a model of ours, and not in Base.metadata, so autogenerate
# leaves it alone.
PROCRASTINATE_JOBS = table(
    "procrastinate_jobs",
    column("id"),
    column("queue_name"),
    column("task_name"),
    column("status", ENUM(name="procrastinate_job_status", create_type=False)),
    column("attempts"),
    column("scheduled_at"),
)
_P = PROCRASTINATE_JOBS.c


class Job(Base):
    """Background work as fairdraft knows it: who asked, for what, and the outcome.
    procrastinate runs it: `procrastinate_job_id` links the row procrastinate keeps (the
    queue, its state, which worker holds it). What procrastinate has no place for lives
    here: the requester, the payload (kept out of procrastinate's arguments and so out of
    its log lines), the result, and an error message fairdraft composed.

    `status` and `attempts` are read from procrastinate's row, the one truth about them:
    queued, running, done or failed (cancelled and aborted count as failed), and attempts
    so far with a running one included (procrastinate counts finished ones). A job whose
    row was removed by hand (our workers keep them) is done if it stored a result."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    requested_by: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    procrastinate_job_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    status: Mapped[str] = column_property(
        func.coalesce(
            select(
                case(
                    (_P.status == "todo", "queued"),
                    (_P.status == "doing", "running"),
                    (_P.status == "succeeded", "done"),
                    else_="failed",
                )
            )
            .where(_P.id == procrastinate_job_id)
            .scalar_subquery(),
            case((result.is_not(None), "done"), else_="failed"),
        ).label("status")
    )
    attempts: Mapped[int] = column_property(
        func.coalesce(
            select(_P.attempts + case((_P.status == "doing", 1), else_=0))
            .where(_P.id == procrastinate_job_id)
            .scalar_subquery(),
            0,
        ).label("attempts")
    )


# --- Release and sign-off (issue 16): a cycle released to employees, by department or all of
# it, and each employee's acknowledgement of their released review (migration 0015). A
# phase's closing is on cycle_phases (closed_at, closed_by).


class CycleRelease(Base):
    """HR released a cycle's reviews to its employees: to one department, or to everyone
    (`department` NULL). One row per department and one whole release at most."""

    __tablename__ = "cycle_releases"
    __table_args__ = (
        UniqueConstraint("cycle_id", "department"),
        Index(
            "uq_cycle_releases_whole",
            "cycle_id",
            unique=True,
            postgresql_where=text("department IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("review_cycles.id", ondelete="CASCADE"))
    department: Mapped[str | None] = mapped_column(String(128))
    released_by: Mapped[str] = mapped_column(Text)
    released_at: Mapped[datetime] = _created_at()


class ReviewAcknowledgement(Base):
    """An employee acknowledged their released review of a cycle (once: `acknowledged_at`
    never moves), with a comment their manager and HR read; the comment may change later
    (`comment_at`), each change audited."""

    __tablename__ = "review_acknowledgements"

    cycle_id: Mapped[int] = mapped_column(
        ForeignKey("review_cycles.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    comment: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime] = _created_at()
    comment_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- Reminders (issue 16): every reminder message and its outcome, and each person's mute
# (migration 0014; service/cycles/reminders.py, service/notify/).


class Reminder(Base):
    """One reminder message: to whom, why (`rule`), about what (`key`: "task:<id>" or a
    digest's "day:<date>"), by which channel, and how its sending went. UNIQUE on
    (recipient, rule, key, channel): claiming is an INSERT that skips what exists, so two
    runs, two workers or a restarted one never make the same message twice."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("recipient_id", "rule", "key", "channel"),
        Index("ix_reminders_status_next_attempt_at", "status", "next_attempt_at"),
        CheckConstraint(_one_of("rule", REMINDER_RULES), name="rule"),
        CheckConstraint(_one_of("channel", CHANNELS), name="channel"),
        CheckConstraint(_one_of("status", MESSAGE_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("cycle_tasks.id", ondelete="CASCADE"), index=True
    )
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("review_cycles.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ReminderPreference(Base):
    """A person's choice about reminders: muting the non-essential ones (due soon, the
    manager's digest); an overdue task of their own is told anyway."""

    __tablename__ = "reminder_preferences"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    mute_non_essential: Mapped[bool] = mapped_column(Boolean, server_default="false")
    updated_by: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = _updated_at()


# --- Promotion nominations (issue 16): a manager nominates a report for promotion in a
# cycle asking for promotion packets (migration 0016; service/cycles/promotions.py).

MAX_PROMOTION_REASON = 1000


class PromotionNomination(Base):
    """A participant nominated for promotion in a cycle, once (a second manager's
    nomination updates the reason): who nominated them (`nominated_by`: the actor), why (an
    optional reason, at most MAX_PROMOTION_REASON characters), and when. Withdrawing deletes
    the row (the audit trail keeps it)."""

    __tablename__ = "promotion_nominations"
    __table_args__ = (
        CheckConstraint(f"char_length(reason) <= {MAX_PROMOTION_REASON}", name="reason_length"),
    )

    cycle_id: Mapped[int] = mapped_column(
        ForeignKey("review_cycles.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    nominated_by: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


# --- Connectors (issue 17): each connector's cursor, its runs, the identities its sources
# name and whom they are matched to, and people's per-source opt-outs (migration 0017;
# service/connectors/).

RUN_STATUSES = ("running", "succeeded", "paused", "failed")
# refused: HR unmatched it by hand, so no email match may take it again
MATCHED_BY = ("email", "csv", "hand", "refused")


class ConnectorState(Base):
    """Where a connector's next run starts: its cursor (the connector's own JSON: high-water
    marks, ETags), saved after every batch written so a stopped run resumes; `full_next`
    asks for a full pass to begin with the next run (set when an identity is matched by
    hand, so the records skipped for it arrive)."""

    __tablename__ = "connector_state"

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    full_next: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # A full pass in progress: when it began (a pass paused by a rate limit goes on in the
    # next runs from its cursor) and, for a source that hides older history, the moment
    # from which it has covered everything (the sweep at its end spares what is older).
    pass_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pass_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # HR purged the source: no run until HR resumes the connector (a purge that the next
    # hourly run undid would be no purge).
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_by: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = _updated_at()


class ConnectorSeen(Base):
    """A record a full pass in progress has seen: kept across the runs of the pass, so the
    sweep at its end removes exactly what the source no longer has."""

    __tablename__ = "connector_seen"

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(256), primary_key=True)


class ConnectorRun(Base):
    """One sync run and what it did: fetched, inserted, updated, unchanged, deleted and
    skipped (with each reason's count), its rate-limit waits, and its end."""

    __tablename__ = "connector_runs"
    __table_args__ = (
        Index("ix_connector_runs_connector_started_at", "connector", "started_at"),
        CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    connector: Mapped[str] = mapped_column(String(64))
    full: Mapped[bool] = mapped_column(Boolean, server_default="false")
    actor: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    fetched: Mapped[int] = mapped_column(Integer, server_default="0")
    inserted: Mapped[int] = mapped_column(Integer, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    deleted: Mapped[int] = mapped_column(Integer, server_default="0")
    skipped: Mapped[int] = mapped_column(Integer, server_default="0")
    skip_reasons: Mapped[dict[str, int]] = mapped_column(JSONB, server_default="{}")
    chunks_embedded: Mapped[int] = mapped_column(Integer, server_default="0")
    rate_limit_waits: Mapped[int] = mapped_column(Integer, server_default="0")
    waited_s: Mapped[float] = mapped_column(Float, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = _created_at()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ExternalIdentity(Base):
    """A person as a source names them (a GitHub login, a Jira account id, a Slack user id)
    and the employee it is matched to: by work email where the source gives one, by the
    identities CSV, or by hand on the HR page. Unmatched ones (person_id NULL) are listed
    there with how many records wait on them."""

    __tablename__ = "external_identities"
    __table_args__ = (CheckConstraint(_one_of("matched_by", MATCHED_BY), name="matched_by"),)

    system: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    matched_by: Mapped[str | None] = mapped_column(String(16))
    records_waiting: Mapped[int] = mapped_column(Integer, server_default="0")
    first_seen: Mapped[datetime] = _created_at()
    last_seen: Mapped[datetime] = _updated_at()


class SourceOptOut(Base):
    """A person keeps a source's records out of fairdraft: the connector skips them and
    what was stored is purged when the opt-out is made."""

    __tablename__ = "source_opt_outs"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = _created_at()


# --- SCIM (issue 17): the identity provider's view of the people it provisions, and its
# groups (migration 0018; service/provisioning/). A person's SCIM id is people.id.


class ScimUser(Base):
    """What the identity provider said about a person: its userName and externalId and the
    attributes it sent (within the schema fairdraft publishes), so a GET answers what it
    wrote. `deleted_at`: a SCIM DELETE hides the user from SCIM; the person stays, inactive."""

    __tablename__ = "scim_users"
    __table_args__ = (
        Index(
            "ux_scim_users_user_name",
            func.lower(column("user_name")),
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_scim_users_external_id", "external_id"),
    )

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    user_name: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text)
    resource: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ScimGroup(Base):
    """A group the identity provider pushes, as it sent it; members in scim_group_members."""

    __tablename__ = "scim_groups"
    __table_args__ = (Index("ix_scim_groups_display_name", func.lower(column("display_name"))),)

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()
    )
    display_name: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text)
    resource: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ScimGroupMember(Base):
    """One person in one SCIM group."""

    __tablename__ = "scim_group_members"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scim_groups.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
