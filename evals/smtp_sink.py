"""A local SMTP server that counts what it receives and keeps nothing: the reminder
benchmark's mail server (aiosmtpd), run as its own process so that its work does not
share the benchmark's interpreter.

    python -m evals.smtp_sink --port 8025 --count-file /tmp/sink-count

It writes how many messages (and distinct Message-IDs) it took to --count-file, as JSON,
when told to stop (SIGTERM or SIGINT).
"""

import argparse
import json
import re
import signal
import threading
from pathlib import Path
from types import FrameType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Counting:
    def __init__(self) -> None:
        self.messages = 0
        self.ids: set[bytes] = set()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages += 1
        content = envelope.original_content or b""
        found = _MESSAGE_ID.search(content)
        if found:
            self.ids.add(found.group(1))
        return "250 OK"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count-file", type=Path, required=True)
    args = parser.parse_args(argv)
    counting = Counting()
    controller = Controller(counting, hostname="127.0.0.1", port=args.port)
    controller.start()
    stop = threading.Event()

    def told(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, told)
    signal.signal(signal.SIGINT, told)
    args.count_file.write_text("{}")  # ready
    stop.wait()
    controller.stop()
    counted = {"messages": counting.messages, "message_ids": len(counting.ids)}
    args.count_file.write_text(json.dumps(counted))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
