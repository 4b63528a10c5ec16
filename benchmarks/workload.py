"""The benchmark's input: a deterministic simulator workload, produced once before any system runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from orchestrator.config import Settings
from orchestrator.simulate import generate
from orchestrator.simulate.workload import Message
from orchestrator.topics import ensure_topics, runtime_repartition_topics


def build(seed: int, customers: int, topic_prefix: str) -> list[Message]:
    """Every event of `customers` journeys, all timed now (journey_scale=0: a load test, not a day).

    Faults (malformed, re-sent) are left out so every system processes the same, valid input.
    """
    return generate(
        seed, customers, datetime.now(UTC), journey_scale=0, faults=False, topic_prefix=topic_prefix
    )


async def produce(settings: Settings, messages: list[Message]) -> Counter[str]:
    """Create the worker's topics (so partition counts match), then publish `messages` in order."""
    bootstrap = str(settings.kafka_bootstrap)
    await ensure_topics(settings, bootstrap, repartition=runtime_repartition_topics(settings))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1)
    await producer.start()
    per_topic: Counter[str] = Counter()
    try:
        pending = []
        for message in messages:
            pending.append(await producer.send(message.topic, message.value, key=message.key))
            per_topic[message.topic] += 1
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return per_topic
