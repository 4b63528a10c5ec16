"""`journey topics create`: create the orchestrator's topics on a real cluster before the first deploy.

The embedded broker is memory-only, so creating topics on one that stops right after is pointless:
without JOURNEY_KAFKA_BOOTSTRAP (or --bootstrap) this command refuses instead of starting one.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from aiokafka.errors import KafkaError

from orchestrator.config import Settings
from orchestrator.topics import TopicError, ensure_topics, plan_topics, runtime_repartition_topics

topics_app = typer.Typer(help="Kafka topics of the orchestrator.", no_args_is_help=True)


@topics_app.command("create")
def create(
    bootstrap: Annotated[
        str | None, typer.Option(help="host:port[,host:port]; default JOURNEY_KAFKA_BOOTSTRAP.")
    ] = None,
    partitions: Annotated[
        int | None, typer.Option(min=1, help="Partitions per topic; default JOURNEY_PARTITIONS.")
    ] = None,
    replication_factor: Annotated[
        int | None, typer.Option(min=1, help="Replicas per partition; default JOURNEY_REPLICATION_FACTOR.")
    ] = None,
    changelog: Annotated[
        list[str] | None, typer.Option(help="Also create this compacted changelog topic (repeatable).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; touch nothing.")] = False,
) -> None:
    """Create every touchpoint, action, dead-letter and internal topic that is missing (idempotent)."""
    overrides = {
        key: value
        for key, value in {"partitions": partitions, "replication_factor": replication_factor}.items()
        if value is not None
    }
    settings = Settings(**overrides)
    repartition = runtime_repartition_topics(settings)
    changelogs = changelog or []
    if dry_run:
        for spec in plan_topics(settings, repartition=repartition, changelogs=changelogs):
            config = ",".join(f"{key}={value}" for key, value in sorted(spec.config.items()))
            typer.echo(
                f"{spec.name}\tpartitions={spec.partitions}\treplicas={spec.replication_factor}\t{config}"
            )
        return
    servers = bootstrap or settings.kafka_bootstrap
    if not servers:
        typer.echo(
            "No Kafka to create topics on: set JOURNEY_KAFKA_BOOTSTRAP or pass --bootstrap. "
            "(The embedded broker is memory-only: topics on it last only as long as it runs.)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        report = asyncio.run(ensure_topics(settings, servers, repartition=repartition, changelogs=changelogs))
    except (TopicError, KafkaError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for name in report.created:
        typer.echo(f"created  {name}")
    for name in report.existing:
        mismatch = report.partition_mismatch.get(name)
        note = f" (has {mismatch} partitions, expected {settings.partitions})" if mismatch else ""
        typer.echo(f"exists   {name}{note}")
    if report.partition_mismatch:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(topics_app, name="topics")
