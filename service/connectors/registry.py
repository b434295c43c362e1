"""The connectors fairdraft has, by name, each built from Settings when configured.

A connector module is imported only when it is asked for: the CLI starts without httpx
or Slack's SDK, and a company using only Jira never loads GitHub's code.
"""

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, cast

import httpx

from domain.errors import Misconfigured, NotFound
from service.connectors.model import Connector, Sleeper
from service.settings import Settings

# name -> the module whose from_settings builds it; the name is also the records' source
# and the identity system of its people.
CONNECTORS = {"github": "github", "jira": "jira", "slack": "slack"}


class _Factory(Protocol):
    def __call__(
        self,
        settings: Settings,
        *,
        sleeper: Sleeper = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> Connector | None: ...


def _factory(name: str) -> _Factory:
    module = importlib.import_module(f"service.connectors.{CONNECTORS[name]}")
    return cast(_Factory, module.from_settings)


def build(
    name: str,
    settings: Settings,
    *,
    sleeper: Sleeper = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> Connector:
    """The named connector, or NotFound for a name fairdraft does not have, Misconfigured
    for one whose settings are missing (naming what to set)."""
    if name not in CONNECTORS:
        known = ", ".join(sorted(CONNECTORS))
        raise NotFound(f"no connector {name!r}; fairdraft has {known}", field="connector")
    connector = _factory(name)(settings, sleeper=sleeper, transport=transport)
    if connector is None:
        raise Misconfigured(
            f"the {name} connector is not configured: set FAIRDRAFT_{name.upper()}_* "
            "(docs/connectors.md)",
            field="connector",
        )
    return connector


def configured(settings: Settings) -> list[str]:
    """The names of the connectors whose settings are given, in name order."""
    return [name for name in sorted(CONNECTORS) if _factory(name)(settings) is not None]


def slack_export(path: Path, settings: Settings) -> Connector:
    """Slack recognition read from a workspace export zip instead of the Web API."""
    module = importlib.import_module("service.connectors.slack")
    build_export = cast(Callable[[Path, Settings], Connector], module.slack_export)
    return build_export(path, settings)
