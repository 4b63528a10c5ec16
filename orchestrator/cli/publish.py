"""`journey publish`: send a file of touchpoints to Kafka, one JSON object per line (SPEC §4).

Every line is validated first; a bad line is reported with its line number and skipped, so one typo
does not hold back a whole file, and the exit status still says that something was left out.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from aiokafka.errors import KafkaError

from orchestrator.cli.options import KafkaOption
from orchestrator.config import Settings
from orchestrator.logging import configure_logging
from orchestrator.publish import Publisher, PublisherNotConfigured, PublishError
from schemas import InvalidEvent


@contextmanager
def _open_source(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    with Path(path).open("rb") as handle:
        yield handle


async def publish_lines(
    source: BinaryIO, name: str, publisher: Publisher, topic: str | None
) -> tuple[int, int]:
    """Send each valid line; return (sent, skipped). Blank lines are neither."""
    sent = skipped = 0
    for number, line in enumerate(source, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            await publisher.send(raw, topic=topic)
        except InvalidEvent as exc:
            typer.echo(f"{name}:{number}: {exc}", err=True)
            skipped += 1
            continue
        sent += 1
    await publisher.flush()
    return sent, skipped


def _split_targets(targets: list[str]) -> tuple[str | None, str]:
    if len(targets) == 1:
        return None, targets[0]
    if len(targets) == 2:
        return targets[0], targets[1]
    raise typer.BadParameter("expected [TOPIC] FILE", param_hint="TOPIC FILE")


def publish(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="[TOPIC] FILE",
            help="Topic to send to (optional), then a JSONL file or - for stdin.",
            show_default=False,
        ),
    ],
    channel: Annotated[
        str | None,
        typer.Option(help="Send every event to touchpoints.<CHANNEL> instead of its own channel's."),
    ] = None,
    kafka: KafkaOption = None,
) -> None:
    """Send touchpoints to Kafka: to TOPIC, to --channel's topic, or each to touchpoints.<its channel>."""
    topic, path = _split_targets(targets)
    if topic and channel:
        raise typer.BadParameter("give a TOPIC or --channel, not both", param_hint="--channel")
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    if channel:
        topic = settings.touchpoint_topic(channel)

    async def run() -> tuple[int, int]:
        with _open_source(path) as source:
            async with Publisher(kafka, settings=settings, client_id="journey-publish") as publisher:
                return await publish_lines(source, "<stdin>" if path == "-" else path, publisher, topic)

    try:
        sent, skipped = asyncio.run(run())
    except FileNotFoundError:
        typer.echo(f"{path}: no such file", err=True)
        raise typer.Exit(2) from None
    except PublisherNotConfigured as exc:
        typer.echo(f"{exc}. (`journey demo` runs an embedded broker for trying things out.)", err=True)
        raise typer.Exit(2) from None
    except (PublishError, KafkaError) as exc:
        typer.echo(f"publishing failed: {exc}", err=True)
        raise typer.Exit(1) from None
    where = topic or f"{settings.touchpoints_prefix}<channel>"
    summary = f"published {sent} event(s) to {where}"
    typer.echo(f"{summary}, skipped {skipped} invalid line(s)" if skipped else summary)
    if skipped:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("publish")(publish)
