"""`journey customers`: answer data-subject requests — erase a customer, show what is held on one.

`erase` publishes a `privacy.erasure_requested` touchpoint (SPEC §7); the workers do the erasing, in
order with the customer's other events. `show` prints, as JSON, the profile's state (from the worker
owning its partition) and its Redis context view: the answer to a data-access request.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import orjson
import typer
from aiokafka.errors import KafkaError

from orchestrator.cli.options import KafkaOption, WorkersOption, worker_urls
from orchestrator.config import Settings
from orchestrator.logging import configure_logging
from orchestrator.privacy import DEFAULT_CHANNEL, ask_workers, holdings, profile_id, request_erasure
from orchestrator.publish import PublisherNotConfigured, PublishError
from schemas import InvalidEvent

EXIT_UNREACHABLE = 2  # no worker answered, or Kafka refused the request
EXIT_STATE_UNKNOWN = 3  # workers answered, but none owns the profile's partition

customers = typer.Typer(
    name="customers",
    help="Data-subject requests: erase a customer, show what is held on one.",
    no_args_is_help=True,
)

Ident = Annotated[str, typer.Argument(metavar="ID", help="Customer id (or anonymous id with --anonymous).")]
Anonymous = Annotated[
    bool, typer.Option("--anonymous", help="ID is an anonymous id (profile anon:<ID>), not a customer id.")
]


@customers.command("erase")
def erase(
    ident: Annotated[
        str, typer.Argument(metavar="ID", help="Customer id (or anonymous id with --anonymous).")
    ],
    anonymous: Anonymous = False,
    channel: Annotated[
        str, typer.Option(help="Channel the request came through; sent to touchpoints.<CHANNEL>.")
    ] = DEFAULT_CHANNEL,
    kafka: KafkaOption = None,
) -> None:
    """Erase a customer: profile, aliases, pending waits and context view; consent opt-outs are kept."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        event = asyncio.run(
            request_erasure(ident, anonymous=anonymous, channel=channel, settings=settings, bootstrap=kafka)
        )
    except InvalidEvent as exc:
        typer.echo(f"not a valid erasure request: {exc}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except PublisherNotConfigured as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except (PublishError, KafkaError) as exc:
        typer.echo(f"publishing the erasure request failed: {exc}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    typer.echo(
        f"erasure of {profile_id(ident, anonymous=anonymous)} requested: event {event['event_id']} "
        f"on {settings.touchpoint_topic(channel)}"
    )


@customers.command("show")
def show(
    ident: Annotated[
        str, typer.Argument(metavar="ID", help="Customer id (or anonymous id with --anonymous).")
    ],
    anonymous: Anonymous = False,
    worker: WorkersOption = None,
) -> None:
    """Print, as JSON, what the workers hold on a profile: its state and its Redis context view."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    profile = profile_id(ident, anonymous=anonymous)
    urls = worker_urls(worker, settings)
    answers = asyncio.run(ask_workers(urls, profile, settings.web_token))
    result = holdings(profile, answers)
    typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if all(answer.record is None for answer in answers):
        typer.echo("no worker answered: check --worker and JOURNEY_WEB_TOKEN", err=True)
        raise typer.Exit(EXIT_UNREACHABLE)
    if not result["state_known"]:
        typer.echo(
            f"no worker asked owns partition {result['partition']} of {profile}: ask every worker "
            "(repeat --worker) for its state",
            err=True,
        )
        raise typer.Exit(EXIT_STATE_UNKNOWN)


def register(app: typer.Typer) -> None:
    app.add_typer(customers)
