"""CLI commands that run and administer the service: serve, worker, tokens, roles, panels.

Registered on the main `fairdraft` app by service.cli; kept apart because they concern
people's access rather than reviews.
"""

import sys
from typing import Annotated

import annotated_types
import typer
from rich.console import Console

from domain.periods import Period, PeriodError, parse_period
from service.cli_errors import refuse_option, user_errors
from service.settings import Settings, get_settings

token_app = typer.Typer(help="Per-person API tokens (shown once, stored hashed).")
role_app = typer.Typer(help="Roles the reporting tree does not tell (HR admin).")
panel_app = typer.Typer(help="Calibration panels: one per cohort (level, job family) and cycle.")
out = Console(width=None if sys.stdout.isatty() else 120)
ACTOR = "cli:admin"


def _setting_bounds(name: str) -> tuple[int, int]:
    """The ge/le bounds a setting declares, so a CLI option never drifts from it."""
    metadata = Settings.model_fields[name].metadata
    low = next(m.ge for m in metadata if isinstance(m, annotated_types.Ge))
    high = next(m.le for m in metadata if isinstance(m, annotated_types.Le))
    if not (isinstance(low, int) and isinstance(high, int)):
        raise TypeError(f"{name}: integer bounds expected")
    return low, high


TOKEN_DAYS = _setting_bounds("api_token_days")  # 1 to 3650, as FAIRDRAFT_API_TOKEN_DAYS


def serve(
    host: Annotated[str | None, typer.Option(help="default FAIRDRAFT_API_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default FAIRDRAFT_API_PORT")] = None,
    workers: Annotated[int | None, typer.Option(help="default FAIRDRAFT_API_WORKERS")] = None,
) -> None:
    """Run the API (and, unless FAIRDRAFT_SERVE_WORKER=false, a job worker per process)."""
    import uvicorn

    from service.drafting.kind_data import check_kind_data

    with user_errors():
        check_kind_data()  # a kind without its queries, sections or template: refuse to start
    settings = get_settings()
    uvicorn.run(
        "service.app:app_from_environment",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers or settings.api_workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )


def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="jobs at once")] = 1,
) -> None:
    """Run job workers against the configured database until interrupted."""
    from service.drafting.kind_data import check_kind_data
    from service.http.logs import configure_logging
    from service.jobs.worker import run_worker

    with user_errors():
        check_kind_data()
    configure_logging()
    run_worker(get_settings(), concurrency=concurrency)


def period_option(value: str | Period) -> Period:
    """Every --period and --cycle option is parsed here, once, into a Period (the
    commands pass it on typed), before a database opens: not a period, one line and
    exit 2, like every other input error."""
    if isinstance(value, Period):  # typer hands a default through the parser too
        return value
    try:
        return parse_period(value)
    except PeriodError as exc:
        refuse_option(str(exc))


def token_days(days: int | None) -> int | None:
    """--days within the bounds FAIRDRAFT_API_TOKEN_DAYS has; else one line and exit 2.
    Checked as the option is parsed, before anything opens: 0 is refused rather than read
    as "the default", and a huge number never reaches date arithmetic."""
    if days is not None and not TOKEN_DAYS[0] <= days <= TOKEN_DAYS[1]:
        refuse_option(
            f"--days: {days} is not a lifetime; give {TOKEN_DAYS[0]} to {TOKEN_DAYS[1]} days"
        )
    return days


@token_app.command("create")
def token_create(
    person: Annotated[str, typer.Option(help="employee_id or email")],
    label: Annotated[str, typer.Option(help="what the token is for")] = "api",
    days: Annotated[
        int | None,
        typer.Option(
            help=f"lifetime, {TOKEN_DAYS[0]} to {TOKEN_DAYS[1]}; default FAIRDRAFT_API_TOKEN_DAYS",
            callback=token_days,
        ),
    ] = None,
) -> None:
    """Make a token for a person; it is printed once and cannot be shown again."""
    from service.access.tokens import issue_token
    from service.ingest.directory import find_person
    from service.store import open_store

    settings = get_settings()
    with user_errors(), open_store(settings) as engine, engine.begin() as conn:
        subject = find_person(conn, person)
        issued = issue_token(
            conn,
            subject.id,
            days=settings.api_token_days if days is None else days,
            label=label,
            actor=ACTOR,
        )
    out.print(f"token {issued.id} for {person}, expires {issued.expires_at:%Y-%m-%d}:")
    sys.stdout.write(issued.token + "\n")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="the token's id")]) -> None:
    from service.access.tokens import revoke_token
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        revoked = revoke_token(conn, token_id, actor=ACTOR)
    out.print(f"token {token_id} revoked" if revoked else f"token {token_id}: no live token")


@role_app.command("grant")
def role_grant(person: Annotated[str, typer.Option(help="employee_id or email")]) -> None:
    """Make a person an HR admin: cycles, bias reports, demographics, audit, uploads."""
    from service.access.roles import grant_hr_admin
    from service.ingest.directory import find_person
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        grant_hr_admin(conn, find_person(conn, person).id, actor=ACTOR)
    out.print(f"{person} is an HR admin")


@role_app.command("revoke")
def role_revoke(person: Annotated[str, typer.Option(help="employee_id or email")]) -> None:
    from service.access.roles import revoke_hr_admin
    from service.ingest.directory import find_person
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        revoke_hr_admin(conn, find_person(conn, person).id, actor=ACTOR)
    out.print(f"{person} is no longer an HR admin")


@panel_app.command("create")
def panel_create(
    cycle: Annotated[Period, typer.Option(help="e.g. 2026-H1", parser=period_option)],
    level: Annotated[str, typer.Option(help="the cohort's level, e.g. L3")],
    job_family: Annotated[str, typer.Option(help="the cohort's job family")],
    member: Annotated[list[str], typer.Option(help="employee_id or email (repeat)")],
) -> None:
    """Set up a calibration panel for a cohort, with the people who sit on it."""
    from service.calibration.panels import create_panel
    from service.ingest.directory import find_person
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        members = [find_person(conn, m).id for m in member]
        panel_id = create_panel(conn, cycle, level, job_family, members, actor=ACTOR)
    out.print(f"panel {panel_id}: {level} {job_family}, {cycle.name}, {len(members)} member(s)")
