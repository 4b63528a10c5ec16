"""The embedded stack answers like real Kafka and Redis, and leaves nothing running once stopped."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from orchestrator.config import Settings
from orchestrator.embedded import (
    EmbeddedRedis,
    EmbeddedServerError,
    EmbeddedStack,
    ManagedProcess,
    resolve_stack,
)

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for a parent that may never reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _wait_dead(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


async def test_kafka_round_trip(kafka_bootstrap: str, unique_topic_prefix: str) -> None:
    topic = f"{unique_topic_prefix}roundtrip"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for partition in (0, 1):
            await producer.send_and_wait(topic, f"hello-{partition}".encode(), key=b"k", partition=partition)
    finally:
        await producer.stop()

    # Manual assignment, no group: a new group waits seconds for its first assignment on Tansu.
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        received: dict[int, bytes] = {}
        deadline = time.monotonic() + 15
        while len(received) < 2 and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    assert record.key == b"k"
                    received[tp.partition] = record.value
    finally:
        await consumer.stop()
    assert received == {0: b"hello-0", 1: b"hello-1"}


async def test_redis_round_trip(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    key = f"test:{uuid.uuid4().hex}"
    try:
        await client.set(key, b"value", ex=60)
        assert await client.get(key) == b"value"
        assert await client.ping()
    finally:
        await client.delete(key)
        await client.aclose()


def test_stack_urls(embedded_stack: EmbeddedStack) -> None:
    assert embedded_stack.bootstrap.startswith("127.0.0.1:")
    assert embedded_stack.url.startswith("redis://127.0.0.1:") and embedded_stack.url.endswith("/0")


def test_stop_leaves_no_process_behind() -> None:
    with EmbeddedStack() as stack:
        pids = stack.pids
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    assert not [pid for pid in pids if _alive(pid)]
    assert not [member for pid in pids for member in _group_members(pid)]
    stack.stop()  # idempotent


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    process = ManagedProcess(
        "sleepers", ["sh", "-c", "sleep 300 & sleep 300 & wait"], log_path=tmp_path / "log"
    )
    deadline = time.monotonic() + 5
    while len(_group_members(process.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_group_members(process.pid)) == 3
    members = _group_members(process.pid)
    process.stop(grace_s=2.0)
    assert _wait_dead(members) == []


def test_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from orchestrator.embedded import EmbeddedStack
        stack = EmbeddedStack().start()
        print(" ".join(map(str, stack.pids)), file=sys.stderr, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        assert parent.stderr is not None
        line = ""
        while parent.poll() is None and not line.strip().replace(" ", "").isdigit():
            line = parent.stderr.readline()
        pids = [int(pid) for pid in line.split()]
        assert len(pids) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_dead(pids) == []
    finally:
        parent.kill()
        parent.wait()


def test_startup_failure_reports_the_server_output() -> None:
    class BrokenRedis(EmbeddedRedis):
        def _argv(self, port: int, workdir: Path) -> list[str]:
            return [*super()._argv(port, workdir), "--no-such-directive", "x"]

    with pytest.raises(EmbeddedServerError, match=r"(?s)exited with code 1.*no-such-directive"):
        BrokenRedis(startup_timeout_s=5).start()


def test_resolve_stack_starts_only_what_settings_leave_unset(redis_url: str) -> None:
    configured = Settings(kafka_bootstrap="kafka.example:9092", redis_url=redis_url)
    assert resolve_stack(configured) == ("kafka.example:9092", redis_url, None)

    bootstrap, url, stack = resolve_stack(Settings(redis_url=redis_url))
    assert stack is not None
    try:
        assert url == redis_url and stack.redis is None and bootstrap == stack.bootstrap
        assert len(stack.pids) == 1 and _alive(stack.pids[0])
    finally:
        stack.stop()
