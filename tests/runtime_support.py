"""Helpers of the runtime integration tests: test rule files, worker start-up, produce and read back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from orchestrator.embedded import ManagedProcess

# The worked example's journeys (SPEC examples), with the cart wait a parameter and no quiet hours
# (start == end), so a test sees the abandoned-cart email seconds after the cart.
EXAMPLE_RULES = """version: 1
defaults:
  timezone: Europe/Paris
  quiet_hours: {start: "00:00", end: "00:00"}
contact_policy:
  max_per_day: 3
  channels:
    email: {max_per_day: 1}
geofences:
  - {id: montreal-downtown, lat: 45.5017, lon: -73.5673, radius_m: 400}
counters:
  failed_intents: {on: chat.intent_failed, reset_on: [chat.resolved]}
rules:
  - id: abandoned-cart
    priority: 50
    trigger: {event: cart.item_added, channel: [web, mobile]}
    condition: "cart.total >= 20"
    wait:
      for: WAIT
      cancel_on: [order.completed, cart.cleared]
      recheck: "len(cart.items) > 0"
    cooldown: 24h
    action:
      type: email.send
      params: {template: abandoned_cart, total: "${cart.total}"}
  - id: nearby-store-offer
    priority: 40
    trigger: {event: geofence.entered}
    condition: "len(recent.viewed) > 0 and (last_seen.store == null or days_since(last_seen.store) > 7)"
    cooldown: 12h
    action:
      type: push.send
      params: {template: nearby_offer, store: "${event.properties.geofence}"}
  - id: chatbot-to-human
    priority: 100
    trigger: {event: chat.message, channel: [chat]}
    condition: "counters.failed_intents >= 2 or event.properties.sentiment <= -0.5"
    cooldown: 15m
    action:
      type: chat.handoff
      category: service
      params: {queue: tier1}
      context: true
"""

PING_RULE = """  - id: ping-reply
    trigger: {event: test.ping}
    action:
      type: chat.reply
      category: service
      params: {answer: pong}
"""


def write_rules(path: Path, *, wait: str = "4s", extra: str = PING_RULE) -> Path:
    """The example journeys with a `wait` cart delay, plus `extra` rules (a no-cooldown ping by default)."""
    path.write_text(EXAMPLE_RULES.replace("WAIT", wait) + extra)
    return path


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def log_events(process: ManagedProcess, name: str) -> list[dict[str, Any]]:
    """The worker's JSON log lines whose `event` is `name`."""
    found: list[dict[str, Any]] = []
    with open(process.log_path, "rb") as log:
        for line in log:
            if name.encode() not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == name:
                found.append(record)
    return found


async def wait_log(
    process: ManagedProcess,
    name: str,
    *,
    count: int = 1,
    timeout_s: float = 120.0,
    where: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> dict[str, Any]:
    """Wait until the worker logged `name` (matching `where`) `count` times; return the last one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        matches = [r for r in log_events(process, name) if where(r)]
        if len(matches) >= count:
            return matches[-1]
        if not process.running:
            raise AssertionError(f"{process.name} exited:\n{process.tail()}")
        await asyncio.sleep(0.3)
    raise AssertionError(f"{process.name} never logged {name!r} x{count}:\n{process.tail()}")


async def produce(
    bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes]], gap_s: float = 0.0
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for topic, key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
            if gap_s:
                await asyncio.sleep(gap_s)
    finally:
        await producer.stop()


def event(event_id: str, type_: str, channel: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "channel": channel, "occurred_at": now_iso(), **fields}


def worked_example(
    examples: Path, customer: str, anon: str, **identify: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The worked example's events (`examples/events.jsonl`) for a fresh customer, re-timed to now.

    Returns the events up to the `identify` (they merge the anonymous profile) and the ones after it,
    so a test can wait for the merge in between. Event ids are prefixed with `customer`; `identify`
    fields (e.g. `identifiers`, `properties`) replace the identify event's own.
    """
    ids = {"anonymous_id": anon, "customer_id": customer}
    events = []
    for line in (examples / "events.jsonl").read_text(encoding="utf-8").splitlines():
        original = json.loads(line)
        rewritten = {
            **original,
            **{field: ids[field] for field in ids if field in original},
            "event_id": f"{customer}-{original['event_id']}",
            "occurred_at": now_iso(),
        }
        if original["type"] == "identify":
            rewritten.update(identify)
        events.append(rewritten)
    split = next(i for i, e in enumerate(events) if e["type"] == "identify") + 1
    return events[:split], events[split:]


class TopicReader:
    """Reads topics from the beginning without a consumer group (Tansu group joins are slow)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def read(
        self,
        topics: list[str],
        until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
        timeout_s: float = 30.0,
        settle_s: float = 0.0,
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """All records so far once `until(records)` holds (then `settle_s` more, to catch extras)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        await consumer.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            deadline = time.monotonic() + timeout_s
            assigned: set[TopicPartition] = set()
            settle_until: float | None = None
            while time.monotonic() < deadline:
                await consumer.topics()  # refreshes metadata: action topics appear on first use
                wanted = {
                    TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())
                }
                if wanted - assigned:
                    new = wanted - assigned
                    assigned |= new
                    consumer.assign(list(assigned))
                    await consumer.seek_to_beginning(*new)
                if assigned:
                    for batch in (await consumer.getmany(timeout_ms=300)).values():
                        records.extend(batch)
                else:
                    await asyncio.sleep(0.3)
                if settle_until is None and until(records):
                    settle_until = time.monotonic() + settle_s
                if settle_until is not None and time.monotonic() >= settle_until:
                    return records
            return records
        finally:
            await consumer.stop()


def values(records: list[ConsumerRecord[bytes, bytes]]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records if r.value is not None]


@dataclass(eq=False)
class FakeMessage:
    partition: int
    offset: int
    topic: str = ""  # a real Faust table's write checks its source topic's partition count


@dataclass(eq=False)
class FakeEvent:
    """The part of `faust.EventT` that agents and table routing read: `event.message.partition`, `.value`."""

    message: FakeMessage
    value: bytes = b""
