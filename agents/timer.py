"""Waits on time: ask each owned partition to fire its due waits, and rebuild the indexes on rebalance.

Faust only allows table writes while processing a message, and writes go to the changelog
partition of that message; so the timer never touches state itself. It sends a `tick` to
`journey.customers` with the explicit partition that has due entries, and the customers agent
fires them. A tick stays "in flight" until processed (or retried after a few seconds), so a slow
partition is not flooded with ticks.
"""

from __future__ import annotations

from typing import Any

from orchestrator import metrics
from orchestrator.logging import get_logger
from orchestrator.runtime.envelope import CustomerBatch, Tick, encode
from orchestrator.runtime.pipeline import DUE, Pipeline, now

log = get_logger(__name__)


def register(pipeline: Pipeline) -> None:
    app = pipeline.app

    @app.timer(pipeline.settings.timer_interval_s, name="journey.timer")
    async def fire_due_waits() -> None:
        clock = now()
        for partition in pipeline.index.partitions_due(clock):
            if pipeline.tick_due(partition, clock):
                pipeline.ticks_in_flight[partition] = clock
                tick = encode(CustomerBatch([Tick()]))
                await pipeline.customers_topic.send(value=tick, partition=partition)

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, *_: Any, **__: Any) -> None:
        pipeline.tables_ready = False
        pipeline.index.clear()
        pipeline.ticks_in_flight.clear()

    @app.on_rebalance_complete.connect
    async def rebuild_index(sender: Any, *_: Any, **__: Any) -> None:
        rebuild(pipeline)


def owned_partitions(pipeline: Pipeline) -> set[int]:
    topic = pipeline.customers_topic.get_topic_name()
    return {tp.partition for tp in pipeline.app.assignor.assigned_actives() if tp.topic == topic}


def rebuild(pipeline: Pipeline) -> None:
    """Re-read the small `deadlines` table of the partitions this worker now owns."""
    owned = owned_partitions(pipeline)
    entries: list[tuple[int, str, float]] = []
    for key, value in pipeline.deadlines.items():
        profile = key.decode() if isinstance(key, bytes) else str(key)
        partition = pipeline.partition(profile)
        if partition in owned:
            entries.append((partition, profile, DUE.unpack(value)[0]))
    pipeline.index.rebuild(entries)
    pipeline.kpis.rebuild(owned, pipeline.partition)
    pipeline.ticks_in_flight.clear()
    pipeline.tables_ready = True
    metrics.set_pending_waits(len(pipeline.index))
    log.info("partitions_ready", partitions=sorted(owned), pending_profiles=len(entries))
    pipeline.announce_ready()
