"""The touchpoint consumer on the embedded broker: pattern subscription, commit after handling, redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord
from conftest import new_topic_prefix

from orchestrator.config import Settings
from orchestrator.runtime.touchpoint_consumer import TouchpointConsumer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def create_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1) for name in names])
    finally:
        await admin.close()


async def committed(bootstrap: str, group: str, tp: TopicPartition) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return None if meta is None or meta.offset < 0 else meta.offset


async def test_consumes_matching_topics_commits_after_handling_and_redelivers_after_a_failure(
    kafka_bootstrap: str,
) -> None:
    prefix = new_topic_prefix()
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        app_id=f"{prefix}app",
        touchpoints_prefix=f"{prefix}touchpoints.",
        dlq_topic=f"{prefix}touchpoints.dlq",
    )
    kiosk = f"{prefix}touchpoints.kiosk"
    await create_topics(kafka_bootstrap, [kiosk, settings.dlq_topic, f"{prefix}actions.email"])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for topic in (kiosk, settings.dlq_topic, f"{prefix}actions.email"):
            await producer.send_and_wait(topic, b"first", partition=0)
    finally:
        await producer.stop()

    calls: list[list[tuple[str, bytes | None]]] = []
    handled = asyncio.Event()
    assigned: list[set[TopicPartition]] = []

    async def handle(records: Sequence[ConsumerRecord]) -> None:
        calls.append([(record.topic, record.value) for record in records])
        if len(calls) == 1:
            raise RuntimeError("the broker refused the batch's output")  # so nothing may be committed
        handled.set()

    consumer = TouchpointConsumer(
        settings, handle, session_timeout_s=6.0, fetch_max_wait_ms=50, max_records=100,
        on_assigned=assigned.append,
    )
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(handled.wait(), timeout=120)
        tp = TopicPartition(kiosk, 0)
        for _ in range(100):
            if await committed(kafka_bootstrap, settings.ingest_group, tp) == 1:
                break
            await asyncio.sleep(0.2)
        assert await committed(kafka_bootstrap, settings.ingest_group, tp) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # the dead letters and the action topics are never consumed; the failed batch came again
    assert calls == [[(kiosk, b"first")], [(kiosk, b"first")]]
    assert assigned and all(tps == {TopicPartition(kiosk, 0)} for tps in assigned)
