"""CLI commands that run and administer the service: serve, worker, tokens, roles, panels.

Registered on the main `fairdraft` app by service.cli; kept apart because they concern
people's access rather than reviews.
"""

import contextlib
import errno
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import annotated_types
import typer
from rich.console import Console
from rich.text import Text

from domain.errors import Misconfigured
from domain.periods import Period, PeriodError, parse_period
from service.cli_errors import refuse_option, user_errors
from service.settings import Settings, get_settings

token_app = typer.Typer(help="Per-person API tokens (shown once, stored hashed).")
role_app = typer.Typer(help="Roles the reporting tree does not tell (HR admin).")
panel_app = typer.Typer(help="Calibration panels: one per cohort (level, job family) and cycle.")
out = Console(width=None if sys.stdout.isatty() else 120)
ACTOR = "cli:admin"

if TYPE_CHECKING:
    import uvicorn


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
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="default FAIRDRAFT_API_PORT")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="default FAIRDRAFT_API_WORKERS")
    ] = None,
) -> None:
    """Run the API (and, unless FAIRDRAFT_SERVE_WORKER=false, a job worker per process);
    prints its address on stdout once it listens."""
    import uvicorn

    from service.drafting.kind_data import check_kind_data

    settings = get_settings()
    address = Address(host or settings.api_host, port or settings.api_port)
    with user_errors():
        check_kind_data()  # a kind without its queries, sections or template: refuse to start
        sock = listen_socket(address)  # a port in use: said plainly, before anything starts
    processes = workers or settings.api_workers
    if processes > 1:  # they share their metrics through files: set up before they start
        from service.metrics import prepare_multiprocess

        prepare_multiprocess(settings)
    config = uvicorn.Config(
        "service.app:app_from_environment",
        factory=True,
        host=address.host,
        port=address.port,
        workers=processes,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )
    if not run_server(config, sock, address):
        raise typer.Exit(3)  # the app did not start (its error is logged above)


class CannotListen(Misconfigured):
    """`serve` cannot take the address it was given; the message says what to change."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @property
    def url(self) -> str:
        """Where a browser on this machine reaches the server."""
        host = self.host
        if host in ("", "0.0.0.0", "::"):  # every address of the machine
            host = "127.0.0.1"
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"


def listen_socket(address: Address) -> socket.socket:
    """The server's socket, bound as uvicorn binds it (and then handed to it, so nothing can
    take the port in between); a port in use, a privileged port or a host that is not
    this machine's is a `CannotListen` naming the setting to change."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except (OSError, OverflowError) as exc:
        sock.close()
        raise _cannot_listen(address, exc) from None
    sock.set_inheritable(True)
    return sock


def _cannot_listen(address: Address, exc: Exception) -> CannotListen:
    where = f"{address.host}:{address.port}"
    code = getattr(exc, "errno", None)
    if code == errno.EADDRINUSE:
        return CannotListen(
            f"port {address.port} on {address.host} is already in use (another fairdraft "
            f"serve?): stop what holds it, or choose a free port with --port or "
            f"FAIRDRAFT_API_PORT",
            field="port",
        )
    if code == errno.EACCES:
        return CannotListen(
            f"port {address.port} needs privileges on this machine: choose one above 1023 "
            "with --port or FAIRDRAFT_API_PORT",
            field="port",
        )
    if code == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return CannotListen(
            f"host {address.host!r} is not an address of this machine: set --host or "
            "FAIRDRAFT_API_HOST (127.0.0.1 for this machine only, 0.0.0.0 for every address)",
            field="host",
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return CannotListen(f"cannot listen on {where}: {reason}", field="port")


def announce(address: Address, processes: int) -> None:
    """The one line that says the server answers, on stdout (a script can wait for it)."""
    workers = f" with {processes} processes" if processes > 1 else ""
    out.print(
        Text(f"fairdraft is listening on {address.url}{workers} (Ctrl-C stops it)"),
        soft_wrap=True,
    )
    sys.stdout.flush()


def run_server(config: "uvicorn.Config", sock: socket.socket, address: Address) -> bool:
    """Serve on the bound socket until interrupted; False when the app failed to start.

    One process: the line is printed once the app has started (its database is open).
    Several: the parent listens at once (connections wait in the queue until a worker
    process takes them), prints the line, and supervises them as uvicorn.run would."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if config.workers > 1:
        sock.listen(config.backlog)
        announce(address, config.workers)
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[sock]).run()
        return True

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                announce(address, 1)

    config.load_app()
    server = AnnouncingServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return server.started


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
