"""`journey lag`: consumer lag per group, topic and partition with a Burrow-style status (SPEC §6).

Exit 0 when every group is ok, 2 otherwise (including "nothing to monitor"), so scripts and probes
can act on it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrator.cli.options import KafkaOption
from orchestrator.config import Settings
from orchestrator.lag import LagMonitor, LagReport, kafka_client_kwargs

STATUS_STYLE = {"ok": "bold green", "lagging": "bold yellow", "stalled": "bold red", "unknown": "dim"}


def render_table(report: LagReport) -> Table:
    table = Table(title=f"Consumer lag at {report.as_dict()['at']}", header_style="bold")
    for column, justify in [
        ("group", "left"),
        ("topic", "left"),
        ("partition", "right"),
        ("committed", "right"),
        ("end", "right"),
        ("lag", "right"),
        ("time lag", "right"),
        ("status", "left"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for group in report.groups:
        table.add_row(
            group.group,
            "[i]all[/i]",
            "",
            "",
            "",
            str(group.lag),
            f"{group.time_lag_s:.1f}s",
            Text(group.status.upper(), style=STATUS_STYLE[group.status]),
            style="bold",
        )
        for p in group.partitions:
            table.add_row(
                "",
                p.topic,
                str(p.partition),
                "none" if p.committed is None else str(p.committed),
                str(p.end),
                str(p.lag),
                f"{p.time_lag_s:.1f}s",
                Text(p.status, style=STATUS_STYLE[p.status]),
            )
    if not report.groups:
        table.caption = "no consumer group of the app found"
    return table


async def _collect(monitor: LagMonitor, samples: int, step_s: float) -> LagReport:
    for i in range(samples):
        if i:
            await asyncio.sleep(step_s)
        await monitor.sample()
    return monitor.report()


async def _run(monitor: LagMonitor, *, samples: int, window: float, as_json: bool, watch: bool) -> int:
    step = window / max(samples - 1, 1)
    console = Console()
    async with monitor:
        if not watch:
            report = await _collect(monitor, samples, step)
            if as_json:
                typer.echo(orjson.dumps(report.as_dict()).decode())
            else:
                console.print(render_table(report))
            return 0 if report.all_ok else 2
        await monitor.sample()
        with Live(render_table(monitor.report()), console=console, refresh_per_second=2) as live:
            try:
                while True:
                    await asyncio.sleep(step)
                    await monitor.sample()
                    report = monitor.report()
                    if as_json:
                        live.console.print(orjson.dumps(report.as_dict()).decode())
                    live.update(render_table(report))
            except asyncio.CancelledError:
                return 0 if monitor.report().all_ok else 2


def register(app: typer.Typer) -> None:
    @app.command("lag")
    def lag(
        as_json: Annotated[bool, typer.Option("--json", help="Print the SPEC §6 JSON document.")] = False,
        window: Annotated[float, typer.Option("--window", min=0.5, help="Seconds the samples span.")] = 10.0,
        samples: Annotated[int, typer.Option("--samples", min=2, help="Samples across the window.")] = 3,
        watch: Annotated[bool, typer.Option("--watch", help="Keep sampling and refresh the table.")] = False,
        group: Annotated[
            list[str] | None, typer.Option("--group", help="Only this consumer group (repeatable).")
        ] = None,
        kafka: KafkaOption = None,
    ) -> None:
        """Consumer lag per group, topic and partition with a status: exit 0 when all ok, else 2."""
        settings = Settings()
        bootstrap = kafka or settings.kafka_bootstrap
        if not bootstrap:
            typer.echo(
                "No Kafka to monitor: set JOURNEY_KAFKA_BOOTSTRAP or pass --kafka host:port "
                "(the embedded broker lives only inside `journey demo`).",
                err=True,
            )
            raise typer.Exit(2)
        monitor = LagMonitor(
            bootstrap,
            group_prefix=settings.app_id,
            groups=group or None,
            window_s=window,
            client_kwargs=kafka_client_kwargs(settings),
        )
        try:
            code = asyncio.run(_run(monitor, samples=samples, window=window, as_json=as_json, watch=watch))
        except KeyboardInterrupt:
            code = 2
        raise typer.Exit(code)
