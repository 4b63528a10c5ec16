"""Issue 7, live: lag statuses, `journey lag` and `/metrics` against a real `journey worker`.

One worker (embedded Kafka + Redis) serves the module, since a group join costs seconds. A worker is
in two groups whose ids start with the app id: `settings.ingest_group` consumes the touchpoint topics
(the lag a backlog shows up in) and Faust's group, `settings.app_id`, the internal ones. Events are
produced one record per request: Tansu under-reports a partition's end offset after a multi-record
batch, and the lag numbers compared here must be exact. The internal topics are written in batches
by the worker itself, so their lag can only read low (never high) and is judged as part of the group
status only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from conftest import JOURNEY_BIN, ProcessSpawner, settings_env, worker_settings
from prometheus_client.parser import text_string_to_metric_families
from runtime_support import PING_RULE, TopicReader, event, now_iso, produce, values, wait_log, write_rules

from orchestrator.config import Settings
from orchestrator.embedded import ManagedProcess
from orchestrator.lag import GroupLag, LagMonitor, LagReport

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW_S = 4.0
HELLO_RULE = """  - id: hello-offer
    trigger: {event: test.hello}
    cooldown: 1h
    goal: {event: order.completed, within: 1d}
    action:
      type: chat.reply
      category: service
      params: {answer: hi}
"""
SPEC_METRICS = {
    "journey_events_total": "counter",
    "journey_actions_total": "counter",
    "journey_suppressed_total": "counter",
    "journey_conversions_total": "counter",
    "journey_pending_waits": "gauge",
    "journey_decision_latency_seconds": "histogram",
    "journey_consumer_lag": "gauge",
    "journey_consumer_time_lag_seconds": "gauge",
    "journey_rules_info": "gauge",
    "journey_rules_reloads_total": "counter",
}


@pytest.fixture(scope="module")
def ops_settings(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return worker_settings(
        kafka_bootstrap,
        redis_url,
        tmp_path_factory.mktemp("ops-worker") / "data",
        web_host="127.0.0.1",
        rules=write_rules(tmp_path_factory.mktemp("ops-rules") / "rules.yaml", extra=PING_RULE + HELLO_RULE),
    )


@pytest.fixture(scope="module")
async def worker(ops_settings: Settings, module_spawner: ProcessSpawner) -> AsyncIterator[ManagedProcess]:
    process = module_spawner.journey("worker", settings=ops_settings)
    await wait_log(process, "worker_ready", timeout_s=120)
    yield process


def uid() -> str:
    return uuid.uuid4().hex[:8]


async def publish(settings: Settings, events: list[dict[str, Any]]) -> None:
    """One record per request (`produce` awaits each send), so end offsets stay exact on Tansu."""
    await produce(
        str(settings.kafka_bootstrap),
        [
            (settings.touchpoint_topic(e["channel"]), e["customer_id"].encode(), orjson.dumps(e))
            for e in events
        ],
    )


def pings(count: int) -> list[dict[str, Any]]:
    return [event(f"p-{uid()}", "test.ping", "web", customer_id=f"c-{uid()}") for _ in range(count)]


def ingest_group(report: LagReport, settings: Settings) -> GroupLag:
    groups = {g.group: g for g in report.groups}
    assert settings.ingest_group in groups, sorted(groups)
    return groups[settings.ingest_group]


def touchpoint_lag(group: GroupLag, settings: Settings) -> int:
    return sum(p.lag for p in group.partitions if p.topic.startswith(settings.touchpoints_prefix))


async def caught_up(settings: Settings, timeout_s: float = 60.0) -> None:
    """Until one sample shows both of the app's groups at lag 0 everywhere (Faust commits every ~3 s)."""
    deadline = time.monotonic() + timeout_s
    watched = [settings.app_id, settings.ingest_group]
    async with LagMonitor(str(settings.kafka_bootstrap), groups=watched) as monitor:
        while time.monotonic() < deadline:
            await monitor.sample()
            groups = monitor.report().groups
            if len(groups) == len(watched) and all(g.lag == 0 for g in groups):
                return
            await asyncio.sleep(0.5)
    raise AssertionError(f"groups {watched} never caught up: {monitor.report().as_dict()}")


async def wait_actions(settings: Settings, channel: str, customers: set[str], count: int) -> list[dict]:
    def mine(records: list) -> list[dict]:
        return [v for v in values(records) if v["customer_id"] in customers]

    records = await TopicReader(str(settings.kafka_bootstrap)).read(
        [settings.action_topic(channel)], until=lambda r: len(mine(r)) >= count, timeout_s=45
    )
    found = mine(records)
    assert len(found) >= count, found
    return found


async def journey_lag(settings: Settings, *args: str) -> tuple[int, dict[str, Any]]:
    """`journey lag --json --window 4` as ops would run it: exit code and the parsed document."""
    argv = [str(JOURNEY_BIN), "lag", "--json", "--window", str(WINDOW_S), *args]
    env = {**os.environ, **settings_env(settings)}
    done = await asyncio.to_thread(subprocess.run, argv, env=env, capture_output=True, timeout=60)
    assert done.returncode in (0, 2), done.stderr.decode()
    return done.returncode, orjson.loads(done.stdout)


def group_doc(document: dict[str, Any], group: str) -> dict[str, Any]:
    found = [g for g in document["groups"] if g["group"] == group]
    assert len(found) == 1, document
    return found[0]


async def test_caught_up_idle_group_reads_ok_and_exit_0(
    worker: ManagedProcess, ops_settings: Settings
) -> None:
    s = ops_settings
    sent = pings(6)
    await publish(s, sent)
    await wait_actions(s, "chat", {e["customer_id"] for e in sent}, len(sent))
    await caught_up(s)

    code, document = await journey_lag(s)  # idle for the whole window: nothing arrives
    assert code == 0, document
    assert [g["group"] for g in document["groups"]] == [s.app_id, s.ingest_group]
    for group in document["groups"]:
        assert (group["status"], group["lag"], group["time_lag_s"]) == ("ok", 0, 0)
        for p in group["partitions"]:
            assert (p["status"], p["lag"], p["time_lag_s"]) == ("ok", 0, 0), p
    ingest = group_doc(document, s.ingest_group)
    web = [p for p in ingest["partitions"] if p["topic"] == s.touchpoint_topic("web")]
    assert len(web) == s.partitions
    assert sum(p["end"] for p in web) >= len(sent)
    internal = {p["topic"] for p in group_doc(document, s.app_id)["partitions"]}
    assert s.internal_topic("customers") in internal and not any(
        t.startswith(s.touchpoints_prefix) for t in internal
    )


async def test_frozen_worker_is_stalled_then_ok_when_resumed(
    worker: ManagedProcess, ops_settings: Settings
) -> None:
    s = ops_settings
    warm = pings(2)
    await publish(s, warm)  # the group has committed offsets on the touchpoint topic
    await wait_actions(s, "chat", {e["customer_id"] for e in warm}, len(warm))
    await caught_up(s)
    backlog = 10
    os.killpg(worker.pid, signal.SIGSTOP)
    try:
        await publish(s, pings(backlog))
        async with LagMonitor(str(s.kafka_bootstrap), groups=[s.ingest_group], window_s=30) as monitor:
            time_lags = []
            for _ in range(3):
                await monitor.sample()
                frozen = ingest_group(monitor.report(), s)
                time_lags.append(frozen.time_lag_s)
                await asyncio.sleep(1.0)
            assert frozen.status == "stalled", frozen
            assert frozen.lag == touchpoint_lag(frozen, s) == backlog
            assert 0 < time_lags[0] < time_lags[1] < time_lags[2]
            late = [p for p in frozen.partitions if p.lag]
            assert late and all(p.status == "stalled" for p in late)

        code, document = await journey_lag(s)
        group = group_doc(document, s.ingest_group)
        assert code == 2
        assert (group["status"], group["lag"]) == ("stalled", backlog)
        assert group["time_lag_s"] > time_lags[-1]
    finally:
        os.killpg(worker.pid, signal.SIGCONT)

    await caught_up(s)
    code, document = await journey_lag(s)
    group = group_doc(document, s.ingest_group)
    assert code == 0, document
    assert (group["status"], group["lag"], group["time_lag_s"]) == ("ok", 0, 0)


class SlowCommitter:
    """A consumer of `topic` in `group` that commits every step but reads far fewer records than arrive."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.tp = TopicPartition(topic, 0)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)

    async def produce(self, per_second: float) -> None:
        while True:
            await self.producer.send_and_wait(self.tp.topic, now_iso().encode(), partition=0)
            await asyncio.sleep(1 / per_second)

    async def consume(self, per_step: int, step_s: float) -> None:
        # A manual assignment commits for the group without joining it (Tansu joins are slow).
        self.consumer.assign([self.tp])
        await self.consumer.seek_to_beginning(self.tp)
        while True:
            await self.consumer.getmany(self.tp, timeout_ms=200, max_records=per_step)
            await self.consumer.commit({self.tp: await self.consumer.position(self.tp)})
            await asyncio.sleep(step_s)


async def test_consumer_committing_but_falling_behind_is_lagging(kafka_bootstrap: str) -> None:
    topic, group = f"lagging-{uid()}", f"slow-{uid()}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    await admin.close()
    slow = SlowCommitter(kafka_bootstrap, topic, group)
    await slow.producer.start()
    await slow.consumer.start()
    tasks = [asyncio.create_task(slow.produce(per_second=25)), asyncio.create_task(slow.consume(2, 0.4))]
    try:
        await asyncio.sleep(1.0)
        code, document = await journey_lag(Settings(kafka_bootstrap=kafka_bootstrap), "--group", group)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await slow.consumer.stop()
        await slow.producer.stop()
    assert code == 2
    behind = group_doc(document, group)
    assert behind["status"] == "lagging", behind
    assert behind["lag"] > 0 and behind["time_lag_s"] > 0
    [partition] = behind["partitions"]
    assert partition["committed"] > 0 and partition["end"] - partition["committed"] == partition["lag"]


async def scrape(settings: Settings) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{settings.web_port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    return {family.name: family for family in text_string_to_metric_families(text)}


def missing_metrics(families: dict[str, Any]) -> list[str]:
    """SPEC §6 names without a family of the right type holding at least one sample of that name."""
    missing = []
    for name, kind in SPEC_METRICS.items():
        family = families.get(name.removesuffix("_total") if kind == "counter" else name)
        if family is None or family.type != kind:
            missing.append(name)
            continue
        names = {sample.name for sample in family.samples}
        if not (name in names or (kind == "histogram" and f"{name}_count" in names)):
            missing.append(name)
    return missing


async def test_metrics_parse_and_carry_every_spec_name(
    worker: ManagedProcess, ops_settings: Settings
) -> None:
    s = ops_settings
    cust = f"c-{uid()}"
    hellos = [event(f"h-{uid()}", "test.hello", "web", customer_id=cust) for _ in range(2)]
    await publish(s, hellos)  # the second is suppressed by the rule's cooldown
    await wait_actions(s, "chat", {cust}, 1)
    order = event(
        f"o-{uid()}",
        "order.completed",
        "web",
        customer_id=cust,
        properties={"order_id": f"o-{uid()}", "total": 30},
    )
    await publish(s, [order])  # converts the hello action (goal)

    deadline = time.monotonic() + 45
    while True:
        families = await scrape(s)
        missing = missing_metrics(families)
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    assert missing == [], missing

    def samples(family: str, sample: str) -> list[Any]:
        return [x for x in families[family].samples if x.name == sample]

    assert any(
        x.labels == {"rule": "hello-offer", "reason": "cooldown"}
        for x in samples("journey_suppressed", "journey_suppressed_total")
    )
    assert any(
        x.labels["rule"] == "hello-offer" for x in samples("journey_conversions", "journey_conversions_total")
    )
    applied = samples("journey_events", "journey_events_total")
    assert any(x.labels == {"channel": "web", "outcome": "applied"} and x.value >= 3 for x in applied)
    lag_series = samples("journey_consumer_lag", "journey_consumer_lag")
    assert {x.labels["group"] for x in lag_series} == {s.app_id, s.ingest_group}
    assert {x.labels["topic"] for x in lag_series} >= {
        s.touchpoint_topic("web"),
        s.internal_topic("customers"),
    }
    assert [x.labels for x in samples("journey_rules_reloads", "journey_rules_reloads_total")] == [
        {"result": "ok"}
    ]
    [count] = samples("journey_decision_latency_seconds", "journey_decision_latency_seconds_count")
    assert count.value >= 1
