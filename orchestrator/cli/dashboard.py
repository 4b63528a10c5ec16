"""`journey dashboard`: the ops and KPI pages served on their own, bound to loopback by default."""

from __future__ import annotations

from typing import Annotated

import typer
from aiohttp import web

from orchestrator.cli.options import KafkaOption, WorkersOption, worker_urls
from orchestrator.config import Settings
from orchestrator.lag import LagMonitor, kafka_client_kwargs
from orchestrator.logging import configure_logging, get_logger
from orchestrator.web.server import build_app

log = get_logger(__name__)


def register(app: typer.Typer) -> None:
    @app.command("dashboard")
    def dashboard(
        port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8088,
        host: Annotated[
            str, typer.Option("--host", help="Address to bind (loopback unless told).")
        ] = "127.0.0.1",
        worker: WorkersOption = None,
        kafka: KafkaOption = None,
        lag_interval: Annotated[
            float, typer.Option("--lag-interval", min=0.5, help="Seconds between samples.")
        ] = 5.0,
    ) -> None:
        """Serve the live ops dashboard and the KPI page (lag sampled here, metrics read from workers)."""
        settings = Settings()
        configure_logging(settings.log_level, settings.log_format)
        bootstrap = kafka or settings.kafka_bootstrap
        monitor = (
            LagMonitor(
                bootstrap,
                group_prefix=settings.app_id,
                window_s=max(lag_interval * 6, 30.0),
                client_kwargs=kafka_client_kwargs(settings),
            )
            if bootstrap
            else None
        )
        if monitor is None:
            log.warning("dashboard_without_lag", reason="JOURNEY_KAFKA_BOOTSTRAP and --kafka unset")
        workers = worker_urls(worker, settings)
        application = build_app(
            workers=workers, monitor=monitor, lag_interval_s=lag_interval, token=settings.web_token
        )
        log.info("dashboard_serving", url=f"http://{host}:{port}/dashboard", workers=workers)
        web.run_app(application, host=host, port=port, print=None, handle_signals=True)
