"""Reminders' names: the rules that make a reminder, the channels that carry one, and the
states of a message on its way (service/cycles/reminders.py, service/notify/).

Rules are module constants rather than a data file: each is a query in code (what "due
soon" or "overdue" means is SQL over a cycle's tasks), so a file could only list names the
code already has to know. Their one knob, how many days ahead "due soon" looks, is a setting
(FAIRDRAFT_REMINDER_DUE_SOON_DAYS).
"""

from enum import StrEnum


class ReminderRule(StrEnum):
    """Why a message is sent: one of a person's open tasks is due within N days
    (`due_soon`) or past its due day (`overdue`); or a manager's daily `digest` of their
    direct reports' overdue tasks."""

    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    DIGEST = "digest"


REMINDER_RULES: tuple[ReminderRule, ...] = tuple(ReminderRule)

# Muting stops these; an overdue task of one's own is still told (essential): a deadline
# already missed is the one reminder the cycle cannot run without.
NON_ESSENTIAL: frozenset[ReminderRule] = frozenset({ReminderRule.DUE_SOON, ReminderRule.DIGEST})
ESSENTIAL: frozenset[ReminderRule] = frozenset(REMINDER_RULES) - NON_ESSENTIAL


class Channel(StrEnum):
    EMAIL = "email"
    SLACK = "slack"
    TEAMS = "teams"


CHANNELS: tuple[Channel, ...] = tuple(Channel)
CHAT_CHANNELS: tuple[Channel, ...] = (Channel.SLACK, Channel.TEAMS)


class MessageStatus(StrEnum):
    """pending: claimed, not tried yet; sending: a worker holds it (since `claimed_at`);
    sent; failed: the last try failed, tried again from `next_attempt_at`; unsure: a chat
    message whose worker stopped mid-send (it may have arrived; a person decides); skipped:
    its task was done before it went; gave_up: failed on every allowed try."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNSURE = "unsure"
    SKIPPED = "skipped"
    GAVE_UP = "gave_up"


MESSAGE_STATUSES: tuple[MessageStatus, ...] = tuple(MessageStatus)
