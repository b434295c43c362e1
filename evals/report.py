"""How benchmarks end: a table of their figures, then one JSON line of the same figures."""

import json
from collections.abc import Mapping

from rich.console import Console
from rich.table import Table


def print_figures(console: Console, title: str, figures: Mapping[str, float | int | str]) -> None:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        table.add_row(name, str(value))
    console.print(table)
    console.print(json.dumps(dict(figures)), soft_wrap=True)
