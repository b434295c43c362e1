"""Work spread over helper processes: each claims the next item of one shared list.

A cycle's drafting is CPU work around the model calls (retrieval, the injection scan, the
HTTP client, the citation check, storing), and one Python process does CPU work on one
core at a time. So a large cycle is spread: the process that asked drafts too, and helper
processes started here draft beside it. Every process claims the next undrafted item
from one counter they share, so a helper that starts late or runs slow simply claims
fewer, and each sends what it drafted back on a queue as it goes.

Helpers are started with "spawn", a fresh interpreter: the asking process may be a job
worker or the app, with threads of their own, which a forked copy would inherit half-way
through whatever they were doing. The price is the helper's imports (two or three seconds of
CPU), which is why only a large cycle is spread.

Generic on purpose: the item list, the payload and the function a helper runs are the
caller's (service.drafting.run); the function must be a module-level one, so a fresh
interpreter can import it.

Metrics: what a helper records (its model calls) is in its own process's values, which a
scrape reads in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, which helpers inherit) and
not otherwise; the drafts themselves are counted by the asking process.
"""

import asyncio
import multiprocessing
import pickle
import queue
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from typing import TYPE_CHECKING, Any

from domain.errors import Unavailable

POLL_S = 0.02  # how often the asking process looks for helpers' results
JOIN_S = 10.0  # how long a helper that was told to stop may take to end before it is killed

if TYPE_CHECKING:  # generic only to the type checker
    from multiprocessing.sharedctypes import Synchronized

    Counter = Synchronized[int]  # a multiprocessing.Value("q")
else:
    Counter = Any
Send = Callable[[Any], None]
HelperMain = Callable[[Any, int, "Claims", Send], None]


class HelperFailed(Unavailable):
    """A helper process ended without finishing its part: what it drafted is kept, the rest
    is left for the next run (which skips what is stored)."""


class Claims:
    """The index of the next unclaimed item, shared by every process of one spread."""

    def __init__(self, counter: Counter, total: int) -> None:
        self._counter = counter
        self.total = total

    def next(self) -> int | None:
        """The next item's index, or None once every item is claimed (or `stop` was called)."""
        with self._counter.get_lock():
            index = int(self._counter.value)
            if index >= self.total:
                return None
            self._counter.value = index + 1
            return index

    def stop(self) -> None:
        """Claim what is left, so no process starts another item."""
        with self._counter.get_lock():
            self._counter.value = self.total


@dataclass(frozen=True)
class _Message:
    helper: int
    kind: str  # "result", "done" or "error"
    value: Any = None


def _helper(
    main: HelperMain, payload: Any, index: int, counter: Counter, total: int, out: Any
) -> None:
    """A helper's whole life: run `main`, then say how it ended (an error only as one the
    asking process can rebuild, see `_portable`)."""

    def send(value: Any) -> None:
        out.put(_Message(index, "result", value))

    try:
        main(payload, index, Claims(counter, total), send)
    except BaseException as exc:  # every ending is reported, then the process ends
        out.put(_Message(index, "error", _portable(exc)))
    else:
        out.put(_Message(index, "done"))


def _portable(exc: BaseException) -> BaseException:
    """The error itself when it survives pickling whole (class and message); otherwise a
    HelperFailed naming only its class, since its text may quote evidence."""
    try:
        again = pickle.loads(pickle.dumps(exc))
    except Exception:  # any error that cannot travel is replaced
        again = None
    if isinstance(again, BaseException) and type(again) is type(exc):
        return again
    return HelperFailed(f"a drafting process failed ({type(exc).__name__})")


class Spread:
    """Helper processes working through `total` items beside the asking process.

    Use as an async context manager: on the way out every helper has ended (told to stop and,
    past `JOIN_S`, killed), whatever happened.
    """

    def __init__(self, main: HelperMain, payload: Any, *, helpers: int, total: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._counter: Counter = context.Value("q", 0)
        self.claims = Claims(self._counter, total)
        self._out = context.Queue()
        self._processes: list[SpawnProcess] = [
            context.Process(
                target=_helper,
                args=(main, payload, index, self._counter, total, self._out),
                name=f"fairdraft-drafting-{index}",
            )
            for index in range(1, helpers + 1)
        ]
        self._ended: set[int] = set()

    async def __aenter__(self) -> "Spread":
        try:
            for process in self._processes:
                process.start()
        except BaseException:
            self._processes = [p for p in self._processes if p.pid is not None]
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.claims.stop()
        await asyncio.to_thread(self._end_all)

    def _end_all(self) -> None:
        for process in self._processes:
            process.join(JOIN_S)
            if process.is_alive():
                process.kill()
                process.join()
        self._out.close()
        self._out.join_thread()

    async def collect(self, receive: Callable[[Any], None]) -> None:
        """Pass each helper's results to `receive` as they come, until every helper has
        ended; raise the first error a helper reports, or HelperFailed for one that ended
        without a word (killed, out of memory)."""
        while len(self._ended) < len(self._processes):
            # Which had exited before the read: a helper's messages are all in the pipe
            # before it exits, so one that had exited and left nothing unread died silently.
            exited = {i for i, p in enumerate(self._processes, 1) if p.exitcode is not None}
            message = self._next()
            if message is None:
                self._fail_if_silent(exited - self._ended)
                await asyncio.sleep(POLL_S)
            elif message.kind == "result":
                receive(message.value)
            else:
                self._ended.add(message.helper)
                if message.kind == "error":
                    self.claims.stop()
                    raise message.value

    def _next(self) -> _Message | None:
        try:
            message: _Message = self._out.get_nowait()
        except queue.Empty:
            return None
        return message

    def _fail_if_silent(self, silent: set[int]) -> None:
        if not silent:
            return
        self.claims.stop()
        codes = ", ".join(str(self._processes[i - 1].exitcode) for i in sorted(silent))
        raise HelperFailed(
            f"a drafting process ended unexpectedly (exit code {codes}); the drafts stored "
            "so far are kept: run the cycle again to finish it"
        )
