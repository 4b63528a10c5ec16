"""Options shared by several commands, declared once so they read and behave the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

KafkaOption = Annotated[
    str | None,
    typer.Option("--kafka", "--bootstrap", help="host:port[,host:port]; default JOURNEY_KAFKA_BOOTSTRAP."),
]
