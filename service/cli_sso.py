"""Single sign-on at the command line: `fairdraft sso unbind EMPLOYEE_ID` clears the
identity provider subject a person is bound to (service/access/sso.py), so that their next
sign-in binds anew. HR runs it when a person's account at the provider was replaced, or
after moving to another provider; until then a sign-in under another subject is refused.

Like every command module, this one imports the database layer only inside the command.
"""

import getpass
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from service.cli_errors import user_errors
from service.settings import get_settings

sso_app = typer.Typer(help="Single sign-on: the provider accounts people are bound to.")
out = Console()


@sso_app.command("unbind")
def unbind(
    employee_id: Annotated[
        str, typer.Argument(help="the person's employee id (HRIS key)", metavar="EMPLOYEE_ID")
    ],
) -> None:
    """Clear a person's single sign-on binding: their next sign-in binds anew (audited)."""
    from service.access.sso import unbind_subject
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as connection:
        held = unbind_subject(connection, employee_id, actor=f"cli:{getpass.getuser()}")
    if held is None:
        out.print(f"{escape(employee_id)} was not bound to a sign-in account; nothing changed.")
    else:
        out.print(
            f"{escape(employee_id)} unbound from their sign-in account; "
            "their next single sign-on binds anew."
        )
