"""Waits survive the worker: kill -9 and restart, and partitions moving between two workers.

Every pending wait must fire exactly once (same deterministic action id, one message per customer)
whether its partition's worker crashed or left the group.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from conftest import ProcessSpawner
from runtime_support import TopicReader, event, log_events, produce, values, wait_log, write_rules

from orchestrator.config import Settings
from orchestrator.embedded import ManagedProcess, free_port
from orchestrator.runtime.partitioning import partition_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WAIT = "15s"


def carts(count: int) -> list[dict]:
    run = uuid.uuid4().hex[:6]
    return [
        event(
            f"cart-{run}-{i}",
            "cart.item_added",
            "web",
            customer_id=f"c-{run}-{i}",
            properties={"sku": "CHAIR-9", "qty": 1, "price": 120},
        )
        for i in range(count)
    ]


async def publish_carts(settings: Settings, events: list[dict]) -> None:
    topic = settings.touchpoint_topic("web")
    await produce(
        str(settings.kafka_bootstrap), [(topic, e["customer_id"].encode(), orjson.dumps(e)) for e in events]
    )


async def wait_views(settings: Settings, customers: list[str], timeout_s: float = 30.0) -> None:
    """State was written once the context views are in Redis."""
    client = aioredis.Redis.from_url(str(settings.redis_url))
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await client.exists(*[f"journey:context:{c}" for c in customers]) == len(customers):
                return
            await asyncio.sleep(0.3)
        raise AssertionError("context views never appeared")
    finally:
        await client.aclose()


async def emails_once(settings: Settings, customers: list[str], timeout_s: float = 90.0) -> None:
    """Each customer gets exactly one abandoned-cart email (a short settle catches duplicates)."""
    reader = TopicReader(str(settings.kafka_bootstrap))
    wanted = set(customers)

    def mine(records: list) -> list[dict]:
        return [v for v in values(records) if v["customer_id"] in wanted]

    records = await reader.read(
        [settings.action_topic("email")],
        until=lambda r: {v["customer_id"] for v in mine(r)} == wanted,
        timeout_s=timeout_s,
        settle_s=3,
    )
    emails = mine(records)
    assert sorted(v["customer_id"] for v in emails) == sorted(customers)
    assert len({v["action_id"] for v in emails}) == len(customers)
    assert all(v["rule_id"] == "abandoned-cart" for v in emails)


def worker_settings(base: Settings, tmp_path: Path, name: str) -> Settings:
    return base.model_copy(update={"data_dir": tmp_path / name, "web_port": free_port()})


async def test_kill_9_and_restart_fires_every_pending_wait_once(
    isolated_settings: Settings, spawn: ProcessSpawner, tmp_path: Path
) -> None:
    settings = isolated_settings.model_copy(update={"rules": write_rules(tmp_path / "rules.yaml", wait=WAIT)})
    first = spawn.journey("worker", settings=settings, name="worker-a")
    await wait_log(first, "partitions_ready")
    events = carts(8)
    customers = [e["customer_id"] for e in events]
    await publish_carts(settings, events)
    await wait_views(settings, customers)
    await asyncio.sleep(3)  # let the changelogs and offsets be written, as they would be in real life
    os.killpg(first.pid, signal.SIGKILL)
    first.popen.wait()
    second = spawn.journey("worker", settings=settings, name="worker-a-restarted")
    ready = await wait_log(second, "partitions_ready")
    assert ready["partitions"] == [0, 1, 2, 3]
    await emails_once(settings, customers)


async def test_two_workers_split_partitions_and_hand_over_waits(
    isolated_settings: Settings, spawn: ProcessSpawner, tmp_path: Path
) -> None:
    settings = isolated_settings.model_copy(update={"rules": write_rules(tmp_path / "rules.yaml", wait=WAIT)})
    one = spawn.journey("worker", settings=worker_settings(settings, tmp_path, "one"), name="worker-1")
    two = spawn.journey("worker", settings=worker_settings(settings, tmp_path, "two"), name="worker-2")

    def owned(process: ManagedProcess) -> set[int]:
        ready = log_events(process, "partitions_ready")
        return set(ready[-1]["partitions"]) if ready else set()

    def split() -> bool:
        a, b = owned(one), owned(two)
        return bool(a) and bool(b) and not (a & b) and a | b == {0, 1, 2, 3}

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not split():
        await asyncio.sleep(0.5)
    assert split(), (owned(one), owned(two))
    events = carts(12)
    customers = [e["customer_id"] for e in events]
    on_two = [c for c in customers if partition_for(c, settings.partitions) in owned(two)]
    assert on_two, "no customer landed on the second worker"
    await publish_carts(settings, events)
    await wait_views(settings, customers)
    two.stop(grace_s=15)
    await wait_log(one, "partitions_ready", where=lambda r: r["partitions"] == [0, 1, 2, 3], timeout_s=60)
    await emails_once(settings, customers)
