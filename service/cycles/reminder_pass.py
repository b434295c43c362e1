"""One reminder pass: claim what is due (service/cycles/reminders.py), then send every
message waiting in the outbox, recording each outcome on its row.

Sending, per channel, a batch at a time:
1. pick: one UPDATE marks a batch `sending` (attempts + 1, claimed_at = now), choosing
   rows `pending`, or `failed` whose next attempt is due, with FOR UPDATE SKIP LOCKED, so
   two workers never hold the same row; committed before anything is sent.
2. send each message; every 100 sent, and at the end of the batch, one UPDATE marks them
   `sent`. A failure (server down, 4xx/5xx, time-out) marks the row `failed` with its
   reason (the kind and code, never the body) and a next attempt after a back-off that
   doubles from 5 minutes up to 6 hours; after FAIRDRAFT_REMINDER_MAX_ATTEMPTS tries it is
   `gave_up`, kept for a person to look at. A destination that is down (refused, timed
   out) is not tried again in this pass: the batch's untried rows go back to `pending`.
3. a row left `sending` by a worker that stopped (killed between send and mark) is past
   its lease (FAIRDRAFT_REMINDER_LEASE_S) at a later pass. fairdraft cannot know whether
   the server took it. Email is sent again with the SAME Message-ID (built from the row's
   id), which mail systems use to drop the duplicate: nothing is lost, and a receiver that
   de-duplicates sees it once. A chat webhook has no such id (Slack and Teams would post
   it twice), so a chat row past its lease is marked `unsure` and not sent again: a
   second post is worse than a missing nudge, and the row says so for a person to decide.

Before sending, each row is read again with its task: a task done since it was claimed,
or a non-essential reminder to someone who muted since, is `skipped`.

Chat messages name only their recipient (a channel's members read them): never the
subject of a task, which for peer feedback would tell the channel who reviews whom.
"""

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.orm import aliased

from domain.phases import CycleStatus, TaskKind, TaskStatus
from domain.reminders import (
    CHAT_CHANNELS,
    NON_ESSENTIAL,
    Channel,
    MessageStatus,
    ReminderRule,
)
from service.cycles.reminders import ClaimCount, channels_of, claim_due, would_claim
from service.cycles.tasks import CYCLE_TODAY, OVERDUE
from service.db.models import CycleTask, Person, Reminder, ReminderPreference, ReviewCycle
from service.metrics import process_metrics
from service.notify.chat import WebhookPoster, webhook_for
from service.notify.email import SmtpMailer, build_email
from service.notify.errors import DeliveryFailed
from service.notify.messages import ReminderContent, TaskItem, slack_message, teams_message
from service.settings import Settings

log = logging.getLogger("fairdraft.reminders")
BATCH = 200  # held at once: sent well within the lease even at 2 s a message
MARK_EVERY = 100
FIRST_BACKOFF = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)
TASKS_PAGE = "/tasks"
TEAM_PAGE = "/team"
UNSURE = "its worker stopped while sending; it may have arrived, so it is not sent again"
NOT_TRIED = "not tried: the destination was down earlier in the same pass"


class ChannelOutcome(BaseModel):
    sent: int = 0
    failed: int = 0
    gave_up: int = 0
    skipped: int = 0
    unsure: int = 0
    not_tried: int = 0


class PassSummary(BaseModel):
    """What one pass did (or, dry, would do)."""

    dry_run: bool
    channels: list[Channel] = Field(description="The channels configured.")
    claimed: list[ClaimCount] = Field(description="New messages, by rule and channel.")
    waiting: int = Field(description="Messages due to be sent at the start of sending.")
    unsure: int = Field(default=0, description="Chat messages found held past the lease.")
    outcomes: dict[Channel, ChannelOutcome] = Field(default_factory=dict)


def backoff(attempts: int) -> timedelta:
    """5 min after the first failed try, doubling, at most 6 hours."""
    factor: int = 2 ** max(attempts - 1, 0)
    return min(FIRST_BACKOFF * factor, MAX_BACKOFF)


def public_base(settings: Settings) -> str:
    base = settings.public_url or f"http://{settings.api_host}:{settings.api_port}"
    return base.rstrip("/")


# --- picking -----------------------------------------------------------------------------


def _sendable(now: datetime, stale: datetime) -> Any:
    return or_(
        and_(
            Reminder.status.in_([MessageStatus.PENDING, MessageStatus.FAILED]),
            Reminder.next_attempt_at <= now,
        ),
        # Only email is sent again after its lease (with its Message-ID, which receivers
        # de-duplicate); a chat row past its lease is marked unsure, never posted twice.
        and_(
            Reminder.status == MessageStatus.SENDING,
            Reminder.claimed_at < stale,
            Reminder.channel == Channel.EMAIL,
        ),
    )


def mark_unsure(connection: Connection, *, now: datetime, lease: timedelta) -> int:
    """Chat rows held past their lease: `unsure`, never sent again (see the module's 3.)."""
    result = connection.execute(
        update(Reminder)
        .where(
            Reminder.channel.in_([str(c) for c in CHAT_CHANNELS]),
            Reminder.status == MessageStatus.SENDING,
            Reminder.claimed_at < now - lease,
        )
        .values(status=MessageStatus.UNSURE, last_error=UNSURE, updated_at=now)
    )
    return int(result.rowcount)


def pick(
    connection: Connection, channel: Channel, *, now: datetime, lease: timedelta, limit: int
) -> list[int]:
    """Hold up to `limit` sendable rows of a channel for this worker (one UPDATE)."""
    chosen = (
        select(Reminder.id)
        .where(Reminder.channel == channel, _sendable(now, now - lease))
        .order_by(Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    held = connection.execute(
        update(Reminder)
        .where(Reminder.id.in_(chosen.scalar_subquery()))
        .values(
            status=MessageStatus.SENDING,
            attempts=Reminder.attempts + 1,
            claimed_at=now,
            updated_at=now,
        )
        .returning(Reminder.id)
    )
    return sorted(int(i) for i in held.scalars())


def waiting(
    connection: Connection, channels: Sequence[Channel], *, now: datetime, lease: timedelta
) -> int:
    return int(
        connection.execute(
            select(func.count())
            .select_from(Reminder)
            .where(Reminder.channel.in_([str(c) for c in channels]), _sendable(now, now - lease))
        ).scalar_one()
    )


# --- what each held row says ---------------------------------------------------------------


@dataclass
class Held:
    """A held row, read with what its message needs."""

    id: int
    rule: ReminderRule
    channel: Channel
    attempts: int
    recipient_id: int
    recipient_name: str
    email: str
    department: str
    muted: bool
    task_open: bool = True
    items: list[TaskItem] = field(default_factory=list)
    today: date | None = None


_SUBJECT = aliased(Person)
_RECIPIENT = aliased(Person)


def load(connection: Connection, ids: Sequence[int], *, now: datetime) -> list[Held]:
    """The held rows with their recipient, task and (for digests) the reports' overdue
    tasks: two queries a batch, none per row."""
    rows = connection.execute(
        select(
            Reminder.id,
            Reminder.rule,
            Reminder.channel,
            Reminder.attempts,
            Reminder.recipient_id,
            _RECIPIENT.name,
            _RECIPIENT.email,
            _RECIPIENT.department,
            func.coalesce(ReminderPreference.mute_non_essential, False).label("muted"),
            CycleTask.kind,
            CycleTask.status.label("task_status"),
            CycleTask.due_on,
            CycleTask.subject_id,
            CycleTask.assignee_id,
            _SUBJECT.name.label("subject_name"),
            ReviewCycle.name.label("cycle"),
            ReviewCycle.status.label("cycle_status"),
            CYCLE_TODAY.label("today"),
        )
        .join(_RECIPIENT, _RECIPIENT.id == Reminder.recipient_id)
        .outerjoin(ReminderPreference, ReminderPreference.person_id == Reminder.recipient_id)
        .outerjoin(CycleTask, CycleTask.id == Reminder.task_id)
        .outerjoin(_SUBJECT, _SUBJECT.id == CycleTask.subject_id)
        .outerjoin(ReviewCycle, ReviewCycle.id == CycleTask.cycle_id)
        .where(Reminder.id.in_(list(ids)))
        .order_by(Reminder.id),
        {"now": now},
    ).all()
    held = [_held(r, now) for r in rows]
    digests = {h.recipient_id: h for h in held if h.rule == ReminderRule.DIGEST}
    if digests:
        for manager_id, item in _overdue_of_reports(connection, list(digests), now=now):
            digests[manager_id].items.append(item)
    return held


def _held(row: Any, now: datetime) -> Held:
    rule = ReminderRule(row.rule)
    held = Held(
        id=row.id,
        rule=rule,
        channel=Channel(row.channel),
        attempts=row.attempts,
        recipient_id=row.recipient_id,
        recipient_name=row.name,
        email=row.email,
        department=row.department,
        muted=bool(row.muted),
        today=row.today if rule != ReminderRule.DIGEST else now.astimezone(UTC).date(),
    )
    if rule != ReminderRule.DIGEST:
        held.task_open = (
            row.task_status == TaskStatus.OPEN and row.cycle_status == CycleStatus.STARTED
        )
        own = row.subject_id == row.assignee_id
        chat = held.channel in CHAT_CHANNELS
        held.items.append(
            TaskItem(
                cycle=row.cycle,
                kind=TaskKind(row.kind),
                due_on=row.due_on,
                subject_name=None if own or chat else row.subject_name,
            )
        )
    return held


def _overdue_of_reports(
    connection: Connection, managers: list[int], *, now: datetime
) -> Iterator[tuple[int, TaskItem]]:
    """(manager, item) for every overdue task of the managers' direct reports, by report
    name and due day. A digest names the report and the kind of task, never the task's
    subject (a peer's feedback request would tell the manager who reviews whom)."""
    report = aliased(Person)
    rows = connection.execute(
        select(report.manager_id, report.name, CycleTask.kind, CycleTask.due_on, ReviewCycle.name)
        .join(report, report.id == CycleTask.assignee_id)
        .join(ReviewCycle, ReviewCycle.id == CycleTask.cycle_id)
        .where(
            report.manager_id.in_(managers),
            ReviewCycle.status == CycleStatus.STARTED,
            OVERDUE,
            # never feedback about the manager: the digest would tell who has answered
            CycleTask.subject_id != report.manager_id,
        )
        .order_by(report.manager_id, report.name, CycleTask.due_on, CycleTask.id),
        {"now": now},
    )
    for manager_id, name, kind, due_on, cycle in rows:
        assert manager_id is not None  # chosen by manager
        yield (
            manager_id,
            TaskItem(cycle=cycle, kind=TaskKind(kind), due_on=due_on, assignee_name=name),
        )


def content_of(held: Held, settings: Settings) -> ReminderContent | None:
    """What the row's message says; None when it should not go (its task is done, the
    recipient muted this rule since, a digest with nothing overdue any more)."""
    if held.rule in NON_ESSENTIAL and held.muted:
        return None
    if not held.task_open or not held.items:
        return None
    assert held.today is not None
    today = held.today
    if held.rule == ReminderRule.OVERDUE and all(i.due_on >= today for i in held.items):
        return None  # its phase was moved later while the message waited for a retry
    page = TEAM_PAGE if held.rule == ReminderRule.DIGEST else TASKS_PAGE
    return ReminderContent(
        rule=held.rule,
        recipient_name=held.recipient_name,
        items=held.items,
        link=public_base(settings) + page,
        today=held.today,
    )


# --- sending -------------------------------------------------------------------------------


class Sender(Protocol):
    def send(self, held: Held, content: ReminderContent) -> None: ...


class EmailSender:
    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer

    def send(self, held: Held, content: ReminderContent) -> None:
        message = build_email(
            content, reminder_id=held.id, to=held.email, sender=self.mailer.sender
        )
        self.mailer.send(message)


class ChatSender:
    def __init__(self, poster: WebhookPoster, settings: Settings) -> None:
        self.poster = poster
        self.settings = settings

    def send(self, held: Held, content: ReminderContent) -> None:
        url = webhook_for(self.settings, held.channel, held.department)
        if url is None:
            raise DeliveryFailed(f"no {held.channel} webhook for the department any more")
        if held.channel == Channel.SLACK:
            self.poster.post(url, slack_message(content))
        else:
            self.poster.post(url, teams_message(content))


@contextmanager
def senders(settings: Settings, channels: Sequence[Channel]) -> Iterator[dict[Channel, Sender]]:
    """A sender per configured channel, their connections closed at the end."""
    with ExitStack() as stack:
        found: dict[Channel, Sender] = {}
        if Channel.EMAIL in channels:
            found[Channel.EMAIL] = EmailSender(stack.enter_context(SmtpMailer(settings)))
        chats = [c for c in channels if c in CHAT_CHANNELS]
        if chats:
            poster = stack.enter_context(WebhookPoster(settings))
            for channel in chats:
                found[channel] = ChatSender(poster, settings)
        yield found


@dataclass
class _Batch:
    """Outcomes of one batch, written in a few statements."""

    sent: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    untried: list[int] = field(default_factory=list)


def _mark_sent(engine: Engine, ids: list[int], now: datetime) -> None:
    if not ids:
        return
    with engine.begin() as conn:
        conn.execute(
            update(Reminder)
            .where(Reminder.id.in_(ids), Reminder.status == MessageStatus.SENDING)
            .values(status=MessageStatus.SENT, sent_at=now, last_error=None, updated_at=now)
        )


def _mark_failed(
    engine: Engine, held: Held, reason: str, now: datetime, settings: Settings
) -> MessageStatus:
    status = (
        MessageStatus.GAVE_UP
        if held.attempts >= settings.reminder_max_attempts
        else MessageStatus.FAILED
    )
    with engine.begin() as conn:
        conn.execute(
            update(Reminder)
            .where(Reminder.id == held.id)
            .values(
                status=status,
                last_error=reason,
                next_attempt_at=now + backoff(held.attempts),
                updated_at=now,
            )
        )
    return status


def _finish(engine: Engine, batch: _Batch, now: datetime) -> None:
    _mark_sent(engine, batch.sent, now)
    with engine.begin() as conn:
        if batch.skipped:
            conn.execute(
                update(Reminder)
                .where(Reminder.id.in_(batch.skipped))
                .values(status=MessageStatus.SKIPPED, updated_at=now)
            )
        if batch.untried:
            conn.execute(
                update(Reminder)
                .where(Reminder.id.in_(batch.untried))
                .values(
                    status=MessageStatus.PENDING,
                    attempts=Reminder.attempts - 1,
                    last_error=NOT_TRIED,
                    updated_at=now,
                )
            )


Clock = Callable[[], datetime]


def pass_clock(now: datetime) -> Clock:
    """The pass's time: `now` at its start, moving on with the real clock, so a row held
    late in a long pass is stamped when it was held (a lease counts from there) and a test
    can still set the day."""
    started = time.monotonic()
    return lambda: now + timedelta(seconds=time.monotonic() - started)


def deliver_channel(
    engine: Engine, settings: Settings, channel: Channel, sender: Sender, *, clock: Clock
) -> ChannelOutcome:
    """Send every sendable message of one channel, a batch at a time, until none is left
    or the channel is down."""
    outcome = ChannelOutcome()
    lease = timedelta(seconds=settings.reminder_lease_s)
    while True:
        with engine.begin() as conn:
            ids = pick(conn, channel, now=clock(), lease=lease, limit=BATCH)
        if not ids:
            return outcome
        with engine.connect() as conn:
            held_rows = load(conn, ids, now=clock())
        down = _send_batch(engine, settings, channel, sender, held_rows, outcome, clock)
        if down:
            return outcome


def _send_batch(
    engine: Engine,
    settings: Settings,
    channel: Channel,
    sender: Sender,
    held_rows: list[Held],
    outcome: ChannelOutcome,
    clock: Clock,
) -> bool:
    """Send one held batch, recording every outcome; whether the channel went down."""
    metrics = process_metrics()
    batch, down = _Batch(), False
    for held in held_rows:
        content = None if down else content_of(held, settings)
        if down:
            batch.untried.append(held.id)
        elif content is None:
            batch.skipped.append(held.id)
        elif (failure := _try(sender, held, content)) is not None:
            status = _mark_failed(engine, held, str(failure), clock(), settings)
            outcome.gave_up += status == MessageStatus.GAVE_UP
            outcome.failed += status == MessageStatus.FAILED
            metrics.reminder(channel, "failed")
            down = failure.channel_down
        else:
            batch.sent.append(held.id)
            metrics.reminder(channel, "sent")
            if len(batch.sent) >= MARK_EVERY:
                _mark_sent(engine, batch.sent, clock())
                outcome.sent += len(batch.sent)
                batch.sent = []
    outcome.sent += len(batch.sent)
    outcome.skipped += len(batch.skipped)
    outcome.not_tried += len(batch.untried)
    _finish(engine, batch, clock())
    return down


def _try(sender: Sender, held: Held, content: ReminderContent) -> DeliveryFailed | None:
    """Send one message: None, or the failure (logged by kind and code, never the body)."""
    try:
        sender.send(held, content)
    except DeliveryFailed as exc:
        log.warning(
            "reminder %s (%s) not delivered: %s",
            held.id,
            held.channel,
            exc,
            extra={"reminder_id": held.id, "channel": str(held.channel)},
        )
        return exc
    return None


def run_pass(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    cycle_id: int | None = None,
    dry_run: bool = False,
) -> PassSummary:
    """Claim what is due now and send everything waiting (or, dry, count them)."""
    now = now or datetime.now(UTC)
    clock = pass_clock(now)
    channels = channels_of(settings)
    lease = timedelta(seconds=settings.reminder_lease_s)
    if dry_run:
        with engine.connect() as conn:
            claimed = would_claim(conn, settings, now=now, cycle_id=cycle_id)
            count = waiting(conn, channels, now=now, lease=lease)
        return PassSummary(dry_run=True, channels=channels, claimed=claimed, waiting=count)
    with engine.begin() as conn:
        claimed = claim_due(conn, settings, now=now, cycle_id=cycle_id)
        unsure = mark_unsure(conn, now=now, lease=lease)
        count = waiting(conn, channels, now=now, lease=lease)
    summary = PassSummary(
        dry_run=False, channels=channels, claimed=claimed, waiting=count, unsure=unsure
    )
    with senders(settings, channels) as by_channel:
        for channel, sender in by_channel.items():
            summary.outcomes[channel] = deliver_channel(
                engine, settings, channel, sender, clock=clock
            )
    if unsure:
        log.warning("%s chat reminders marked unsure after their worker stopped", unsure)
    log.info(
        "reminder pass: %s claimed, %s waiting",
        sum(c.count for c in claimed),
        count,
        extra={"claimed": sum(c.count for c in claimed), "waiting": count},
    )
    return summary
