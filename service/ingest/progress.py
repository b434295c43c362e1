"""Progress reporting that ingest code can call without knowing about terminals."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
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

Advance = Callable[[int], None]


class ProgressReporter(Protocol):
    def task(self, description: str, total: int) -> AbstractContextManager[Advance]: ...


class NoProgress:
    def task(self, description: str, total: int) -> AbstractContextManager[Advance]:
        return nullcontext(lambda _n: None)


class RichProgress:
    """A progress bar per task on stderr, shown only for work big enough to wait for."""

    def __init__(self, console: Console | None = None, *, min_total: int = 500) -> None:
        self.console = console or Console(stderr=True)
        self.min_total = min_total

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        if total < self.min_total or not self.console.is_terminal:
            yield lambda _n: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=True) as progress:
            task_id = progress.add_task(description, total=total)
            yield lambda n: progress.advance(task_id, n)
