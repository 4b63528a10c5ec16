"""The two rebalance guards of `orchestrator.runtime.rebalance_guard`, on a real Faust consumer object.

The defects they fix only show under load across a real rebalance (tests/test_scale_out.py); these
tests pin the rules themselves: acks made while the flow is suspended release the message but are
never committable, and during recovery stream partitions resume only after the seek.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import faust
import pytest
from faust.transport.consumer import ConsumerMessage
from faust.types.tuples import TP

from orchestrator.runtime import rebalance_guard

STREAM = TP("journey.customers", 0)


@pytest.fixture
async def app() -> AsyncIterator[faust.App]:
    rebalance_guard.install()
    app = faust.App("guard-test", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False)
    app.topics.add(app.topic(STREAM.topic))
    await app.topics._update_indices()  # what subscribing does: acks enabled for the agents' topics
    app.Table("profiles", partitions=1)
    yield app


def message(offset: int) -> ConsumerMessage:
    return ConsumerMessage(STREAM.topic, STREAM.partition, offset, 0.0, 0, [], b"k", b"v", None)


async def test_an_ack_while_the_flow_is_suspended_releases_the_message_but_is_never_committed(
    app: faust.App,
) -> None:
    consumer = app.consumer
    skipped = message(7)
    consumer._unacked_messages.add(skipped)
    app.flow_control.suspend()

    assert consumer.ack(skipped) is False
    assert skipped.acked and skipped not in consumer._unacked_messages
    assert not consumer._acked.get(STREAM)
    assert consumer._new_offset(STREAM) is None  # nothing to commit


def test_an_ack_while_the_flow_runs_is_committable(app: faust.App) -> None:
    consumer = app.consumer
    consumer._committed_offset[STREAM] = 7
    app.flow_control.resume()

    assert consumer.ack(message(7)) is True
    assert consumer._new_offset(STREAM) == 8


async def test_during_recovery_stream_partitions_resume_only_after_the_seek(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = app.consumer
    changelog = TP(app.tables["profiles"].changelog_topic.get_topic_name(), 0)
    seeks: list[set[TP]] = []

    async def seek_to_committed() -> Mapping[TP, int]:
        seeks.append(set(consumer._get_active_partitions()))
        return {STREAM: 3}

    monkeypatch.setattr(consumer, "seek_to_committed", seek_to_committed)
    consumer._set_active_tps(set())
    consumer.pause_partitions({STREAM, changelog})

    async def recovery_completed(recovery: Any, generation_id: int = 0) -> None:
        """What Faust's `on_recovery_completed` does with the consumer: resume, then seek."""
        consumer.resume_partitions({STREAM, changelog})
        assert STREAM not in consumer._get_active_partitions()
        await consumer.perform_seek()

    guarded = rebalance_guard.seeking_first(recovery_completed)
    await guarded(app.tables.recovery)

    assert seeks == [{changelog}], "the stream partition was fetchable before the seek"
    assert STREAM in consumer._get_active_partitions()
    assert consumer._read_offset[STREAM] == 3
    consumer.resume_partitions({STREAM})  # outside recovery the guard lets calls through
    assert STREAM in consumer._get_active_partitions()
