"""Reminder email over SMTP with the standard library's smtplib: one connection per pass
(opened at the first message, reopened after a failure), plain SMTP, STARTTLS or TLS from
the start, and a login where a user is set.

Each message has a deterministic Message-ID made from its reminder row's id: a message
sent again after its worker stopped mid-send (fairdraft cannot know whether the server took
it) carries the same id, so the receiving system can tell it is the same message.
"""

import base64
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from types import TracebackType

from pydantic import SecretStr

from service.notify.errors import DeliveryFailed
from service.notify.messages import ReminderContent, html_body, plain_text, subject_line
from service.settings import Settings


def message_id(reminder_id: int, sender: str) -> str:
    """`<fairdraft-reminder-<id>@<sender's domain>>`: the same for every try of a row."""
    domain = sender.rsplit("@", 1)[-1]
    return f"<fairdraft-reminder-{reminder_id}@{domain}>"


# An address we write into a header and an envelope as it is: ASCII, no spaces, quotes,
# angle brackets or line breaks. Anything else (an internationalised address would need
# SMTPUTF8) is refused for that message, named, rather than sent half-right.
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


@dataclass(frozen=True)
class OutgoingEmail:
    """A message ready for the wire: envelope recipient and the RFC 5322 bytes."""

    to: str
    raw: bytes


def build_email(
    content: ReminderContent, *, reminder_id: int, to: str, sender: str
) -> OutgoingEmail:
    """A multipart/alternative email: text/plain and text/html (UTF-8, base64), the link
    in both. Written directly rather than through `email.message.EmailMessage`, whose
    header objects cost about a millisecond a message (a third of a 10,000-message pass);
    every header value is ours (the subject names nobody) or a checked address."""
    if not PLAIN_ADDRESS.fullmatch(to):
        raise DeliveryFailed("the recipient's address is not a plain ASCII address")
    boundary = f"=_fairdraft-{reminder_id}"  # "=_" never occurs in base64 text
    head = (
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject_line(content)}",
        f"Message-ID: {message_id(reminder_id, sender)}",
        f"Date: {format_datetime(datetime.now(UTC))}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    )
    parts = [
        _part(boundary, "plain", plain_text(content)),
        _part(boundary, "html", html_body(content)),
    ]
    text = "\r\n".join(head) + "\r\n\r\n" + "".join(parts) + f"--{boundary}--\r\n"
    try:
        return OutgoingEmail(to, text.encode("ascii"))
    except UnicodeEncodeError:  # a cycle named outside ASCII: not one a period parses to
        raise DeliveryFailed("a header of the message is not ASCII") from None


def _part(boundary: str, subtype: str, body: str) -> str:
    encoded = base64.encodebytes(body.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    return (
        f"--{boundary}\r\n"
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{encoded}"
    )


class SmtpMailer:
    """Sends emails through the configured server over one kept connection."""

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host or not settings.smtp_sender:
            raise ValueError("SmtpMailer needs FAIRDRAFT_SMTP_HOST and FAIRDRAFT_SMTP_SENDER")
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.security = settings.smtp_security
        self.user = settings.smtp_user
        self.password: SecretStr | None = settings.smtp_password
        self.timeout = settings.smtp_timeout_s
        self.sender = settings.smtp_sender
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> "SmtpMailer":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                smtp.starttls(context=context)
        if self.user:
            password = "" if self.password is None else self.password.get_secret_value()
            smtp.login(self.user, password)
        return smtp

    def send(self, message: OutgoingEmail) -> None:
        """Send one message; any failure is a DeliveryFailed naming its kind and the
        server's code (never the message), and drops the connection."""
        try:
            if self._smtp is None:
                try:
                    self._smtp = self._connect()
                except (OSError, smtplib.SMTPException) as exc:
                    raise DeliveryFailed(_described(exc), channel_down=True) from None
            self._smtp.sendmail(self.sender, [message.to], message.raw)
        except DeliveryFailed:
            self._drop()
            raise
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            down = isinstance(exc, (TimeoutError, ConnectionError, smtplib.SMTPServerDisconnected))
            raise DeliveryFailed(_described(exc), channel_down=down) from None

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


def _described(exc: BaseException) -> str:
    """The failure's kind and SMTP code: what an operator needs, nothing a message said
    (an SMTP error's text can quote the recipient's address; it is left out)."""
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({c for c, _ in exc.recipients.values()})
        return f"SMTP recipient refused ({', '.join(map(str, codes))})"
    if isinstance(code, int):
        return f"SMTP {type(exc).__name__} ({code})"
    return f"SMTP server unreachable ({type(exc).__name__})"
