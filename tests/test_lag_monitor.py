"""The lag monitor against the embedded broker, with groups simulated by manual commits (no Faust).

Committing for a group needs no join (a consumer with `group_id`, a manual assignment and
`commit({tp: offset})`), which sidesteps Tansu's slow group joins.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.lag import LagMonitor

pytestmark = pytest.mark.integration


class Scene:
    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.busy = f"{prefix}.busy"
        self.idle = f"{prefix}.idle"
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        self.committers: dict[str, AIOKafkaConsumer] = {}

    async def start(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(self.busy, 2, 1), NewTopic(self.idle, 1, 1)])
        await admin.close()
        await self.producer.start()

    async def produce(self, topic: str, per_partition: int, partitions: int) -> None:
        """One record per batch: Tansu reports the end offset of a multi-record batch as its base + 1."""
        for partition in range(partitions):
            for i in range(per_partition):
                await self.producer.send_and_wait(topic, b"m%d" % i, partition=partition)

    async def commit(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        consumer = self.committers.get(group)
        if consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
            )
            await consumer.start()
            consumer.assign(list(offsets))
            self.committers[group] = consumer
        await consumer.commit(offsets)

    async def stop(self) -> None:
        for consumer in self.committers.values():
            await consumer.stop()
        await self.producer.stop()


@pytest.fixture
async def scene(kafka_bootstrap: str) -> AsyncIterator[Scene]:
    s = Scene(kafka_bootstrap, f"lagtest-{uuid.uuid4().hex[:8]}")
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


async def test_statuses_of_idle_stalled_lagging_and_recovered_groups(scene: Scene) -> None:
    busy = [TopicPartition(scene.busy, p) for p in range(2)]
    idle = TopicPartition(scene.idle, 0)
    group = f"{scene.prefix}-grp"
    await scene.produce(scene.busy, 10, 2)
    await scene.produce(scene.idle, 5, 1)
    await scene.commit(f"{group}-idle", {idle: 5})
    await scene.commit(f"{group}-stalled", {tp: 4 for tp in busy})
    lagging_at = 6
    await scene.commit(f"{group}-lagging", {tp: lagging_at for tp in busy})

    monitor = LagMonitor(scene.bootstrap, group_prefix=group, window_s=30)
    async with monitor:
        time_lags = []
        for _ in range(3):
            await monitor.sample()
            report = {g.group: g for g in monitor.report().groups}
            time_lags.append(report[f"{group}-stalled"].time_lag_s)
            await asyncio.sleep(0.3)
            await scene.produce(scene.busy, 5, 2)
            lagging_at += 2
            await scene.commit(f"{group}-lagging", {tp: lagging_at for tp in busy})
        await monitor.sample()
        report = {g.group: g for g in monitor.report().groups}

        assert set(report) == {f"{group}-idle", f"{group}-stalled", f"{group}-lagging"}
        idle_group = report[f"{group}-idle"]
        assert (idle_group.status, idle_group.lag, idle_group.time_lag_s) == ("ok", 0, 0.0)
        assert [(p.topic, p.committed, p.end) for p in idle_group.partitions] == [(scene.idle, 5, 5)]

        stalled = report[f"{group}-stalled"]
        assert stalled.status == "stalled"
        assert stalled.lag == 2 * (10 + 3 * 5 - 4)
        assert all(p.status == "stalled" and p.committed == 4 for p in stalled.partitions)
        assert time_lags[0] > 0 and time_lags == sorted(time_lags) and stalled.time_lag_s > time_lags[0]

        lagging = report[f"{group}-lagging"]
        assert lagging.status == "lagging"
        assert lagging.lag == 2 * (25 - lagging_at)

        await scene.commit(f"{group}-lagging", {tp: 25 for tp in busy})
        await monitor.sample()
        recovered = {g.group: g for g in monitor.report().groups}[f"{group}-lagging"]
        assert (recovered.status, recovered.lag, recovered.time_lag_s) == ("ok", 0, 0.0)

        document = monitor.report().as_dict()
        assert set(document) == {"at", "groups"}
        assert set(document["groups"][0]) == {"group", "status", "lag", "time_lag_s", "partitions"}
        assert set(document["groups"][0]["partitions"][0]) == {
            "topic",
            "partition",
            "committed",
            "end",
            "lag",
            "time_lag_s",
            "status",
        }


async def test_cli_json_and_exit_codes(scene: Scene) -> None:
    idle = TopicPartition(scene.idle, 0)
    await scene.produce(scene.idle, 3, 1)
    await scene.commit(f"{scene.prefix}-ok", {idle: 3})
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["lag", "--kafka", scene.bootstrap, "--window", "0.6", *args])
        return result.exit_code, result.stdout

    code, out = await asyncio.to_thread(run, "--json", "--group", f"{scene.prefix}-ok")
    assert code == 0, out
    document = json.loads(out)
    assert [g["group"] for g in document["groups"]] == [f"{scene.prefix}-ok"]
    assert document["groups"][0]["status"] == "ok"

    await scene.commit(f"{scene.prefix}-behind", {idle: 1})
    code, out = await asyncio.to_thread(run, "--group", f"{scene.prefix}-behind")
    assert code == 2
    assert "STALLED" in out
