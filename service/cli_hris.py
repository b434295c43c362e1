"""HRIS exports at the command line: `fairdraft hris import EXPORT --mapping NAME_OR_FILE`
reads a Workday, BambooHR, Rippling, HiBob or Personio export through a column mapping
(a shipped one by vendor name, or your own TOML file) and stores its people exactly as
people.csv would be; `fairdraft hris mappings` lists the shipped mappings and their sample
exports; `fairdraft hris check MAPPING` checks a mapping file without a database.

A command group of its own rather than an `--mapping` option on `fairdraft ingest`: the
mapping is required here, the folder and format logic of `ingest` does not apply, and
the group keeps listing and checking mappings next to importing with them.

Like every command module, this one imports the database layer only inside the command.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel
from rich.table import Table

from service.cli_cycles import out
from service.cli_errors import user_errors
from service.cli_lists import JsonOption
from service.cli_output import IngestedFile, plain, print_json
from service.ingest.hris.mapping import SHIPPED
from service.settings import get_settings

if TYPE_CHECKING:
    from service.ingest.hris.importer import HrisImport

hris_app = typer.Typer(
    help="HRIS exports (Workday, BambooHR, Rippling, HiBob, Personio) through a column mapping."
)
MappingOption = Annotated[
    str,
    typer.Option(
        "--mapping",
        help=f"a shipped mapping ({', '.join(SHIPPED)}) or a mapping file (TOML)",
        metavar="NAME_OR_FILE",
    ),
]


class ShippedMapping(BaseModel):
    name: str
    vendor: str
    mapping: str
    sample: str


class ShippedMappings(BaseModel):
    mappings: list[ShippedMapping]


class HrisImportReport(BaseModel):
    """`fairdraft hris import --json`: the file's counts as `fairdraft ingest --json`
    gives them, who this import made inactive or active again, and whether it was dry."""

    file: IngestedFile
    deactivated: list[str]
    reactivated: list[str]
    dry_run: bool


@hris_app.command("import")
def import_command(
    export: Annotated[Path, typer.Argument(help="the export, as CSV")],
    mapping: MappingOption,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="land the valid rows, list the invalid ones")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="check and count, say who would leave; write nothing"),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Store the people of an HRIS export; an invalid row refuses it whole."""
    from service.ingest.hris.importer import import_export
    from service.ingest.hris.mapping import load_mapping
    from service.ingest.validate import FileLimits, check_file
    from service.store import open_store

    settings = get_settings()
    with user_errors():
        # A bad mapping, a missing export or one that is not UTF-8 text is told before any
        # server starts.
        loaded = load_mapping(mapping)
        limits = FileLimits.from_settings(settings)
        check_file(export, limits)
        with open_store(settings) as engine:
            done = import_export(
                engine,
                export,
                loaded,
                actor=_actor(),
                skip_invalid=skip_invalid,
                batch_rows=settings.ingest_batch_rows,
                limits=limits,
                dry_run=dry_run,
            )
    _show(done, as_json)


def _show(done: "HrisImport", as_json: bool) -> None:
    from service.cli_output import ingest_report, print_row_errors, summary_table

    if as_json:
        (counts,) = ingest_report([done.summary]).files
        report = HrisImportReport(
            file=counts,
            deactivated=done.leavers.deactivated,
            reactivated=done.leavers.reactivated,
            dry_run=done.dry_run,
        )
        print_json(report)
        return
    out.print(summary_table([done.summary]))
    verb = "would be" if done.dry_run else "made"
    if done.leavers.deactivated:
        out.print(plain(f"{verb} inactive: {', '.join(done.leavers.deactivated)}"))
    if done.leavers.reactivated:
        out.print(plain(f"{verb} active again: {', '.join(done.leavers.reactivated)}"))
    if done.summary.refused:
        print_row_errors(out, "skipped invalid rows", done.summary.refused)
    if done.dry_run:
        out.print("dry run: nothing was written")


@hris_app.command("mappings")
def mappings_command(as_json: JsonOption = False) -> None:
    """The shipped mappings, each with its synthetic sample export."""
    from service.ingest.hris.mapping import load_mapping, shipped_path, shipped_sample

    found = ShippedMappings(
        mappings=[
            ShippedMapping(
                name=name,
                vendor=load_mapping(name).mapping.vendor,
                mapping=str(shipped_path(name)),
                sample=str(shipped_sample(name)),
            )
            for name in SHIPPED
        ]
    )
    if as_json:
        print_json(found)
        return
    table = Table(title="shipped HRIS mappings")
    for column in ("name", "vendor", "mapping", "sample export"):
        table.add_column(column)
    for item in found.mappings:
        table.add_row(item.name, item.vendor, plain(item.mapping), plain(item.sample))
    out.print(table)


@hris_app.command("check")
def check_command(
    mapping: Annotated[str, typer.Argument(help="a shipped mapping's name or a mapping file")],
) -> None:
    """Check a mapping file (no database): every problem by line and key."""
    from service.ingest.hris.mapping import load_mapping

    with user_errors():
        loaded = load_mapping(mapping)
    columns = ", ".join(loaded.mapping.reads())
    out.print(plain(f"{loaded.label}: ok ({loaded.mapping.vendor}); reads {columns}"))


def _actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"
