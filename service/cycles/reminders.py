"""Who is due what reminder, claimed as rows in ONE statement, and each person's mute.

The rules (names in domain/reminders.py; the queries here):
- due_soon: an open task of a started cycle whose due day is today or within
  FAIRDRAFT_REMINDER_DUE_SOON_DAYS days, "today" in the cycle's time zone. To its assignee.
- overdue: an open task past its due day in the cycle's time zone (tasks.py's OVERDUE, the
  same rule "my tasks" marks). To its assignee; essential, so sent even when muted.
- digest: once a day (the UTC day of the pass), to each manager whose direct reports have
  overdue tasks: the list of them. Email only: it names people's missed deadlines, which a
  chat channel's other members have no business reading.
A task gets one message per rule per channel, ever: a task due soon is told once while due
soon and once more if it becomes overdue, however many passes run.

Exactly once, nothing lost: every message is a row of `reminders` whose UNIQUE key is
(recipient, rule, key, channel), key "task:<id>" or "day:<date>". A pass claims what is due
with one INSERT ... SELECT ... ON CONFLICT DO NOTHING, so two passes, two workers, or a
worker restarted half-way can never make a second row for the same message; sending is
service/cycles/reminder_pass.py's (claim -> send -> mark, retries, the lease).

Channels: email for everyone with a configured mail server; Slack or Teams where the
person's department (or "*") has a webhook configured. Rows are made only for channels
configured now; one configured later starts with what is due then.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    CTE,
    Boolean,
    ColumnElement,
    Connection,
    DateTime,
    Integer,
    Row,
    Select,
    String,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import aliased

from domain.phases import CycleStatus, TaskStatus
from domain.reminders import (
    ESSENTIAL,
    NON_ESSENTIAL,
    REMINDER_RULES,
    Channel,
    ReminderRule,
)
from service.audit import audit
from service.cycles.tasks import CYCLE_TODAY, OVERDUE
from service.db.models import CycleTask, Person, Reminder, ReminderPreference, ReviewCycle
from service.notify.chat import chat_departments
from service.settings import Settings

TASK_KEY = "task:"
DAY_KEY = "day:"
NOW = bindparam("now", type_=DateTime(timezone=True))
COLUMNS = ["recipient_id", "rule", "key", "channel", "task_id", "cycle_id", "next_attempt_at"]


def channels_of(settings: Settings) -> list[Channel]:
    """The channels configured now: email with a mail server, a chat with any webhook."""
    found = [Channel.EMAIL] if settings.smtp_host else []
    if settings.reminder_slack_webhooks:
        found.append(Channel.SLACK)
    if settings.reminder_teams_webhooks:
        found.append(Channel.TEAMS)
    return found


def digest_key(now: datetime) -> str:
    """A digest's key: the UTC day of the pass (once per manager per day)."""
    return f"{DAY_KEY}{now.astimezone(UTC).date().isoformat()}"


def _due(settings: Settings, cycle_id: int | None) -> CTE:
    """Open tasks of started cycles that are overdue, or due soon and their assignee has
    not muted non-essential reminders, with the rule they fall under."""
    muted = func.coalesce(ReminderPreference.mute_non_essential, False)
    horizon = CYCLE_TODAY + cast(literal(settings.reminder_due_soon_days), Integer)
    statement = (
        select(
            CycleTask.id.label("task_id"),
            CycleTask.cycle_id,
            CycleTask.assignee_id,
            Person.department,
            Person.manager_id,
            CycleTask.subject_id,
            case((OVERDUE, str(ReminderRule.OVERDUE)), else_=str(ReminderRule.DUE_SOON)).label(
                "rule"
            ),
        )
        .join(ReviewCycle, ReviewCycle.id == CycleTask.cycle_id)
        .join(Person, Person.id == CycleTask.assignee_id)
        .outerjoin(ReminderPreference, ReminderPreference.person_id == CycleTask.assignee_id)
        .where(
            ReviewCycle.status == CycleStatus.STARTED,
            CycleTask.status == TaskStatus.OPEN,
            CycleTask.due_on <= horizon,
            or_(OVERDUE, not_(muted)),
        )
    )
    if cycle_id is not None:
        statement = statement.where(CycleTask.cycle_id == cycle_id)
    return statement.cte("due")


def _text(value: str) -> ColumnElement[str]:
    return cast(literal(value), String(64))


def _task_rows(due: CTE, channel: Channel, settings: Settings) -> Select[*tuple[Any, ...]] | None:
    """One channel's task messages; None where the channel reaches nobody."""
    statement = select(
        due.c.assignee_id.label("recipient_id"),
        cast(due.c.rule, String(16)).label("rule"),
        func.concat(TASK_KEY, due.c.task_id).label("key"),
        cast(literal(str(channel)), String(16)).label("channel"),
        due.c.task_id,
        due.c.cycle_id,
        NOW.label("next_attempt_at"),
    )
    if channel == Channel.EMAIL:
        return statement
    default, departments = chat_departments(settings, channel)
    if default:
        return statement
    if not departments:
        return None
    listed = cast(literal(departments), ARRAY(String(128)))
    return statement.where(due.c.department == any_(listed))


def _digest_rows(due: CTE, key: str) -> Select[*tuple[Any, ...]]:
    """One email a day to each manager with reports' overdue tasks, unless muted."""
    mute = aliased(ReminderPreference)
    return (
        select(
            due.c.manager_id.label("recipient_id"),
            cast(literal(str(ReminderRule.DIGEST)), String(16)).label("rule"),
            _text(key).label("key"),
            cast(literal(str(Channel.EMAIL)), String(16)).label("channel"),
            cast(null(), Integer).label("task_id"),
            cast(null(), Integer).label("cycle_id"),
            NOW.label("next_attempt_at"),
        )
        .select_from(due)
        .outerjoin(mute, mute.person_id == due.c.manager_id)
        .where(
            due.c.rule == str(ReminderRule.OVERDUE),
            due.c.manager_id.is_not(None),
            # feedback about the manager themselves (upward, or a report asked as a peer)
            # is never in their digest: day by day it would tell them who has answered
            due.c.subject_id != due.c.manager_id,
            not_(func.coalesce(mute.mute_non_essential, cast(literal(False), Boolean))),
        )
        .distinct()
    )


def _candidates(
    settings: Settings, now: datetime, cycle_id: int | None
) -> Select[*tuple[Any, ...]] | None:
    due = _due(settings, cycle_id)
    channels = channels_of(settings)
    parts = [p for c in channels if (p := _task_rows(due, c, settings)) is not None]
    if Channel.EMAIL in channels:
        parts.append(_digest_rows(due, digest_key(now)))
    if not parts:
        return None
    return union_all(*parts).subquery("candidates").select()


class ClaimCount(BaseModel):
    rule: ReminderRule
    channel: Channel
    count: int


def claim_due(
    connection: Connection, settings: Settings, *, now: datetime, cycle_id: int | None = None
) -> list[ClaimCount]:
    """Claim every message due now, in ONE statement (INSERT ... SELECT, a message that has
    its row already left alone); how many new ones, by rule and channel."""
    candidates = _candidates(settings, now, cycle_id)
    if candidates is None:
        return []
    inserted = (
        pg_insert(Reminder)
        .from_select(COLUMNS, candidates)
        .on_conflict_do_nothing()
        .returning(Reminder.rule, Reminder.channel)
        .cte("inserted")
    )
    counted = select(inserted.c.rule, inserted.c.channel, func.count()).group_by(
        inserted.c.rule, inserted.c.channel
    )
    return _counts(connection.execute(counted, {"now": now}).all())


def would_claim(
    connection: Connection, settings: Settings, *, now: datetime, cycle_id: int | None = None
) -> list[ClaimCount]:
    """What `claim_due` would claim now, writing nothing (a dry run)."""
    candidates = _candidates(settings, now, cycle_id)
    if candidates is None:
        return []
    found = candidates.subquery("found")
    new = not_(
        exists().where(
            Reminder.recipient_id == found.c.recipient_id,
            Reminder.rule == found.c.rule,
            Reminder.key == found.c.key,
            Reminder.channel == found.c.channel,
        )
    )
    counted = (
        select(found.c.rule, found.c.channel, func.count())
        .where(new)
        .group_by(found.c.rule, found.c.channel)
    )
    return _counts(connection.execute(counted, {"now": now}).all())


def _counts(rows: Sequence[Row[*tuple[Any, ...]]]) -> list[ClaimCount]:
    counts = [
        ClaimCount(rule=ReminderRule(rule), channel=Channel(channel), count=int(n))
        for rule, channel, n in rows
    ]
    order = {rule: n for n, rule in enumerate(REMINDER_RULES)}
    return sorted(counts, key=lambda c: (order[c.rule], c.channel))


def task_key_id(key: str) -> int | None:
    """The task id of a "task:<id>" key."""
    return int(key[len(TASK_KEY) :]) if key.startswith(TASK_KEY) else None


# --- a person's mute ------------------------------------------------------------------------


class ReminderSettingsIn(BaseModel):
    """What a person may change about their reminders."""

    model_config = ConfigDict(extra="forbid", strict=True)

    mute_non_essential: bool = Field(
        description="true: no due-soon nudges and no manager's digest; an overdue task of "
        "one's own is still told."
    )


class ReminderSettingsOut(BaseModel):
    mute_non_essential: bool
    muted: list[ReminderRule] = Field(description="The rules this person is not told now.")
    always_told: list[ReminderRule] = Field(description="Essential: told even when muted.")


def reminder_settings(connection: Connection, person_id: int) -> ReminderSettingsOut:
    muted = connection.execute(
        select(ReminderPreference.mute_non_essential).where(
            ReminderPreference.person_id == person_id
        )
    ).scalar_one_or_none()
    return _settings_out(bool(muted))


def _settings_out(muted: bool) -> ReminderSettingsOut:
    return ReminderSettingsOut(
        mute_non_essential=muted,
        muted=[r for r in REMINDER_RULES if muted and r in NON_ESSENTIAL],
        always_told=[r for r in REMINDER_RULES if r in ESSENTIAL],
    )


def set_reminder_settings(
    connection: Connection, person_id: int, body: ReminderSettingsIn, *, actor: str
) -> ReminderSettingsOut:
    """Store a person's choice (one upsert) and audit it, before and after."""
    before = reminder_settings(connection, person_id)
    values = {"mute_non_essential": body.mute_non_essential, "updated_by": actor}
    connection.execute(
        pg_insert(ReminderPreference)
        .values(person_id=person_id, **values)
        .on_conflict_do_update(
            index_elements=[ReminderPreference.person_id],
            set_={**values, "updated_at": func.now()},
        )
    )
    audit(
        connection,
        actor=actor,
        action="reminders_set",
        entity="person",
        entity_id=str(person_id),
        before={"mute_non_essential": before.mute_non_essential},
        after={"mute_non_essential": body.mute_non_essential},
    )
    return _settings_out(body.mute_non_essential)
