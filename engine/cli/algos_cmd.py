"""``zhixing algos``: every algorithm by name with its parameters, defaults and help."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from zhixing.algos.registry import describe_algos


def add_parsers(sub: Any) -> None:
    algos = sub.add_parser("algos", help="list the execution algorithms and their parameters")
    algos.set_defaults(handler=run_algos)


def run_algos(args: argparse.Namespace) -> int:
    table = Table(
        title="Algorithms (choose with --algo NAME or an 'algo' column; set with --param KEY=VALUE)"
    )
    for col in ("algo", "parameter", "default", "meaning"):
        table.add_column(col)
    for name, param, default, text in describe_algos():
        table.add_row(name, param, default, text)
    Console(width=160).print(table)
    return 0
