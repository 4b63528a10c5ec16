"""Entry point of `journey`: the root Typer app and the registration of every subcommand.

A subcommand module exposes `register(app)`; only commands that exist are registered, so
`journey --help` never lists something that does not work yet.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from orchestrator import __version__

COMMAND_MODULES = (
    "demo",
    "worker",
    "rules",
    "replay",
    "publish",
    "simulate",
    "lag",
    "kpis",
    "dashboard",
    "topics",
    "customers",
)

app = typer.Typer(
    name="journey",
    help="Event-streaming journey orchestrator: touchpoints on Kafka in, next-best actions out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"journey {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Event-streaming journey orchestrator."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"orchestrator.cli.{_name}").register(app)


def run() -> None:
    app()
