"""Live probes against a running worker: publish->action latency at a fixed rate, and wait lateness.

The load is the simulator's journeys (a fresh round, so new customers) stamped with the moment each
event is sent; every tenth event is a chat message angry enough to trigger an immediate hand-off,
so there are many immediate actions to time. A few `bench.wait_probe` events start a short wait
(`WAIT_RULE`); its action's `decided_at` is the wait's due time, and lateness is the action's
arrival minus that. Times are read where a sender would see them: when the action is read back.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import cycle

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from orchestrator.simulate import generate
from orchestrator.simulate.workload import format_time

WAIT_S = 2.0
WAIT_RULE = f"""  - id: bench-wait-probe
    trigger: {{event: bench.wait_probe}}
    wait: {{for: {WAIT_S:g}s}}
    action: {{type: chat.reply, category: service, params: {{answer: later}}}}
"""
ANGRY_EVERY = 10
# The probe publishes as a channel app would, batching what it sends within 5 ms (Kafka clients'
# default linger since 4.0); the time an event waits in the batch counts in its latency. With no
# linger every event is its own produce request, and at thousands per second the probe's producer and
# the broker's request handling took the cores the worker runs on (2 here, shared by everything).
PUBLISH_LINGER_MS = 5
SETTLE_S = WAIT_S + 3.0


@dataclass
class LiveResult:
    rate: float
    sent: int
    latencies_s: list[float] = field(default_factory=list)
    lateness_s: list[float] = field(default_factory=list)
    wait_probes: int = 0


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class ActionReader:
    """Reads every `actions.*` topic from its current end, noting when each action arrives."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.arrivals: dict[str, list[tuple[float, dict[str, object]]]] = {}
        # a short fetch wait: the embedded broker holds a fetch for its whole wait even when data arrives
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=5
        )
        self._assigned: set[TopicPartition] = set()
        self._stop = asyncio.Event()

    async def start(self) -> None:
        await self._consumer.start()
        await self._refresh(from_end=True)

    async def _refresh(self, *, from_end: bool) -> None:
        topics = {t for t in await self._consumer.topics() if t.startswith(self.prefix)}
        wanted = {
            TopicPartition(t, p) for t in topics for p in (self._consumer.partitions_for_topic(t) or ())
        }
        new = wanted - self._assigned
        if new:
            self._assigned |= new
            self._consumer.assign(list(self._assigned))
            if from_end:
                await self._consumer.seek_to_end(*new)
            else:  # a topic that appeared during the run holds only actions of this run
                await self._consumer.seek_to_beginning(*new)

    async def run(self) -> None:
        last_refresh = time.monotonic()
        while not self._stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=100)
            at = time.time()
            for records in batches.values():
                for record in records:
                    action = orjson.loads(record.value)
                    self.arrivals.setdefault(str(action["trigger_event_id"]), []).append((at, action))
            if time.monotonic() - last_refresh > 0.5:
                last_refresh = time.monotonic()
                await self._refresh(from_end=False)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.sleep(0.2)
        await self._consumer.stop()


def load(
    seed: int, customers: int, count: int, topic_prefix: str
) -> list[tuple[str, bytes | None, dict[str, object]]]:
    """`count` events: simulator journeys of new customers, every tenth one an angry chat message."""
    journeys = generate(seed, customers, round_no=1, journey_scale=0, faults=False, topic_prefix=topic_prefix)
    source = cycle(journeys)
    out: list[tuple[str, bytes | None, dict[str, object]]] = []
    for n in range(count):
        if n % ANGRY_EVERY == 0:
            cid = f"bench-angry-{seed}-{n}"
            body: dict[str, object] = {
                "event_id": f"angry-{seed}-{n}",
                "type": "chat.message",
                "channel": "chat",
                "customer_id": cid,
                "properties": {"text": "this is useless", "sentiment": -0.9},
            }
            out.append((f"{topic_prefix}chat", cid.encode(), body))
        else:
            message = next(source)
            body = orjson.loads(message.value)
            body["event_id"] = f"{body['event_id']}-{n}"
            out.append((message.topic, message.key, body))
    return out


def wait_probe(n: int, topic_prefix: str, seed: int) -> tuple[str, bytes, dict[str, object]]:
    """A probe of its own customer and event id per seed: a second probe run must not be a duplicate."""
    cid = f"bench-wait-{seed}-{n}"
    body: dict[str, object] = {
        "event_id": f"wait-{seed}-{n}",
        "type": "bench.wait_probe",
        "channel": "chat",
        "customer_id": cid,
    }
    return f"{topic_prefix}chat", cid.encode(), body


async def probe(
    bootstrap: str,
    touchpoints_prefix: str,
    actions_prefix: str,
    rate: float,
    seconds: float,
    wait_probes: int,
    seed: int,
) -> LiveResult:
    """Publish at `rate` events/s for `seconds`, spreading `wait_probes` waits over the same span."""
    total = max(1, int(rate * seconds))
    events = load(seed, max(50, total // 6), total, touchpoints_prefix)
    waits_every = max(1, total // max(1, wait_probes))
    reader = ActionReader(bootstrap, actions_prefix)
    await reader.start()
    reading = asyncio.create_task(reader.run())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=PUBLISH_LINGER_MS, acks=1)
    await producer.start()
    published: dict[str, float] = {}
    result = LiveResult(rate=rate, sent=total)
    try:
        start = time.perf_counter()
        pending = []
        for n, (topic, key, body) in enumerate(events):
            target = start + n / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            batch = [(topic, key, body)]
            if n % waits_every == 0 and result.wait_probes < wait_probes:
                batch.append(wait_probe(result.wait_probes, touchpoints_prefix, seed))
                result.wait_probes += 1
            for topic_, key_, body_ in batch:
                sent_at = time.time()
                body_["occurred_at"] = format_time(datetime.fromtimestamp(sent_at, UTC))
                published[str(body_["event_id"])] = sent_at
                pending.append(await producer.send(topic_, orjson.dumps(body_), key=key_))
        await asyncio.gather(*pending)
        await _settle(reader, result.wait_probes)
    finally:
        await producer.stop()
        await reader.stop()
        reading.cancel()
    for event_id, arrivals in reader.arrivals.items():
        sent_at = published.get(event_id)
        if sent_at is None:
            continue
        for arrived, action in arrivals:
            if action["rule_id"] == "bench-wait-probe":
                result.lateness_s.append(arrived - _parse_time(str(action["decided_at"])))
            else:
                result.latencies_s.append(arrived - sent_at)
    return result


async def _settle(reader: ActionReader, wait_probes: int) -> None:
    """Until every wait probe fired (or `SETTLE_S` passed with nothing new)."""
    deadline = time.monotonic() + SETTLE_S
    seen = -1
    while time.monotonic() < deadline:
        fired = sum(1 for key in reader.arrivals if key.startswith("wait-"))
        count = sum(len(v) for v in reader.arrivals.values())
        if fired >= wait_probes and count == seen:
            return
        seen = count
        await asyncio.sleep(0.5)
