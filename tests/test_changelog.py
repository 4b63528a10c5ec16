"""Batched changelogs write what Faust's own table path writes: same records, same store, same offsets.

Recovery and standbys replay a table's changelog with Faust's own code, so a batched record must be
byte-for-byte the record Faust would have sent for the same write, in the same order, and the
persisted offset must name the last record the broker acknowledged. Runs against the session's
embedded broker with a real RocksDB store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust
from aiokafka.structs import ConsumerRecord
from faust.types import TP
from kafka_readback import read_back
from runtime_support import FakeEvent, FakeMessage

from orchestrator.runtime import changelog
from orchestrator.runtime.partition_scope import acting_for


def source(topic: str, partition: int) -> FakeEvent:
    """The current event a table write is routed by: a message of `partition` of `topic`."""
    return FakeEvent(FakeMessage(partition, 0, topic))


def write_both(tables: list[faust.Table], topic: str) -> None:
    """The same writes to each table: keys on two partitions, an overwrite and a delete."""
    for table in tables:
        with acting_for(source(topic, 0)):  # type: ignore[arg-type]
            table["alice"] = b"v1"
            table["alice"] = b"v2"
            table[b"k:raw"] = b"\x00\x01"
        with acting_for(source(topic, 1)):  # type: ignore[arg-type]
            table["bob"] = b"b"
            del table["bob"]


def shape(records: list[ConsumerRecord[bytes, bytes]]) -> list[tuple[int, bytes | None, bytes | None, tuple]]:
    ordered = sorted(records, key=lambda r: (r.partition, r.offset))
    return [(r.partition, r.key, r.value, tuple(r.headers)) for r in ordered]


def test_batched_records_store_and_offsets_match_fausts(kafka_bootstrap: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        app = faust.App(
            f"changelog-{tmp_path.name}",
            broker=f"kafka://{kafka_bootstrap}",
            store="rocksdb://",
            datadir=str(tmp_path),
            topic_partitions=2,
            autodiscover=False,
        )
        source_topic = app.topic("changelog-source", partitions=2, value_serializer="raw")
        plain = app.Table("plain", partitions=2, key_type=bytes, value_type=bytes)
        batched = changelog.table(app, "batched", partitions=2)
        for table in (plain, batched):
            await table.changelog_topic.maybe_declare()
        await source_topic.maybe_declare()  # declaring starts the producer
        try:
            write_both([plain, batched], source_topic.get_topic_name())
            assert len(batched.unsent) == 5, "the batched table sent a record before send_changelogs"
            await changelog.send_changelogs(app, [batched])
            assert batched.unsent == []
            await app.producer.flush()
            await asyncio.sleep(0.1)  # delivery callbacks persist the offsets

            names = [plain.changelog_topic.get_topic_name(), batched.changelog_topic.get_topic_name()]
            faust_records = await read_back(kafka_bootstrap, names[:1], 5)
            batched_records = await read_back(kafka_bootstrap, names[1:], 5)
            assert shape(batched_records) == shape(faust_records)

            for partition in (0, 1):
                with acting_for(source(source_topic.get_topic_name(), partition)):  # type: ignore[arg-type]
                    assert [batched.get(k) for k in ("alice", b"k:raw", "bob")] == [
                        plain.get(k) for k in ("alice", b"k:raw", "bob")
                    ]
                last = max(r.offset for r in batched_records if r.partition == partition)
                tp = TP(names[1], partition)
                assert batched.data.persisted_offset(tp) == last
        finally:
            await app.producer.stop()

    asyncio.run(scenario())
