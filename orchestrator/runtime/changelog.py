"""Tables whose changelog records leave once per batch instead of one by one.

Faust sends a table write's changelog record the moment the key is set, through a path built for
one record at a time: a changelog future, the producer buffer and its task, the topic's publish path
and send sensors, then a persisted-offset write to RocksDB as each record is acknowledged — about
40 µs a record on the benchmark machine (benchmarks/RESULTS.md), and a batch of the customers agent
writes thousands. `BatchedChangelogTable` updates its store exactly as Faust does but only queues the
record; `send_changelogs` hands a batch's records straight to the producer Faust itself uses, so the
commit path (which flushes that producer before committing source offsets) covers them as before,
and persists each partition's offset once, when its last record of the batch is acknowledged.

The records are Faust's own (raw key, raw value, no value for a delete), so recovery and standbys
read them exactly as before. Every write to such a table must be followed by `send_changelogs`
before the messages that caused it are acknowledged: the agents call it right after their writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from orchestrator.logging import get_logger

log = get_logger(__name__)
RAW_CODEC = "raw"


class BatchedChangelogTable(faust.Table):
    """A `faust.Table` of raw keys and values whose changelog records wait for `send_changelogs`."""

    def __init__(self, app: faust.App, **options: Any) -> None:
        super().__init__(app, **options)
        if self.key_serializer != RAW_CODEC or self.value_serializer != RAW_CODEC:
            raise ValueError(f"table {self.name}: batched changelogs carry raw keys and values only")
        self.unsent: list[tuple[int, bytes, bytes | None]] = []

    def on_key_set(self, key: Any, value: Any) -> None:
        self.unsent.append((self._partition_of_write(key), _raw(key), value))

    def on_key_del(self, key: Any) -> None:
        self.unsent.append((self._partition_of_write(key), _raw(key), None))

    def _partition_of_write(self, key: Any) -> int:
        partition = self.partition_for_key(key)  # the current event's partition, as for Faust's writes
        if partition is None:
            raise ValueError(f"table {self.name}: batched changelogs need the current event's partition")
        return partition


def table(app: faust.App, name: str, **options: Any) -> BatchedChangelogTable:
    """Declare a batched-changelog table of bytes on `app`, as `app.Table` declares a plain one."""
    declared = BatchedChangelogTable(
        app,
        name=name,
        beacon=app.tables.beacon,
        key_type=bytes,
        value_type=bytes,
        **options,
    )
    app.tables.add(declared)
    return declared


def kafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer inside Faust's: the one its commit path flushes before committing offsets."""
    return app.producer._ensure_producer()


async def send_changelogs(app: faust.App, tables: Iterable[BatchedChangelogTable]) -> None:
    """Send every queued record of `tables`, in write order per partition; delivery is not awaited.

    Like Faust's own changelog sends these are fire-and-forget: the consumer's commit flushes the
    producer before it commits any offset, so no source offset is committed ahead of them. Records
    are packed into the producer's record batches here (`send_batch`, the producer's batch size and
    compression) rather than handed over one `send` at a time: ~6 µs of CPU a record less.
    """
    producer = kafka_producer(app)
    for batched in tables:
        if not batched.unsent:
            continue
        records, batched.unsent = batched.unsent, []
        topic = batched.changelog_topic.get_topic_name()
        per_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for partition, key, value in records:
            per_partition.setdefault(partition, []).append((key, value))
        for partition, entries in per_partition.items():
            await _send_in_batches(producer, batched, topic, partition, entries)


async def _send_in_batches(
    producer: AIOKafkaProducer,
    batched: BatchedChangelogTable,
    topic: str,
    partition: int,
    entries: list[tuple[bytes, bytes | None]],
) -> None:
    """Fill record batches in order; the last one's delivery persists the partition's offset."""
    batch = producer.create_batch()
    for key, value in entries:
        if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start the next
            await producer.send_batch(batch, topic, partition=partition)
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)  # a batch always takes its first record
    count = batch.record_count()
    delivery = await producer.send_batch(batch, topic, partition=partition)
    delivery.add_done_callback(partial(_persist_offset, batched, count))


def _persist_offset(
    batched: BatchedChangelogTable, count: int, delivery: asyncio.Future[RecordMetadata]
) -> None:
    """Record the last acknowledged offset (a batch's offset is its first record's), so recovery
    starts after what the store already holds."""
    if delivery.cancelled():
        return
    error = delivery.exception()
    if error is not None:
        log.error("changelog_send_failed", table=batched.name, error=type(error).__name__)
        return
    metadata = delivery.result()
    batched.data.set_persisted_offset(metadata.topic_partition, metadata.offset + count - 1)


def _raw(key: Any) -> bytes:
    return key if isinstance(key, bytes) else str(key).encode()
