"""Options shared by several commands, declared once so they read and behave the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.config import Settings

KafkaOption = Annotated[
    str | None,
    typer.Option("--kafka", "--bootstrap", help="host:port[,host:port]; default JOURNEY_KAFKA_BOOTSTRAP."),
]

WorkersOption = Annotated[
    list[str] | None,
    typer.Option(
        "--worker", help="Worker base URL (repeatable); default http://127.0.0.1:<JOURNEY_WEB_PORT>."
    ),
]


def worker_urls(given: list[str] | None, settings: Settings) -> list[str]:
    """The workers to ask: those given, else the one on this host's configured web port."""
    return given or [f"http://127.0.0.1:{settings.web_port}"]
