"""The wiring every agent shares: topics, tables, the live rules, the deadline index, the view writer.

Agents receive one `Pipeline` instead of module globals so that `create_app` can build several
independent apps (tests, the demo) in one process. `Outbox` groups what a batch produces by
destination partition so each hop sends one message per partition.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.structs import RecordMetadata

from orchestrator.config import Settings
from orchestrator.logging import get_logger
from orchestrator.runtime.changelog import BatchedChangelogTable, kafka_producer, send_changelogs
from orchestrator.runtime.context_view import ContextViewWriter
from orchestrator.runtime.deadlines import DeadlineIndex
from orchestrator.runtime.envelope import (
    CustomerBatch,
    CustomerCommand,
    IdentityBatch,
    IdentityCommand,
    encode,
)
from orchestrator.runtime.kpi_ledger import KpiLedger
from orchestrator.runtime.partition_scope import BatchWrites, write_in_partitions
from orchestrator.runtime.partitioning import partition_for
from orchestrator.runtime.rules_reload import LiveRules

log = get_logger(__name__)
RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
TICK_RETRY_S = 5.0
DUE = struct.Struct("!d")  # `deadlines` table values: the next due time, seconds
# Internal messages stay well under the producer's 4 MiB request limit (app.py): a batch of a few
# events near the 1 MiB event limit would otherwise be refused and crash the agent sending it.
MESSAGE_BYTES_MAX = 2 * 1024 * 1024


def split_batch(commands: list[Any], batch: type[IdentityBatch] | type[CustomerBatch]) -> list[bytes]:
    """`commands` encoded as one message, or as several in order when one would be too large."""
    value = encode(batch(commands))
    if len(value) <= MESSAGE_BYTES_MAX or len(commands) == 1:
        return [value]
    half = len(commands) // 2
    return split_batch(commands[:half], batch) + split_batch(commands[half:], batch)


@dataclass
class Pipeline:
    settings: Settings
    app: faust.App
    rules: LiveRules
    views: ContextViewWriter
    identity_topic: faust.TopicT
    customers_topic: faust.TopicT
    dlq: faust.TopicT
    aliases: BatchedChangelogTable
    profiles: BatchedChangelogTable
    deadlines: BatchedChangelogTable
    merges: BatchedChangelogTable
    kpis: KpiLedger
    index: DeadlineIndex = field(default_factory=DeadlineIndex)
    tables_ready: bool = False  # Faust's partitions assigned and tables recovered
    touchpoints_joined: bool = False  # the touchpoint consumer got its first assignment
    ticks_in_flight: dict[int, float] = field(default_factory=dict)
    _action_topics: dict[str, faust.TopicT] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """What `/readyz` reports: both consumer groups joined, tables recovered."""
        return self.tables_ready and self.touchpoints_joined

    def announce_ready(self) -> None:
        """Log `worker_ready` when the last of the two conditions is met (after each rebalance)."""
        if self.ready:
            log.info("worker_ready", rules_version=self.rules.version)

    @property
    def partitions(self) -> int:
        return self.settings.partitions

    def partition(self, key: str) -> int:
        return partition_for(key, self.settings.partitions)

    async def action_topic(self, suffix: str) -> faust.TopicT:
        """`actions.<suffix>`, declared on first use so a new rule's channel needs no deploy step."""
        topic = self._action_topics.get(suffix)
        if topic is None:
            topic = self.app.topic(
                self.settings.action_topic(suffix), partitions=self.settings.partitions, **RAW
            )
            await topic.maybe_declare()
            self._action_topics[suffix] = topic
        return topic

    async def produce(
        self, topic: faust.TopicT, *, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> asyncio.Future[RecordMetadata]:
        """Hand one record to the producer; the future resolves once the broker has it.

        Straight to the producer Faust itself uses, so its commit path still flushes the record first:
        `Topic.send` would wrap each record in Faust's futures, buffer and send sensors, none of which
        this pipeline uses, at several times the cost (benchmarks/RESULTS.md).
        """
        producer = kafka_producer(self.app)
        return await producer.send(topic.get_topic_name(), key=key, value=value, partition=partition)

    async def write(self, runs: Sequence[tuple[faust.EventT, BatchWrites]]) -> None:
        """Each run's table writes, acting for its partition, then the changelog records of them all.

        Call once the batch's output is delivered. What was written reaches the changelog even if a
        later run's writes fail, so the store and its changelog never drift apart.
        """
        try:
            write_in_partitions(runs)
        finally:
            tables = (self.aliases, self.profiles, self.deadlines, self.merges, self.kpis.table)
            await send_changelogs(self.app, tables)

    def tick_due(self, partition: int, now: float) -> bool:
        """True when a tick should be sent: none in flight, or the last one got lost."""
        sent = self.ticks_in_flight.get(partition)
        return sent is None or now - sent > TICK_RETRY_S


@dataclass
class Outbox:
    """Everything one batch sends, delivered before the batch writes any state (deliver-then-write).

    Commands are grouped by destination partition and sent as one message each. `flush` returns
    only once the broker has acknowledged every message, so a worker killed at any moment either
    has not written the batch's state yet (the batch is redelivered and decided again, with the
    same action ids) or has delivered all of its output: an action is never lost, at worst sent twice.
    """

    pipeline: Pipeline
    identity: defaultdict[int, list[IdentityCommand]] = field(default_factory=lambda: defaultdict(list))
    customers: defaultdict[int, list[CustomerCommand]] = field(default_factory=lambda: defaultdict(list))
    in_flight: list[Awaitable[Any]] = field(default_factory=list)

    def to_identity(self, key: str, command: IdentityCommand) -> None:
        self.identity[self.pipeline.partition(key)].append(command)

    def to_customers(self, key: str, command: CustomerCommand) -> None:
        self.customers[self.pipeline.partition(key)].append(command)

    async def send(
        self, topic: faust.TopicT, *, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> None:
        """Send now; delivery is awaited by `flush`."""
        self.in_flight.append(await self.pipeline.produce(topic, key=key, value=value, partition=partition))

    async def flush(self) -> None:
        for partition, identity_commands in self.identity.items():
            for value in split_batch(identity_commands, IdentityBatch):
                await self.send(self.pipeline.identity_topic, value=value, partition=partition)
        for partition, customer_commands in self.customers.items():
            for value in split_batch(customer_commands, CustomerBatch):
                await self.send(self.pipeline.customers_topic, value=value, partition=partition)
        self.identity.clear()
        self.customers.clear()
        in_flight, self.in_flight = self.in_flight, []
        await asyncio.gather(*in_flight)


def now() -> float:
    """The live system's clock (SPEC §3 "Clock"): the wall clock."""
    return time.time()
