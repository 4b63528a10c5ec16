"""`journey simulate`: publish simulated omnichannel customers to Kafka, or write them to a JSONL file.

Live, every event is stamped with the moment it is sent; with `--output` the file gets absolute
times from `--start`, ready for `journey replay`. Without a seed a random one is drawn and printed,
so any run can be reproduced exactly.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from contextlib import ExitStack, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.cli.options import KafkaOption
from orchestrator.config import Settings
from orchestrator.logging import configure_logging
from orchestrator.publish import PublisherNotConfigured, PublishError
from orchestrator.simulate import DEFAULT_START, SimulationReport, generate, simulate

_PROGRESS_EVERY_S = 0.1


def _parse_start(value: str | None) -> datetime:
    if value is None:
        return DEFAULT_START
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint="--start") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("add an offset or Z, e.g. 2026-05-04T08:00:00Z", param_hint="--start")
    return moment


def _write(
    output: str, seed: int, customers: int, journey_scale: float, start: datetime, faults: bool
) -> int:
    messages = generate(seed, customers, start, journey_scale=journey_scale, faults=faults)
    with ExitStack() as stack:
        sink: BinaryIO = sys.stdout.buffer if output == "-" else stack.enter_context(Path(output).open("wb"))
        for message in messages:
            sink.write(message.value + b"\n")
    return len(messages)


class _ProgressBar:
    """A rich progress bar refreshed at most every 100 ms, so it never slows a fast run down."""

    def __init__(self, progress: Progress, duration: float | None) -> None:
        self.progress = progress
        self.duration = duration
        self.task = progress.add_task("publishing", total=duration)
        self.last = 0.0

    def __call__(self, report: SimulationReport) -> None:
        now = time.monotonic()
        if now - self.last < _PROGRESS_EVERY_S:
            return
        self.last = now
        description = f"{report.sent} sent, round {report.rounds}, {report.rate:.0f}/s"
        if self.duration is None:
            self.progress.update(
                self.task, total=report.planned, completed=report.sent, description=description
            )
        else:
            self.progress.update(
                self.task, completed=min(report.elapsed_s, self.duration), description=description
            )


def simulate_command(
    customers: Annotated[int, typer.Option(min=0, help="Customers per round.")] = 100,
    seed: Annotated[
        int | None, typer.Option(help="Same seed, same events; default: random, printed.")
    ] = None,
    rate: Annotated[float, typer.Option(min=0, help="Max messages per second; 0 = no cap.")] = 0.0,
    duration: Annotated[
        float | None,
        typer.Option(min=0, help="Keep new customers arriving for S seconds; default: one round."),
    ] = None,
    journey_scale: Annotated[
        float,
        typer.Option(min=0, help="Multiplies the time between a persona's events (0.03: ~20 s per persona)."),
    ] = 1.0,
    output: Annotated[
        str | None, typer.Option(help="Write JSONL (absolute times) to FILE or - instead of publishing.")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Event time of the first event in --output files.")
    ] = None,
    faults: Annotated[
        bool, typer.Option(help="Include re-sent events and malformed messages (for the dead-letter topic).")
    ] = True,
    kafka: KafkaOption = None,
) -> None:
    """Simulate omnichannel customers: abandoned sofas, rainy-day umbrellas, failing chatbots, buyers."""
    if seed is None:
        seed = random.SystemRandom().randrange(1_000_000)
        typer.echo(f"seed {seed} (pass --seed {seed} to replay this run)", err=True)
    if output is not None:
        count = _write(output, seed, customers, journey_scale, _parse_start(start), faults)
        typer.echo(f"wrote {count} message(s) to {output}", err=True)
        return
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    interactive = sys.stderr.isatty()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, console=Console(stderr=True), transient=True)
        if interactive
        else nullcontext() as progress
    ):
        on_progress = _ProgressBar(progress, duration) if progress is not None else None
        try:
            report = asyncio.run(
                simulate(
                    kafka,
                    seed,
                    customers,
                    rate,
                    duration,
                    journey_scale,
                    settings=settings,
                    faults=faults,
                    on_progress=on_progress,
                )
            )
        except PublisherNotConfigured as exc:
            typer.echo(
                f"{exc}; or write the events to a file with --output FILE.jsonl. "
                "(`journey demo` runs the simulator against an embedded broker.)",
                err=True,
            )
            raise typer.Exit(2) from None
        except (PublishError, KafkaError) as exc:
            typer.echo(f"publishing failed: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(
        f"published {report.sent} message(s) in {report.elapsed_s:.1f}s "
        f"({report.malformed} malformed, {report.resent} re-sent, {report.rounds} round(s))"
    )


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)
