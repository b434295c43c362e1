"""Connectors at the command line (docs/connectors.md).

- `fairdraft sync NAME [--full] [--export FILE] [--json]`: one run of a connector by hand,
  the same run the workers' hourly periodic task makes; `--export` reads Slack
  recognition from a workspace export zip instead of the Web API.
- `fairdraft connectors list | runs | identities | match | import-identities | purge`:
  what is configured and how its runs went, the identities sources name (unmatched
  first), matching one by hand or a CSV of them, and deleting a source's records.

Like every command module, this one imports the database layer only inside the commands.
"""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.cli_errors import user_errors
from service.cli_lists import JsonOption
from service.cli_output import plain, print_json
from service.settings import get_settings

if TYPE_CHECKING:
    from service.connectors.runs import RunFigures

connectors_app = typer.Typer(help="Connectors: GitHub, Jira and Slack runs, identities, purges.")
out = Console(width=None if sys.stdout.isatty() else 4096)
ACTOR = "cli"


def sync(
    name: Annotated[str, typer.Argument(help="the connector: github, jira or slack")],
    full: Annotated[
        bool, typer.Option("--full", help="fetch everything, not only what changed")
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="slack only: read a workspace export zip instead of the Web API",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a connector once now: fetch what changed since its last run (everything with
    --full), match people, and store their evidence. Exit 1 if the run failed or paused."""
    from service.connectors.registry import build, slack_export
    from service.connectors.sync import run_sync
    from service.store import open_store

    settings = get_settings()
    with user_errors():
        if export is not None and name != "slack":
            raise typer.BadParameter("--export reads a Slack export; give the name slack")
        connector = slack_export(export, settings) if export else build(name, settings)
        with open_store(settings) as engine:
            summary = run_sync(engine, settings, connector, actor=ACTOR, full=full)
    _show(summary.report(), as_json)
    if summary.status != "succeeded":
        raise typer.Exit(1)


def _show(report: "RunFigures", as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    out.print(
        plain(
            f"{report.connector} {'full ' if report.full else ''}sync {report.status}: "
            f"{report.fetched} fetched, {report.inserted} new, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.deleted} deleted, {report.skipped} "
            f"skipped; {report.chunks_embedded} chunks embedded; {report.rate_limit_waits} "
            f"rate-limit waits ({report.waited_s:.0f} s); {report.seconds:.1f} s"
        )
    )
    for reason, count in sorted(report.skip_reasons.items()):
        out.print(plain(f"  skipped {count}: {reason}"))
    if report.error:
        out.print(plain(f"  {report.error}"))


@connectors_app.command("list")
def list_connectors() -> None:
    """The connectors fairdraft has, whether each is configured, and its last run."""
    from service.connectors.registry import CONNECTORS, configured
    from service.connectors.runs import recent_runs
    from service.store import open_store

    settings = get_settings()
    with user_errors(), open_store(settings) as engine:
        ready = set(configured(settings))
        with engine.connect() as conn:
            last = {name: recent_runs(conn, connector=name, limit=1) for name in CONNECTORS}
    table = Table("connector", "configured", "last run", "status", "fetched", "skipped")
    for name in sorted(CONNECTORS):
        run = last[name][0] if last[name] else None
        table.add_row(
            name,
            "yes" if name in ready else "no",
            run.started_at.isoformat(timespec="minutes") if run else "-",
            run.status if run else "-",
            str(run.fetched) if run else "-",
            str(run.skipped) if run else "-",
        )
    out.print(table)


@connectors_app.command("runs")
def runs(
    name: Annotated[str | None, typer.Argument(help="one connector's runs only")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """The latest runs, newest first, with what each did and why it skipped what it did."""
    from service.connectors.runs import recent_runs
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        lines = recent_runs(conn, connector=name, limit=limit)
    table = Table(
        "id",
        "connector",
        "started",
        "status",
        "fetched",
        "new",
        "updated",
        "deleted",
        "skipped",
        "waits",
        "error",
    )
    for run in lines:
        table.add_row(
            str(run.id),
            run.connector,
            run.started_at.isoformat(timespec="seconds"),
            run.status,
            str(run.fetched),
            str(run.inserted),
            str(run.updated),
            str(run.deleted),
            str(run.skipped),
            str(run.rate_limit_waits),
            plain(run.error or ""),
        )
    out.print(table)


@connectors_app.command("identities")
def identities(
    unmatched: Annotated[bool, typer.Option("--unmatched", help="only the unmatched")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """People as the sources name them, unmatched first (most records waiting first)."""
    from service.connectors.identities import list_identities
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        lines = list_identities(conn, unmatched_only=unmatched, limit=limit)
    table = Table("system", "id", "name", "email", "employee", "matched by", "waiting")
    for line in lines:
        table.add_row(
            line.system,
            plain(line.external_id),
            plain(line.display_name or ""),
            plain(line.email or ""),
            line.employee_id or "-",
            line.matched_by or "-",
            str(line.records_waiting),
        )
    out.print(table)


@connectors_app.command("match")
def match_identity(
    system: Annotated[str, typer.Argument(help="github, jira or slack")],
    external_id: Annotated[str, typer.Argument(help="the login, account id or user id")],
    employee_id: Annotated[str, typer.Argument(help="the employee it is")],
) -> None:
    """Match one identity to an employee by hand; its connector runs in full next time."""
    from service.connectors.identities import Match, match
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        match(conn, [Match(system, external_id, employee_id)], actor=ACTOR, by="hand")
    out.print(plain(f"{system} {external_id} is {employee_id}"))


@connectors_app.command("import-identities")
def import_identities_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="identities.csv")],
) -> None:
    """Match identities from a CSV (system,external_id,employee_id); refused whole, by
    line, if any employee is unknown."""
    from service.connectors.identities import import_identities
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        count = import_identities(conn, path, actor=ACTOR, label=path.name)
    out.print(plain(f"{count} identities matched from {path.name}"))


@connectors_app.command("resume")
def resume_command(
    name: Annotated[str, typer.Argument(help="the connector a purge stopped")],
) -> None:
    """Let a connector stopped by a purge sync again; its next run reads everything."""
    from service.connectors.overview import resume_connector
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        resumed = resume_connector(conn, name, actor=ACTOR)
    out.print(plain(f"{name} may sync again" if resumed else f"{name} was not stopped"))


@connectors_app.command("purge")
def purge(
    source: Annotated[str, typer.Argument(help="the source whose records go: github, ...")],
    yes: Annotated[bool, typer.Option("--yes", help="really delete them")] = False,
) -> None:
    """Delete every record of a source, forget its cursor and stop its connector until
    `fairdraft connectors resume`. Drafts keep their text."""
    from service.connectors.privacy import purge_source
    from service.store import open_store

    if not yes:
        out.print(plain(f"this deletes every {source} record; run again with --yes"))
        raise typer.Exit(1)
    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        count = purge_source(conn, source, actor=ACTOR)
    out.print(plain(f"{count} {source} records deleted; {source} is stopped until resumed"))
