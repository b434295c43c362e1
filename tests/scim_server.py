"""The app under a real uvicorn server in a thread, with a SCIM token: what an identity
provider (and scim2-tester) talks to. A thread rather than a `fairdraft serve` process:
the same HTTP server and app factory `fairdraft serve` runs, on the test's own migrated
database, with no second Python process and embedded Postgres to start (two cores shared
by everyone); tests/test_cli_serve.py covers the command itself."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from sqlalchemy import Engine

from service.app import create_app
from service.settings import Settings

SCIM_TOKEN = "scim-" + "t" * 40


@contextmanager
def serving(settings: Settings, engine: Engine) -> Iterator[str]:
    """The base URL of the app served on a free local port, until the block ends."""
    app = create_app(settings, engine=engine, worker=False)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
