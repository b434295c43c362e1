"""What a reminder says, in each format: a plain-text and an HTML email body, a Slack
incoming-webhook message and a Microsoft Teams (Workflows) message.

Every name in a message (the recipient's, a report's, a peer's) came from an HRIS export
or a person and is treated as hostile: escaped for HTML (`html.escape`), for Slack's mrkdwn
(`&`, `<`, `>` as entities: Slack's control characters, so `<!channel>` in a name pings
nobody) and for the Teams card's Markdown subset (a backslash before each mark, so
`[x](https://evil)` stays text); the JSON of a chat message is written by `json` (through
pydantic), never by pasting strings, so no name can end a string or add a key. Subjects of
emails carry no names at all (a header has no room for a hostile one). Chat messages name
the person reminded, their task's kind and due day; a digest (a team's missed deadlines)
goes by email to the manager alone.
"""

import html
import re
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from domain.phases import TaskKind
from domain.reminders import ReminderRule

# What each task asks, for the one who must do it; {subject} is the other person's name.
OWN_TASK: dict[TaskKind, str] = {
    TaskKind.WRITE_SELF_REFLECTION: "write your self-reflection",
    TaskKind.NOMINATE_PEERS: "nominate the peers who give you feedback",
    TaskKind.ACKNOWLEDGE_REVIEW: "read and acknowledge your review",
    TaskKind.CALIBRATE_COHORT: "calibrate your panel's cohort",
}
THEIR_TASK: dict[TaskKind, str] = {  # in a manager's digest, about a report's own task
    TaskKind.WRITE_SELF_REFLECTION: "write their self-reflection",
    TaskKind.NOMINATE_PEERS: "nominate their peers",
    TaskKind.ACKNOWLEDGE_REVIEW: "acknowledge their review",
}
OTHERS_TASK: dict[TaskKind, str] = {
    TaskKind.APPROVE_NOMINATIONS: "approve {subject}'s peer nominations",
    TaskKind.WRITE_MANAGER_FEEDBACK: "write {subject}'s manager feedback",
    TaskKind.GIVE_PEER_FEEDBACK: "give peer feedback on {subject}",
    TaskKind.GIVE_UPWARD_FEEDBACK: "give upward feedback on {subject}",
    TaskKind.WRITE_PROMOTION_PACKET: "write {subject}'s promotion packet",
}
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<])")


class TaskItem(BaseModel):
    """One task a message is about."""

    cycle: str
    kind: TaskKind
    due_on: date
    subject_name: str | None = None  # whose review it serves, where not the assignee's own
    assignee_name: str | None = None  # in a digest: the report whose task it is


class ReminderContent(BaseModel):
    """Everything one message says, before it takes a format."""

    rule: ReminderRule
    recipient_name: str
    items: list[TaskItem]
    link: str = Field(description="Where the tasks are: public URL + page path.")
    today: date


def task_words(item: TaskItem) -> str:
    """The task as words (names raw: each format escapes them)."""
    if item.kind in OTHERS_TASK:
        return OTHERS_TASK[item.kind].format(subject=item.subject_name or "a colleague")
    words = THEIR_TASK if item.assignee_name else OWN_TASK
    return words.get(item.kind, str(item.kind).replace("_", " "))


def _when(item: TaskItem, today: date) -> str:
    days = (item.due_on - today).days
    if days < 0:
        late = -days
        return f"was due on {item.due_on.isoformat()} ({late} day{'s' * (late != 1)} ago)"
    if days == 0:
        return f"is due today ({item.due_on.isoformat()})"
    return f"is due on {item.due_on.isoformat()} (in {days} day{'s' * (days != 1)})"


def subject_line(content: ReminderContent) -> str:
    """The email's subject: no names, nothing a person wrote."""
    if content.rule == ReminderRule.DIGEST:
        return f"Your team's overdue review tasks ({len(content.items)})"
    item = content.items[0]
    if content.rule == ReminderRule.OVERDUE:
        return f"Overdue: a review task of {item.cycle} was due on {item.due_on.isoformat()}"
    return f"Reminder: a review task of {item.cycle} is due on {item.due_on.isoformat()}"


def _intro(content: ReminderContent) -> str:
    if content.rule == ReminderRule.DIGEST:
        return "These review tasks of your team are past their due day:"
    if content.rule == ReminderRule.OVERDUE:
        return "This review task is past its due day:"
    return "This review task is due soon:"


def _lines(content: ReminderContent, escape: "type[_Escape]") -> list[str]:
    lines = []
    for item in content.items:
        words = escape.text(task_words(item))
        who = f"{escape.text(item.assignee_name)}: " if item.assignee_name else ""
        lines.append(f"{who}{words} ({escape.text(item.cycle)}) {_when(item, content.today)}")
    return lines


class _Escape:
    @staticmethod
    def text(value: str) -> str:
        return value


class _Html(_Escape):
    @staticmethod
    def text(value: str) -> str:
        return html.escape(value, quote=True)


class _Slack(_Escape):
    @staticmethod
    def text(value: str) -> str:
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Teams(_Escape):
    @staticmethod
    def text(value: str) -> str:
        return _MARKDOWN.sub(r"\\\1", value)


def plain_text(content: ReminderContent) -> str:
    """The email's text/plain part."""
    lines = [f"Hello {content.recipient_name},", "", _intro(content), ""]
    lines += [f"- {line}" for line in _lines(content, _Escape)]
    lines += ["", f"Open your tasks: {content.link}", "", _footer(content)]
    return "\n".join(lines) + "\n"


def html_body(content: ReminderContent) -> str:
    """The email's text/html part: every value escaped, the link an attribute in quotes."""
    items = "".join(f"<li>{line}</li>" for line in _lines(content, _Html))
    link = _Html.text(content.link)
    return (
        "<!DOCTYPE html><html><body>"
        f"<p>Hello {_Html.text(content.recipient_name)},</p>"
        f"<p>{_intro(content)}</p><ul>{items}</ul>"
        f'<p><a href="{link}">Open your tasks</a></p>'
        f"<p><small>{_Html.text(_footer(content))}</small></p>"
        "</body></html>"
    )


def _footer(content: ReminderContent) -> str:
    if content.rule == ReminderRule.OVERDUE:
        return "fairdraft tells you about a missed due day even when reminders are muted."
    return "You can mute reminders like this one in fairdraft (GET/PUT /api/v1/me/reminders)."


class SlackText(BaseModel):
    type: str = "mrkdwn"
    text: str


class SlackBlock(BaseModel):
    type: str = "section"
    text: SlackText


class SlackMessage(BaseModel):
    """A Slack incoming-webhook message: `text` (the notification's fallback) and blocks."""

    text: str
    blocks: list[SlackBlock]


def slack_message(content: ReminderContent) -> SlackMessage:
    name = _Slack.text(content.recipient_name)
    lines = "\n".join(f"• {line}" for line in _lines(content, _Slack))
    link = f"<{_Slack.text(content.link)}|Open your tasks>"
    body = f"*Reminder for {name}*: {_intro(content)}\n{lines}\n{link}"
    return SlackMessage(
        text=f"{name}: {subject_line(content)}",
        blocks=[SlackBlock(text=SlackText(text=body))],
    )


class TeamsTextBlock(BaseModel):
    type: str = "TextBlock"
    text: str
    wrap: bool = True


class TeamsOpenUrl(BaseModel):
    type: str = "Action.OpenUrl"
    title: str = "Open your tasks"
    url: str


class TeamsCard(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(
        default="http://adaptivecards.io/schemas/adaptive-card.json", alias="$schema"
    )
    type: str = "AdaptiveCard"
    version: str = "1.4"
    body: list[TeamsTextBlock]
    actions: list[TeamsOpenUrl]


class TeamsAttachment(BaseModel):
    contentType: str = "application/vnd.microsoft.card.adaptive"  # Teams' own spelling
    content: TeamsCard


class TeamsMessage(BaseModel):
    """A Teams Workflows ("post to a channel when a webhook request is received") message:
    one Adaptive Card as an attachment."""

    type: str = "message"
    attachments: list[TeamsAttachment]


def teams_message(content: ReminderContent) -> TeamsMessage:
    name = _Teams.text(content.recipient_name)
    blocks = [TeamsTextBlock(text=f"Reminder for {name}: {_Teams.text(_intro(content))}")]
    blocks += [TeamsTextBlock(text=f"- {line}") for line in _lines(content, _Teams)]
    card = TeamsCard(body=blocks, actions=[TeamsOpenUrl(url=content.link)])
    return TeamsMessage(attachments=[TeamsAttachment(content=card)])
