"""What helper processes run in tests/test_draft_cycle_spread.py's tests of the spreading
itself: module-level (a spawned interpreter imports them by name) and light (each helper
imports this module, so nothing heavy is imported here)."""

import os
from typing import Any

from domain.errors import Invalid
from service.drafting.spread import Claims, Send


class Unportable(Exception):
    """An error that cannot be rebuilt from its pickle (its class takes two arguments)."""

    def __init__(self, secret: str, number: int) -> None:
        super().__init__(f"{secret} {number}")


def squares(payload: list[int], index: int, claims: Claims, send: Send) -> None:
    """Send (helper, item, its square) for every item this helper claims."""
    while (claimed := claims.next()) is not None:
        send((index, claimed, payload[claimed] ** 2))


def refuses(payload: Any, index: int, claims: Claims, send: Send) -> None:
    claims.next()
    raise Invalid("item 3 is not a number", field="items")


def leaks(payload: Any, index: int, claims: Claims, send: Send) -> None:
    raise Unportable("evidence text a helper must not repeat", 7)


def dies(payload: Any, index: int, claims: Claims, send: Send) -> None:
    os._exit(3)
