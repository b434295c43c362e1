"""Progress where no bar can be drawn (a CI log, a file, a pipe): plain lines, a line as a
task starts, one each tenth (never more than one a second) or after a quiet stretch, and one
as it ends or stops; on a terminal, the bar and no lines. Timed with a clock the test moves."""

import io

import pytest
from rich.console import Console

from service.ingest.progress import LineProgress, RichProgress, stage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _piped() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=60, force_terminal=False), buffer


def _lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def test_a_long_task_prints_a_line_each_tenth_with_its_rate_and_what_is_left() -> None:
    console, buffer = _piped()
    clock = Clock()
    progress = LineProgress(console, min_total=0, clock=clock)

    with progress.task("embedding chunks with all-MiniLM-L6-v2", 1000) as advance:
        for _ in range(100):
            clock.now += 0.5
            advance(10)

    lines = _lines(buffer)
    assert lines[0] == "embedding chunks with all-MiniLM-L6-v2: 0/1000"
    assert lines[1] == (
        "embedding chunks with all-MiniLM-L6-v2: 100/1000 (10%), 5 s, 20.0/s, about 45 s left"
    )
    assert len(lines) == 11  # start, nine tenths, the end (never wrapped at 60 columns)
    assert lines[-1] == "embedding chunks with all-MiniLM-L6-v2: 1000/1000 done in 50.0 s (20.0/s)"


def test_a_fast_task_is_not_a_flood_of_lines() -> None:
    console, buffer = _piped()
    clock = Clock()

    with LineProgress(console, min_total=0, clock=clock).task("drafting", 10_000) as advance:
        for _ in range(10_000):
            clock.now += 0.00001
            advance(1)

    assert [line.split(":")[1].split()[0] for line in _lines(buffer)] == ["0/10000", "10000/10000"]


def test_a_slow_task_prints_after_a_quiet_stretch_between_tenths() -> None:
    console, buffer = _piped()
    clock = Clock()

    with LineProgress(console, min_total=0, every_seconds=10, clock=clock).task(
        "drafting", 1000
    ) as advance:
        for _ in range(3):
            clock.now += 11
            advance(1)

    lines = _lines(buffer)
    assert [line.split(",")[0] for line in lines[1:4]] == [
        "drafting: 1/1000 (0%)",
        "drafting: 2/1000 (0%)",
        "drafting: 3/1000 (0%)",
    ]


def test_a_task_that_fails_says_where_it_stopped() -> None:
    console, buffer = _piped()
    clock = Clock()

    with (
        pytest.raises(RuntimeError),
        LineProgress(console, min_total=0, clock=clock).task("ingest", 50) as advance,
    ):
        advance(20)
        clock.now += 2
        raise RuntimeError("database went away")

    assert _lines(buffer)[-1] == "ingest: stopped at 20/50 after 2.0 s"


def test_small_tasks_print_nothing() -> None:
    console, buffer = _piped()

    with LineProgress(console, min_total=500).task("ingest", 499) as advance:
        advance(499)

    assert buffer.getvalue() == ""


def test_the_rich_progress_prints_lines_when_not_on_a_terminal_and_a_bar_when_on_one() -> None:
    piped, piped_buffer = _piped()
    terminal_buffer = io.StringIO()
    terminal = Console(file=terminal_buffer, force_terminal=True, width=80)

    for console in (piped, terminal):
        with RichProgress(console, min_total=0).task("embedding [b]chunks[/b]", 20) as advance:
            advance(20)

    assert _lines(piped_buffer)[0] == "embedding [b]chunks[/b]: 0/20"  # as typed, not markup
    assert "embedding [b]chunks[/b]: 0/20" not in terminal_buffer.getvalue()


def test_a_stage_says_when_it_starts_and_how_long_it_took() -> None:
    console, buffer = _piped()
    clock = Clock()

    with stage(console, "bias report 2026-H1", clock=clock):
        clock.now += 3.25

    assert _lines(buffer) == ["bias report 2026-H1 ...", "bias report 2026-H1: done in 3.2 s"]
