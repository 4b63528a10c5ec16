"""Runtime helpers without a broker: deadline index, batch codec, routing, dead letters, context view,
rules hot-reload. Fast, so the slow integration tests only need to cover the wiring."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from runtime_support import PING_RULE, write_rules

from orchestrator.embedded import free_port
from orchestrator.runtime.context_view import VIEWS_PER_CALL, ContextViewWriter, context_key
from orchestrator.runtime.dead_letter import dead_letter_kind, dead_letter_record
from orchestrator.runtime.deadlines import DeadlineIndex
from orchestrator.runtime.envelope import (
    CustomerBatch,
    Deliver,
    Handoff,
    IdentityBatch,
    Item,
    Link,
    MergeIn,
    PendingMerge,
    Route,
    Tick,
    decode_customers,
    decode_identity,
    decode_pending,
    encode,
)
from orchestrator.runtime.partitioning import partition_for
from orchestrator.runtime.rules_reload import LiveRules
from schemas import InvalidEvent, parse_touchpoint


def test_deadline_index_pops_due_profiles_in_order_and_ignores_stale_entries() -> None:
    index = DeadlineIndex()
    index.set(0, "a", 30.0)
    index.set(0, "b", 10.0)
    index.set(1, "c", 5.0)
    index.set(0, "b", 40.0)  # rescheduled: the old (10, b) entry is stale
    assert index.partitions_due(20.0) == [1]
    assert index.pop_due(0, 35.0) == [("a", 30.0)]
    assert index.pop_due(0, 35.0) == []
    assert index.next_due(0) == 40.0
    index.set(0, "b", None)
    assert index.next_due(0) is None and len(index) == 1
    index.rebuild([(2, "d", 1.0), (2, "e", 2.0)])
    assert len(index) == 2 and index.pop_due(2, 1.5) == [("d", 1.0)] and index.due_of("c") is None


def test_batches_round_trip() -> None:
    item = Item(raw=b'{"event_id":"e"}', channel="web", published=1.5)
    customers = CustomerBatch(
        [Deliver("c-1", item, ["anon:a"]), Handoff("anon:a", "c-1"), MergeIn("anon:a", "c-1", None), Tick()]
    )
    assert decode_customers(encode(customers)) == customers
    identity = IdentityBatch([Route(item, ["anon:a"], {"anon:a": ""}), Link("anon:b", "c-1")])
    assert decode_identity(encode(identity)) == identity
    pending = PendingMerge(expected=["anon:a"], buffered=[item])
    assert decode_pending(encode(pending)) == pending


def test_partition_function_is_stable() -> None:
    assert partition_for("c-100", 4) == partition_for("c-100", 4)
    assert {partition_for(f"c-{i}", 4) for i in range(100)} == {0, 1, 2, 3}
    assert partition_for("c-100", 4) == 3  # crc32: the same in every process and Python version


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"{nope", "invalid_json"),
        (b'{"event_id": "e"}', "invalid_event"),
        (b" " * (1024 * 1024 + 1), "too_large"),
    ],
)
def test_dead_letter_record_keeps_the_original_and_a_reason(raw: bytes, kind: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_touchpoint(raw)
    record = orjson.loads(dead_letter_record(raw, "touchpoints.web", 2, 7, str(caught.value)))
    assert base64.b64decode(record["original"]) == raw
    assert (record["topic"], record["partition"], record["offset"]) == ("touchpoints.web", 2, 7)
    assert record["reason"] and record["at"].endswith("Z")
    assert dead_letter_kind(record["reason"]) == kind


async def test_context_view_writer_sets_with_ttl_and_deletes(redis_url: str) -> None:
    writer = ContextViewWriter(redis_url, ttl_s=60)
    client = aioredis.Redis.from_url(redis_url)
    try:
        writer.put("c-view", {"cart": {"total": 3}})
        assert await writer.flush()
        assert orjson.loads(await client.get(context_key("c-view"))) == {"cart": {"total": 3}}
        assert 0 < await client.ttl(context_key("c-view")) <= 60
        writer.delete("c-view")
        assert await writer.flush()
        assert await client.get(context_key("c-view")) is None
    finally:
        await client.aclose()
        await writer.close()


async def test_context_view_writer_writes_many_views_in_chunks_with_deletes(redis_url: str) -> None:
    writer = ContextViewWriter(redis_url, ttl_s=60)
    client = aioredis.Redis.from_url(redis_url)
    count = VIEWS_PER_CALL * 2 + 7
    try:
        writer.put("c-chunk-gone", {"old": True})
        assert await writer.flush()
        for n in range(count):
            writer.put(f"c-chunk-{n}", {"n": n})
        writer.delete("c-chunk-gone")
        assert await writer.flush()
        values = await client.mget([context_key(f"c-chunk-{n}") for n in range(count)])
        assert [orjson.loads(v)["n"] for v in values] == list(range(count))
        assert 0 < await client.ttl(context_key(f"c-chunk-{count - 1}")) <= 60
        assert await client.get(context_key("c-chunk-gone")) is None
    finally:
        await client.aclose()
        await writer.close()


async def test_context_view_writer_keeps_views_while_redis_is_down(redis_url: str) -> None:
    """Nothing raises; the view stays queued and is written once Redis answers (here: a new URL)."""
    writer = ContextViewWriter(f"redis://127.0.0.1:{free_port()}/0", ttl_s=60)
    try:
        writer.put("c-down", {"a": 1})
        assert not await writer.flush()
        assert not await writer.flush()
    finally:
        await writer.close()
    writer._redis = aioredis.Redis.from_url(redis_url)
    assert await writer.flush()
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert orjson.loads(await client.get(context_key("c-down"))) == {"a": 1}
    finally:
        await client.aclose()
        await writer.close()


def test_live_rules_reload_swaps_good_and_refuses_broken(tmp_path: Path) -> None:
    path = write_rules(tmp_path / "rules.yaml")
    live = LiveRules.load(path)
    first = live.version
    assert live.check() is None  # unchanged files: nothing to do
    write_rules(path, extra=PING_RULE.replace("answer: pong", "answer: pang"))
    result = live.check()
    assert result is not None and result.ok and live.version != first
    good = live.version
    path.write_text(path.read_text() + "  - id: Bad Id\n    trigger: {event: x}\n")
    result = live.check()
    assert result is not None and not result.ok and live.version == good
    assert all(str(path) in error for error in result.errors)
    assert live.last is result
