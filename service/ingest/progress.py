"""Progress reporting that ingest code can call without knowing about terminals.

On a terminal a long task draws a bar; anywhere else (a CI log, `2>&1 | tee`, a file) the
bar would show nothing, so the same task writes plain lines instead: one at the start, one
each time another tenth is done (at most one a second) or after a quiet stretch of
`every_seconds`, and one at the end. Both go to stderr, so `--json` on stdout stays one
document.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

Advance = Callable[[int], None]
Clock = Callable[[], float]


class ProgressReporter(Protocol):
    def task(self, description: str, total: int) -> AbstractContextManager[Advance]: ...


class NoProgress:
    def task(self, description: str, total: int) -> AbstractContextManager[Advance]:
        return nullcontext(lambda _n: None)


@dataclass
class _Lines:
    """The state of one task reported as lines: what is done, and when the last line was."""

    say: Callable[[str], None]
    description: str
    total: int
    clock: Clock
    every_seconds: float
    steps: int = 10  # a line each tenth done ...
    min_gap: float = 1.0  # ... but never more than one a second for those
    done: int = 0
    started: float = field(init=False)
    last_line: float = field(init=False)
    next_mark: int = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.last_line = self.clock()
        self.next_mark = self._mark_after(0)
        self.say(f"{self.description}: 0/{self.total}")

    def _mark_after(self, done: int) -> int:
        """The count at the next tenth boundary after `done`."""
        step = max(1, -(-self.total // self.steps))
        return (done // step + 1) * step

    def advance(self, n: int) -> None:
        self.done = min(self.total, self.done + n)
        now = self.clock()
        at_mark = self.done >= self.next_mark and now - self.last_line >= self.min_gap
        quiet = now - self.last_line >= self.every_seconds
        if (at_mark or quiet) and self.done < self.total:
            self.next_mark = self._mark_after(self.done)
            self.last_line = now
            self.say(self._line(now))

    def _line(self, now: float) -> str:
        elapsed = now - self.started
        share = self.done / self.total if self.total else 1.0
        line = f"{self.description}: {self.done}/{self.total} ({share:.0%}), {elapsed:.0f} s"
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            line += f", {rate:.1f}/s, about {(self.total - self.done) / rate:.0f} s left"
        return line

    def finish(self) -> None:
        elapsed = self.clock() - self.started
        rate = f" ({self.done / elapsed:.1f}/s)" if elapsed > 0 and self.done else ""
        self.say(f"{self.description}: {self.done}/{self.total} done in {elapsed:.1f} s{rate}")

    def stop(self) -> None:
        elapsed = self.clock() - self.started
        self.say(f"{self.description}: stopped at {self.done}/{self.total} after {elapsed:.1f} s")


class LineProgress:
    """Progress as plain lines on a console, for output that no bar can draw on."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        min_total: int = 500,
        every_seconds: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.min_total = min_total
        self.every_seconds = every_seconds
        self.clock = clock

    def _say(self, line: str) -> None:
        # The description may name a model or a file: plain text, one line, never wrapped.
        self.console.print(Text(line), soft_wrap=True, highlight=False)

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        if total < self.min_total or total <= 0:
            yield lambda _n: None
            return
        lines = _Lines(self._say, description, total, self.clock, self.every_seconds)
        try:
            yield lines.advance
        except BaseException:
            lines.stop()
            raise
        lines.finish()


class RichProgress:
    """A progress bar per task on stderr, for work big enough to wait for; when stderr is
    not a terminal, lines instead (`LineProgress`), so logs and CI see the work move."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        min_total: int = 500,
        every_seconds: float = 10.0,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.min_total = min_total
        self.lines = LineProgress(self.console, min_total=min_total, every_seconds=every_seconds)

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        if not self.console.is_terminal:
            with self.lines.task(description, total) as advance:
                yield advance
            return
        if total < self.min_total:
            yield lambda _n: None
            return
        columns = (
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=True) as progress:
            task_id = progress.add_task(description, total=total)
            yield lambda n: progress.advance(task_id, n)


@contextmanager
def stage(console: Console, description: str, *, clock: Clock = time.monotonic) -> Iterator[None]:
    """One step of work with nothing to count: a spinner on a terminal; anywhere else a
    line as it starts and one as it ends (or stops), with how long it took."""
    if console.is_terminal:
        with console.status(Text(description)):
            yield
        return
    say = LineProgress(console)._say
    started = clock()
    say(f"{description} ...")
    try:
        yield
    except BaseException:
        say(f"{description}: stopped after {clock() - started:.1f} s")
        raise
    say(f"{description}: done in {clock() - started:.1f} s")
