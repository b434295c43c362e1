"""Chat messages through incoming webhooks (Slack's incoming webhooks, Microsoft Teams'
Workflows webhooks): a JSON POST to a URL an administrator configured in settings, by
department with a "*" default. A URL never comes from a request or from the data, so no
user can point fairdraft at an address of their choosing (no SSRF); it is a secret (it
lets anyone post to the channel) and is never logged: a failure names the status code.
"""

from types import TracebackType

import httpx
from pydantic import BaseModel, SecretStr

from domain.reminders import Channel
from service.notify.errors import DeliveryFailed
from service.settings import Settings

DEFAULT_DEPARTMENT = "*"


def webhook_for(settings: Settings, channel: Channel, department: str) -> SecretStr | None:
    """The department's webhook of this kind, else the "*" one, else None."""
    hooks = (
        settings.reminder_slack_webhooks
        if channel == Channel.SLACK
        else settings.reminder_teams_webhooks
    )
    return hooks.get(department, hooks.get(DEFAULT_DEPARTMENT))


def chat_departments(settings: Settings, channel: Channel) -> tuple[bool, list[str]]:
    """(whether a "*" default exists, the departments named) of a chat channel."""
    hooks = (
        settings.reminder_slack_webhooks
        if channel == Channel.SLACK
        else settings.reminder_teams_webhooks
    )
    return DEFAULT_DEPARTMENT in hooks, sorted(d for d in hooks if d != DEFAULT_DEPARTMENT)


class WebhookPoster:
    """POSTs messages over one HTTP client (connections kept), no redirects followed."""

    def __init__(self, settings: Settings) -> None:
        self._client = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)

    def __enter__(self) -> "WebhookPoster":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._client.close()

    def post(self, url: SecretStr, message: BaseModel) -> None:
        """One message; a 2xx answer is delivered, anything else a DeliveryFailed."""
        body = message.model_dump_json(by_alias=True)
        try:
            answer = self._client.post(
                url.get_secret_value(),
                content=body.encode("utf-8"),
                headers={"Content-Type": "application/json"},
            )
        except httpx.TimeoutException:
            raise DeliveryFailed("webhook timed out", channel_down=True) from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(
                f"webhook unreachable ({type(exc).__name__})", channel_down=True
            ) from None
        if not answer.is_success:
            raise DeliveryFailed(f"webhook answered {answer.status_code}")
