"""The app under a real uvicorn server in a thread, with a SCIM token: what an identity
provider (and scim2-tester) talks to. A thread rather than a `fairdraft serve` process:
the same HTTP server and app factory `fairdraft serve` runs, on the test's own migrated
database, with no second Python process and embedded Postgres to start (two cores shared
by everyone); tests/test_cli_serve.py covers the command itself."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from service.app import create_app
from service.settings import Settings
from tests.served import served

SCIM_TOKEN = "scim-" + "t" * 40


@contextmanager
def serving(settings: Settings, engine: Engine) -> Iterator[str]:
    """The base URL of the app served on a free local port, until the block ends."""
    with served(create_app(settings, engine=engine, worker=False)) as url:
        yield url
