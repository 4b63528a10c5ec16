"""The floor of consumption cost: aiokafka `getmany` over every partition, no group, no work."""

from __future__ import annotations

import argparse
import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.systems.result import Stopwatch, finish


async def consume(bootstrap: str, topics: list[str], expect: int) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    watch = Stopwatch(expect)
    watch.start()  # no group to join: the clock starts with the first fetch, whose records count too
    while True:
        batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
        for records in batches.values():
            if records and watch.tick(len(records)):
                finish(watch, "raw_aiokafka")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topics", required=True, help="comma-separated")
    parser.add_argument("--expect", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(consume(args.bootstrap, args.topics.split(","), args.expect))


if __name__ == "__main__":
    main()
