"""The one exception hierarchy: every error fairdraft raises on purpose is one of these.

Each surface maps them once, by class: the API and the pages in one exception handler
each (service/http/errors.py, service/web/setup.py), the CLI in `service/cli_errors.py`,
the job runner by `permanent`. A message is composed by fairdraft itself from names, ids
and the user's own values, never from evidence text, so every surface may show or store it.

Standard library only, so the CLI can name these classes without importing anything heavy.
"""

from collections.abc import Mapping
from typing import ClassVar


class FairdraftError(Exception):
    """An outcome a person can act on, as opposed to a bug.

    `field` names the input at fault (a request field, a CLI option, a payload key) where
    there is one. `permanent` tells the job runner whether a retry could change the outcome.
    """

    permanent: ClassVar[bool] = True

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @property
    def reason(self) -> str:
        """The message as one line for a person; a subclass may add detail to it."""
        return str(self)

    def details(self) -> Mapping[str, object]:
        """Structured detail a surface may add to its answer (a file's bad rows, say)."""
        return {}

    def reworded(self, message: str) -> "FairdraftError":
        """The same error told in other words (a panel's pseudonyms for a person's name),
        class and field kept, so that every surface still maps it the same way."""
        self.args = (message,)
        return self


class Invalid(FairdraftError):
    """The input is malformed or out of range: a bad period, kind, file or value."""


class NotFound(FairdraftError):
    """The thing asked for does not exist, or the caller may not know that it does."""


class Refused(FairdraftError):
    """The caller may see the thing but may not do this to it."""


class Conflict(FairdraftError):
    """The thing's state forbids it now: a gate not passed, a stale edit, a final rating."""


class Unavailable(FairdraftError):
    """Something we depend on failed (the model server, a provider): try again later."""

    permanent: ClassVar[bool] = False


class Misconfigured(FairdraftError):
    """The installation is not ready (schema out of date, data files that disagree): the
    operator's to fix, not the user's."""
