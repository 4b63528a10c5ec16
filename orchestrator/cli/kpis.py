"""`journey kpis`: the KPI rows of SPEC §5 from the live system, summed over workers.

Each worker serves the counts of the partitions it owns at `/api/kpis`, so the rows of every worker
added up are the whole system's — the same rows `journey replay --kpis` prints for the same events.
Exit 0 with the rows (a warning on stderr names workers that did not answer), 2 when none answered.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from orchestrator.cli.kpi_output import KpiFormat, print_kpis
from orchestrator.cli.options import WorkersOption, worker_urls
from orchestrator.config import Settings
from orchestrator.web.sources import KpiAnswer, RemoteMetrics


async def _gather(urls: list[str], token: str | None, timeout_s: float) -> KpiAnswer:
    remote = RemoteMetrics(urls, timeout_s=timeout_s, token=token)
    try:
        return await remote.kpis()
    finally:
        await remote.close()


def register(app: typer.Typer) -> None:
    @app.command("kpis")
    def kpis(
        as_json: Annotated[
            bool, typer.Option("--json", help="One JSON row per line (same as --format json).")
        ] = False,
        fmt: Annotated[
            str, typer.Option("--format", help="table (with 95 % intervals and p-values) or json.")
        ] = "table",
        worker: WorkersOption = None,
        timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds per worker.")] = 5.0,
    ) -> None:
        """KPI rows per rule and group (actions, conversions, rate, uplift) summed over the workers."""
        if fmt not in ("json", "table"):
            raise typer.BadParameter("--format must be json or table")
        settings = Settings()
        urls = worker_urls(worker, settings)
        answer = asyncio.run(_gather(urls, settings.web_token, timeout))
        for url, error in answer.failed.items():
            typer.echo(f"{'warning' if answer.answered else 'error'}: {url}: {error}", err=True)
        if not answer.answered:
            typer.echo(
                "No worker answered /api/kpis: start one (`journey worker`), or point --worker at the web "
                "port of a running one (JOURNEY_WEB_TOKEN must match when it is set).",
                err=True,
            )
            raise typer.Exit(2)
        if answer.failed:
            typer.echo("warning: the rows leave out the workers above until their partitions move", err=True)
        chosen: KpiFormat = "json" if as_json or fmt == "json" else "table"
        print_kpis(answer.rows, chosen)
