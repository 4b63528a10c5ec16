"""The consumer of the touchpoint topics: plain aiokafka in its own group, outside Faust's streams.

Why not a Faust agent: every touchpoint is its own Kafka message, and Faust's per-message path (an
event object, stream queues, per-message acks and sensors, the consumer thread handing messages
over) cost about as much CPU per touchpoint as all of the worker's own work on it
(benchmarks/RESULTS.md). The internal topics carry batches, so Faust's cost there is paid per batch;
ingest is stateless, so it needs none of what Faust adds (tables, recovery, co-partitioning).

Delivery is at-least-once, as for the agents: `handle` returns once the broker has acknowledged
everything the batch produced, and only then are the batch's offsets committed. A worker killed in
between has its batch fetched again by the next owner; identity and customers absorb the repeat
(idempotent alias links, `event_id` deduplication, deterministic action ids). A revocation waits for
the batch in hand and its commit, so partitions move with their offsets up to date.

The group subscribes by pattern (`Settings.touchpoint_pattern`): a new channel's topic is consumed
once the client's metadata refresh sees it, with no worker change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord

from orchestrator.config import Settings
from orchestrator.lag import kafka_client_kwargs
from orchestrator.logging import get_logger

log = get_logger(__name__)

Handler = Callable[[Sequence[ConsumerRecord]], Awaitable[None]]

POLL_MS = 200
NEW_TOPICS_WITHIN_MS = 30_000  # metadata refresh: how soon a new channel topic is subscribed
FETCH_BYTES_PER_PARTITION = 4 * 1024 * 1024  # above the largest event (1 MiB) with room to spare
RESTART_AFTER_S = 1.0


class TouchpointConsumer:
    """Fetch batches of touchpoints, hand each to `handle`, commit its offsets once it returns."""

    def __init__(
        self,
        settings: Settings,
        handle: Handler,
        *,
        session_timeout_s: float,
        fetch_max_wait_ms: int,
        max_records: int,
        on_assigned: Callable[[set[TopicPartition]], None] = lambda _: None,
    ) -> None:
        self.settings = settings
        self.handle = handle
        self.session_timeout_s = session_timeout_s
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.max_records = max_records
        self.on_assigned = on_assigned
        self._batch_in_hand = asyncio.Lock()

    async def run(self) -> None:
        """Consume until cancelled; an unexpected error restarts the client from the committed offsets."""
        while True:
            consumer = self._client()
            try:
                await consumer.start()
                await self._consume(consumer)
            except Exception:
                log.exception("touchpoint_consumer_failed", restart_after_s=RESTART_AFTER_S)
                await asyncio.sleep(RESTART_AFTER_S)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=self.max_records)
            if not batches:
                continue
            async with self._batch_in_hand:
                await self.handle([record for records in batches.values() for record in records])
                owned = consumer.assignment()
                offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if tp in owned}
                await _commit(consumer, offsets)

    def _client(self) -> AIOKafkaConsumer:
        settings = self.settings
        timeout_ms = int(self.session_timeout_s * 1000)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=str(settings.kafka_bootstrap),
            group_id=settings.ingest_group,
            client_id=settings.ingest_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            max_partition_fetch_bytes=FETCH_BYTES_PER_PARTITION,
            metadata_max_age_ms=NEW_TOPICS_WITHIN_MS,
            session_timeout_ms=timeout_ms,
            heartbeat_interval_ms=timeout_ms // 10,
            rebalance_timeout_ms=timeout_ms,
            **kafka_client_kwargs(settings),
        )
        consumer.subscribe(pattern=settings.touchpoint_pattern, listener=_Rebalance(self))
        return consumer


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: TouchpointConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.owner._batch_in_hand:  # the batch in hand finishes and commits first
            pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("touchpoints_assigned", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))
        self.owner.on_assigned(assigned)


async def _commit(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    """Commit `offsets`; after losing the partitions the next owner fetches the batch again."""
    if not offsets:
        return
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        log.warning("touchpoint_commit_skipped", reason=type(exc).__name__, partitions=len(offsets))
