"""Entry point of `journey`: the root Typer app and the registration of every subcommand.

A subcommand module exposes `register(app)`; only commands that exist are registered, so
`journey --help` never lists something that does not work yet.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator import __version__

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


from orchestrator.cli.rules import register as register_rules  # noqa: E402

register_rules(app)

from orchestrator.cli.topics import register as register_topics  # noqa: E402

register_topics(app)

from orchestrator.cli.replay import register as register_replay  # noqa: E402

register_replay(app)

from orchestrator.cli.lag import register as register_lag  # noqa: E402

register_lag(app)

from orchestrator.cli.dashboard import register as register_dashboard  # noqa: E402

register_dashboard(app)

from orchestrator.cli.worker import register as register_worker  # noqa: E402

register_worker(app)

from orchestrator.cli.publish import register as register_publish  # noqa: E402

register_publish(app)

from orchestrator.cli.simulate import register as register_simulate  # noqa: E402

register_simulate(app)


def run() -> None:
    app()
