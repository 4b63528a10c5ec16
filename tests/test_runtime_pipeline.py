"""The worker end to end over real sockets: one `journey worker` (embedded Kafka + Redis) shared by
the module's tests, since a Tansu group join costs 15–25 s.

Covers the worked example (actions on the right topics, context view in Redis), dead letters
around good events, idempotence of a re-sent event, and rules hot-reload (good and broken).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from conftest import SHARED_EXAMPLES, ProcessSpawner, worker_settings
from runtime_support import (
    PING_RULE,
    TopicReader,
    event,
    log_events,
    produce,
    values,
    wait_log,
    worked_example,
    write_rules,
)

from orchestrator.config import Settings
from orchestrator.embedded import ManagedProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def module_settings(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return worker_settings(
        kafka_bootstrap,
        redis_url,
        tmp_path_factory.mktemp("worker") / "data",
        rules=write_rules(tmp_path_factory.mktemp("rules") / "rules.yaml"),
    )


@pytest.fixture(scope="module")
async def worker(module_settings: Settings, module_spawner: ProcessSpawner) -> AsyncIterator[ManagedProcess]:
    process = module_spawner.journey("worker", settings=module_settings)
    await wait_log(process, "worker_ready", timeout_s=120)
    yield process


@pytest.fixture
def reader(kafka_bootstrap: str) -> TopicReader:
    return TopicReader(kafka_bootstrap)


def tp_topic(settings: Settings, channel: str) -> str:
    return settings.touchpoint_topic(channel)


async def publish(settings: Settings, events: list[dict], gap_s: float = 0.0) -> None:
    messages = [
        (
            tp_topic(settings, e["channel"]),
            (e.get("customer_id") or e.get("anonymous_id") or "").encode(),
            orjson.dumps(e),
        )
        for e in events
    ]
    await produce(str(settings.kafka_bootstrap), messages, gap_s=gap_s)


def uid() -> str:
    return uuid.uuid4().hex[:8]


async def test_example_journey(
    worker: ManagedProcess, module_settings: Settings, reader: TopicReader
) -> None:
    s = module_settings
    cust, anon = f"c-{uid()}", f"anon-{uid()}"
    journey, later = worked_example(SHARED_EXAMPLES, cust, anon)
    await publish(s, journey, gap_s=0.2)
    await wait_log(worker, "profile_merge_completed", where=lambda r: r.get("profile") == cust, timeout_s=30)
    await publish(s, later, gap_s=0.2)

    topics = [s.action_topic(c) for c in ("email", "push", "chat")]

    def mine(records: list) -> list[dict]:
        return [v for v in values(records) if v["customer_id"] == cust]

    records = await reader.read(topics, until=lambda r: len(mine(r)) >= 3, timeout_s=40, settle_s=2)
    actions = {
        a["rule_id"]: (a, r.topic)
        for a, r in zip(values(records), records, strict=True)
        if a["customer_id"] == cust
    }
    assert sorted(actions) == ["abandoned-cart", "chatbot-to-human", "nearby-store-offer"]
    cart, cart_topic = actions["abandoned-cart"]
    assert cart_topic == s.action_topic("email")
    assert cart["params"] == {"template": "abandoned_cart", "total": 240}
    assert cart["trigger_event_id"] == f"{cust}-x2"
    assert cart["status"] == "emitted"
    assert actions["nearby-store-offer"][1] == s.action_topic("push")
    assert actions["nearby-store-offer"][0]["params"]["store"] == "montreal-downtown"
    handoff, handoff_topic = actions["chatbot-to-human"]
    assert handoff_topic == s.action_topic("chat")
    assert handoff["category"] == "service" and handoff["context"] is not None
    assert len(mine(records)) == 3

    client = aioredis.Redis.from_url(str(s.redis_url))
    try:
        view = orjson.loads(await client.get(f"journey:context:{cust}"))
        assert view["cart"]["total"] == 240
        assert view["traits"]["tier"] == "gold"
        assert 0 < await client.ttl(f"journey:context:{cust}") <= s.context_ttl_s
        assert await client.get(f"journey:context:anon:{anon}") is None  # merged away
    finally:
        await client.aclose()


def ping(cust: str, event_id: str | None = None) -> dict:
    return event(event_id or f"p-{uid()}", "test.ping", "web", customer_id=cust)


async def test_dead_letters_around_good_events(
    worker: ManagedProcess, module_settings: Settings, reader: TopicReader
) -> None:
    s = module_settings
    cust = f"c-{uid()}"
    topic = tp_topic(s, "web")
    malformed = b'{"event_id": "broken", '
    oversized = orjson.dumps({**ping(cust), "properties": {"blob": "x" * (1024 * 1024 + 10)}})
    no_id = orjson.dumps({k: v for k, v in ping(cust).items() if k != "customer_id"})
    good = [ping(cust), ping(cust)]
    await produce(
        str(s.kafka_bootstrap),
        [
            (topic, cust.encode(), orjson.dumps(good[0])),
            (topic, cust.encode(), malformed),
            (topic, cust.encode(), oversized),
            (topic, cust.encode(), no_id),
            (topic, cust.encode(), orjson.dumps(good[1])),
        ],
    )
    bad = {malformed, oversized, no_id}

    def which(letter: dict) -> bytes | None:
        """The bad message a dead letter holds (a cut original is a prefix of it)."""
        original = base64.b64decode(letter["original"])
        return next((b for b in bad if b.startswith(original) and original), None)

    def dead(records: list) -> list[dict]:
        return [v for v in values(records) if which(v) is not None]

    records = await reader.read([s.dlq_topic], until=lambda r: len(dead(r)) >= 3, timeout_s=30)
    letters = dead(records)
    assert len(letters) == 3
    reasons = {which(v): v for v in letters}
    assert "JSON" in reasons[malformed]["reason"]
    assert "1 MiB" in reasons[oversized]["reason"]
    assert "customer_id, anonymous_id or identifiers" in reasons[no_id]["reason"]
    for letter in letters:
        assert letter["topic"] == topic and letter["offset"] >= 0 and letter["at"]
    replies = await reader.read(
        [s.action_topic("chat")],
        until=lambda r: sum(v["customer_id"] == cust for v in values(r)) >= 2,
        timeout_s=30,
    )
    assert {v["trigger_event_id"] for v in values(replies) if v["customer_id"] == cust} == {
        g["event_id"] for g in good
    }


async def test_resent_event_changes_nothing(
    worker: ManagedProcess, module_settings: Settings, reader: TopicReader
) -> None:
    s = module_settings
    cust = f"c-{uid()}"
    first = ping(cust)
    await publish(s, [first])

    def replies(records: list) -> list[dict]:
        return [v for v in values(records) if v["customer_id"] == cust]

    await reader.read([s.action_topic("chat")], until=lambda r: len(replies(r)) >= 1, timeout_s=30)
    client = aioredis.Redis.from_url(str(s.redis_url))
    try:
        view_before = await client.get(f"journey:context:{cust}")
        await publish(s, [first, first])
        marker = ping(cust)  # a new event after the re-sends: once its reply is out, the re-sends were seen
        await publish(s, [marker])
        records = await reader.read(
            [s.action_topic("chat")],
            until=lambda r: any(v["trigger_event_id"] == marker["event_id"] for v in replies(r)),
            timeout_s=30,
            settle_s=1,
        )
        assert sorted(v["trigger_event_id"] for v in replies(records)) == sorted(
            [first["event_id"], marker["event_id"]]
        )
        assert view_before is not None
    finally:
        await client.aclose()


async def test_rules_hot_reload(
    worker: ManagedProcess, module_settings: Settings, reader: TopicReader
) -> None:
    s = module_settings
    rules_path = Path(s.rules)
    new_rule = """  - id: signup-welcome
    trigger: {event: newsletter.signup}
    action:
      type: email.send
      category: service
      params: {template: welcome}
"""
    reloads = len(log_events(worker, "rules_reloaded"))
    write_rules(rules_path, extra=PING_RULE + new_rule)
    await wait_log(worker, "rules_reloaded", count=reloads + 1, timeout_s=15)
    cust = f"c-{uid()}"
    await publish(s, [event(f"n-{uid()}", "newsletter.signup", "web", customer_id=cust)])
    records = await reader.read(
        [s.action_topic("email")],
        until=lambda r: any(v["customer_id"] == cust for v in values(r)),
        timeout_s=20,
    )
    welcome = [v for v in values(records) if v["customer_id"] == cust]
    assert [v["rule_id"] for v in welcome] == ["signup-welcome"]

    refused = len(log_events(worker, "rules_reload_refused"))
    broken = new_rule.replace("newsletter.signup}", 'newsletter.signup}\n    condition: "nosuch(1) >"')
    write_rules(rules_path, extra=PING_RULE + broken)
    record = await wait_log(worker, "rules_reload_refused", count=refused + 1, timeout_s=15)
    assert any(str(rules_path) in error and error.count(":") >= 3 for error in record["errors"])
    cust2 = f"c-{uid()}"
    await publish(s, [event(f"n-{uid()}", "newsletter.signup", "web", customer_id=cust2)])
    records = await reader.read(
        [s.action_topic("email")],
        until=lambda r: any(v["customer_id"] == cust2 for v in values(r)),
        timeout_s=20,
    )
    assert [v["rule_id"] for v in values(records) if v["customer_id"] == cust2] == ["signup-welcome"]
    write_rules(rules_path)
