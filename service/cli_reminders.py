"""Reminders at the command line: `fairdraft remind [--cycle C] [--dry-run] [--json]` runs
one reminder pass by hand, the same pass the workers' nightly periodic task runs: claim
what is due (only the named cycle's tasks with --cycle), then send everything waiting.
--dry-run counts what would be claimed and what waits, writing and sending nothing.

Like every command module, this one imports the database layer only inside the command.
"""

from typing import TYPE_CHECKING, Annotated

import typer

from domain.periods import Period
from service.cli_cycles import out
from service.cli_errors import user_errors
from service.cli_lists import JsonOption
from service.cli_output import plain, print_json
from service.cli_service import period_option
from service.settings import get_settings

if TYPE_CHECKING:
    from service.cycles.reminder_pass import PassSummary

CycleOnly = Annotated[
    Period | None,
    typer.Option(
        "--cycle",
        help="only this cycle's tasks are claimed, e.g. 2026-H2 (what waits is sent anyway)",
        parser=period_option,
        metavar="PERIOD",
    ),
]


def remind(
    cycle: CycleOnly = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="count what would be claimed; send nothing")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run one reminder pass now: nudges for tasks due soon or overdue, managers' digests,
    by email and chat webhooks as configured; failed messages are retried."""
    from service.cycles.reminder_pass import run_pass
    from service.cycles.setup_store import cycle_setup
    from service.cycles.store import cycle_id as id_of_cycle
    from service.store import open_store

    settings = get_settings()
    with user_errors(), open_store(settings) as engine:
        cycle_id = None
        if cycle is not None:
            with engine.connect() as conn:
                cycle_setup(conn, cycle.name)  # refused, naming the cycle, if not set up
                cycle_id = id_of_cycle(conn, cycle.name)
        summary = run_pass(engine, settings, cycle_id=cycle_id, dry_run=dry_run)
    _show(summary, as_json)


def _show(summary: "PassSummary", as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    if not summary.channels:
        out.print(
            plain(
                "no reminder channel is configured (FAIRDRAFT_SMTP_HOST, "
                "FAIRDRAFT_REMINDER_SLACK_WEBHOOKS, FAIRDRAFT_REMINDER_TEAMS_WEBHOOKS): "
                "nothing claimed"
            )
        )
        return
    verb = "would claim" if summary.dry_run else "claimed"
    total = sum(c.count for c in summary.claimed)
    out.print(plain(f"{verb} {total} new messages; {summary.waiting} waiting to be sent"))
    for count in summary.claimed:
        out.print(plain(f"  {count.rule} by {count.channel}: {count.count}"))
    for channel, done in summary.outcomes.items():
        out.print(
            plain(
                f"{channel}: {done.sent} sent, {done.failed} failed (retried later), "
                f"{done.gave_up} given up, {done.skipped} skipped, {done.not_tried} not tried"
            )
        )
    if summary.unsure:
        out.print(plain(f"{summary.unsure} chat messages unsure (their worker stopped)"))
