"""The customers agent's batching over several messages keeps deliver-then-write and partition routing.

`handle_messages` takes the waiting messages of several partitions at once. Every table read and
write must stay in the partition of the message being acted for (Faust routes them by the current
event), and no table may be written before the broker acknowledged every output of the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from runtime_support import FakeEvent, FakeMessage

from agents.customers import handle_messages
from orchestrator.config import EXAMPLE_RULES
from orchestrator.runtime.deadlines import DeadlineIndex
from orchestrator.runtime.envelope import CustomerBatch, Deliver, Item, encode
from orchestrator.runtime.partition_scope import BatchWrites, write_in_partitions
from orchestrator.runtime.partitioning import partition_for
from orchestrator.runtime.rules_reload import LiveRules

PARTITIONS = 4


@dataclass
class Journal:
    """What happened, in order: `("send", …)`, `("acked", …)`, `("write", table, key)`, `("changelogs",)`."""

    entries: list[tuple[str, ...]] = field(default_factory=list)


@dataclass
class PartitionedTable:
    """A table that fails any access outside the current event's partition, like Faust's RocksDB store."""

    name: str
    journal: Journal
    data: dict[str, bytes] = field(default_factory=dict)

    def _check(self, key: str) -> None:
        event = faust.current_event()
        assert event is not None, f"{self.name}[{key}] accessed with no current event"
        assert partition_for(key, PARTITIONS) == event.message.partition, f"{self.name}[{key}] misrouted"

    def get(self, key: str) -> bytes | None:
        self._check(key)
        return self.data.get(key)

    def __setitem__(self, key: str, value: bytes) -> None:
        self._check(key)
        self.journal.entries.append(("write", self.name, key))
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        self._check(key)
        self.journal.entries.append(("write", self.name, key))
        del self.data[key]


@dataclass
class Topic:
    name: str
    journal: Journal

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, **kwargs: Any) -> Awaitable[None]:
        self.journal.entries.append(("send", self.name))

        async def acked() -> None:
            await asyncio.sleep(0)
            self.journal.entries.append(("acked", self.name))

        return asyncio.ensure_future(acked())


class Views:
    def put(self, profile: str, view: dict[str, Any]) -> None: ...

    def delete(self, profile: str) -> None: ...


class Kpis:
    def record(self, profile: str, step: Any) -> None: ...


@dataclass
class FakePipeline:
    journal: Journal = field(default_factory=Journal)
    rules: LiveRules = field(default_factory=lambda: LiveRules.load(EXAMPLE_RULES))
    index: DeadlineIndex = field(default_factory=DeadlineIndex)
    views: Views = field(default_factory=Views)
    kpis: Kpis = field(default_factory=Kpis)

    def __post_init__(self) -> None:
        for table in ("profiles", "deadlines", "merges"):
            setattr(self, table, PartitionedTable(table, self.journal))
        for topic in ("identity_topic", "customers_topic", "dlq"):
            setattr(self, topic, Topic(topic, self.journal))

    def partition(self, key: str) -> int:
        return partition_for(key, PARTITIONS)

    async def action_topic(self, suffix: str) -> Topic:
        return Topic(f"actions.{suffix}", self.journal)

    async def produce(self, topic: Topic, **record: Any) -> Awaitable[None]:
        return await topic.send(**record)

    async def write(self, runs: list[tuple[faust.EventT, BatchWrites]]) -> None:
        write_in_partitions(runs)
        self.journal.entries.append(("changelogs",))




def deliver(customer: str, n: int) -> Deliver:
    raw = orjson.dumps(
        {
            "event_id": f"{customer}-{n}",
            "type": "cart.item_added",
            "channel": "web",
            "occurred_at": "2026-05-04T09:00:00Z",
            "customer_id": customer,
            "properties": {"sku": "SOFA", "qty": 1, "price": 899},
        }
    )
    return Deliver(profile=customer, item=Item(raw, "web", 0.0))


def test_messages_of_several_partitions_write_in_their_partition_after_delivery() -> None:
    pipeline = FakePipeline()
    customers = [f"c-{n}" for n in range(12)]
    assert len({partition_for(c, PARTITIONS) for c in customers}) > 1
    offsets: dict[int, int] = {}
    events = []
    for round_no in range(2):  # two messages per partition: one batch of each partition's messages
        for customer in customers:
            partition = partition_for(customer, PARTITIONS)
            offsets[partition] = offsets.get(partition, -1) + 1
            value = encode(CustomerBatch([deliver(customer, round_no)]))
            events.append(FakeEvent(FakeMessage(partition, offsets[partition]), value))

    asyncio.run(handle_messages(pipeline, events))  # type: ignore[arg-type]

    entries = pipeline.journal.entries
    writes = [i for i, entry in enumerate(entries) if entry[0] == "write"]
    acks = [i for i, entry in enumerate(entries) if entry[0] == "acked"]
    assert writes and acks
    assert max(acks) < min(writes), "a table was written before every output was acknowledged"
    assert entries[-1] == ("changelogs",), "the batch's changelog records were not sent after its writes"
    assert sorted(pipeline.profiles.data) == sorted(customers)  # type: ignore[attr-defined]
    assert faust.current_event() is None
