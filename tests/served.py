"""An ASGI app under a real uvicorn server in a thread, on a free local port: what a
browser (tests/test_e2e.py) or an identity provider's client (tests/scim_server.py) talks
to. The same HTTP server `fairdraft serve` runs, on the test's own database."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp


@contextmanager
def served(app: ASGIApp, *, stop_s: float = 10) -> Iterator[str]:
    """The app's base URL until the block ends; then the server is told to stop and
    given `stop_s` to finish what it serves."""
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
        thread.join(stop_s)
        listener.close()
