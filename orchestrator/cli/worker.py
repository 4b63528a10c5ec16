"""`journey worker`: run one stream-processing worker (Faust) against Kafka and Redis.

With no broker or Redis configured it starts the embedded ones (a laptop needs nothing
installed). It creates the topics it needs with the configured partition count before Faust
starts (a table's changelog must match its source topic). Shutdown on SIGTERM/Ctrl-C is bounded:
a watchdog hard-exits if Faust has not stopped within `SHUTDOWN_GRACE_S` (a crashed agent can
otherwise keep the process alive).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import faust
import typer

from orchestrator.app import changelog_topics, create_app
from orchestrator.config import Settings
from orchestrator.embedded import resolve_stack
from orchestrator.logging import configure_logging, get_logger
from orchestrator.runtime.tuning import tune_app, tune_gc
from orchestrator.topics import ensure_topics, runtime_repartition_topics

log = get_logger(__name__)

SHUTDOWN_GRACE_S = 10.0
EXIT_WATCHDOG = 70  # EX_SOFTWARE: the worker did not stop in time and was cut short


def _watchdog(grace_s: float) -> None:
    time.sleep(grace_s)
    log.error("worker_shutdown_timeout", grace_s=grace_s)
    os._exit(EXIT_WATCHDOG)


class BoundedWorker(faust.Worker):
    """A Faust worker whose signal-triggered shutdown cannot hang."""

    _watchdog_started = False

    def _start_watchdog(self) -> None:
        if not self._watchdog_started:
            self._watchdog_started = True
            threading.Thread(target=_watchdog, args=(SHUTDOWN_GRACE_S,), daemon=True).start()

    def _on_sigterm(self) -> None:
        self._start_watchdog()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._start_watchdog()
        super()._on_sigint()


def run_worker(settings: Settings, rules: Path | None = None) -> None:
    """Start embedded servers if needed, create topics, run the worker until it is stopped."""
    configure_logging(settings.log_level, settings.log_format)
    bootstrap, redis_url, stack = resolve_stack(settings)
    try:
        embedded_kafka = stack is not None and stack.broker is not None
        settings = settings.model_copy(
            update={
                "kafka_bootstrap": bootstrap,
                "redis_url": redis_url,
                "kafka_single_record_batches": settings.kafka_single_record_batches or embedded_kafka,
            }
        )
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = create_app(settings, rules)
        tune_app(app)
        loop.run_until_complete(
            ensure_topics(
                settings,
                repartition=runtime_repartition_topics(settings),
                changelogs=changelog_topics(app),
            )
        )
        log.info(
            "worker_starting",
            app_id=settings.app_id,
            kafka=bootstrap,
            web_port=settings.web_port,
            embedded=stack is not None,
        )
        worker = BoundedWorker(app, loop=loop, loglevel=settings.log_level, override_logging=False)
        tune_gc()
        worker.execute_from_commandline()
    finally:
        if stack is not None:
            stack.stop()


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        web_port: Annotated[int | None, typer.Option(help="Metrics/dashboard port.")] = None,
        rules: Annotated[Path | None, typer.Option(help="Rule file or folder (hot-reloaded).")] = None,
        kafka: Annotated[str | None, typer.Option(help="host:port[,…]; unset = embedded.")] = None,
        redis: Annotated[str | None, typer.Option(help="Redis URL; unset = embedded.")] = None,
        data_dir: Annotated[Path | None, typer.Option(help="Local state (RocksDB) directory.")] = None,
    ) -> None:
        """Run a worker: touchpoints in, actions out, state in changelogged RocksDB tables."""
        overrides: dict[str, Any] = {
            "web_port": web_port,
            "rules": rules,
            "kafka_bootstrap": kafka,
            "redis_url": redis,
            "data_dir": data_dir,
        }
        settings = Settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})
        run_worker(settings)
