"""Real local stand-ins for the reminders' outside services: an SMTP server (aiosmtpd,
in a thread of the test's process) that keeps what it receives, and an HTTP server that
receives webhook POSTs and answers a status the test sets.

Both listen on 127.0.0.1 on a free port; the SMTP one can be stopped and started again on
the same port (a mail server that is down, then back)."""

import email
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import Envelope, Session


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Received:
    to: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, subtype
        text: str = body.get_content()
        return text


class _Keep:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SmtpServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = email.message_from_bytes(raw, policy=default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(Received([str(t) for t in envelope.rcpt_tos], parsed))
        return "250 OK"


class MailServer:
    """aiosmtpd on 127.0.0.1:`port`; `received` holds every message, in order."""

    def __init__(self) -> None:
        self.port = free_port()
        self.keep = _Keep()
        self._controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        with self.keep.lock:
            return list(self.keep.received)

    def start(self) -> None:
        self._controller = Controller(self.keep, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class Hook:
    path: str
    body: Any


@dataclass
class HookServer:
    """Receives webhook POSTs (kept with their parsed JSON) and answers `status`."""

    status: int = 200
    hooks: list[Hook] = field(default_factory=list)
    port: int = 0

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                owner.hooks.append(Hook(self.path, json.loads(raw)))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
