"""Ingest: validate touchpoints, dead-letter the bad ones, batch the good ones to `journey.identity`.

Nothing here may raise on bad input: a message that cannot be parsed, is too large or breaks the
contract goes to the dead-letter topic with its reason, and the batch goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import faust

from orchestrator import metrics
from orchestrator.engine import alias_keys
from orchestrator.logging import get_logger
from orchestrator.runtime.dead_letter import dead_letter_kind, dead_letter_record
from orchestrator.runtime.envelope import Item, Route
from orchestrator.runtime.pipeline import Outbox, Pipeline
from schemas import InvalidEvent, parse_touchpoint

log = get_logger(__name__)

BATCH_MAX = 2000
BATCH_WITHIN_S = 0.02
TRUNCATED_ORIGINAL_BYTES = 64 * 1024


def register(pipeline: Pipeline) -> None:
    @pipeline.app.agent(pipeline.touchpoints, name="journey.ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            outbox = Outbox(pipeline)
            for event in events:
                await _route(pipeline, outbox, event)
            await outbox.flush()
            yield None


async def _route(pipeline: Pipeline, outbox: Outbox, event: faust.EventT) -> None:
    message = event.message
    raw = event.value if isinstance(event.value, bytes) else b""
    try:
        touchpoint = parse_touchpoint(raw)
    except InvalidEvent as exc:
        await _dead_letter(pipeline, message, raw, str(exc))
        return
    except Exception as exc:  # a validator bug must not stop the stream
        log.exception("ingest_unexpected_error", topic=message.topic, offset=message.offset)
        await _dead_letter(pipeline, message, raw, f"processing error: {type(exc).__name__}")
        return
    keys = alias_keys(touchpoint)
    route_key = keys[0] if keys else str(touchpoint.customer_id)
    item = Item(raw=raw, channel=touchpoint.channel, published=message.timestamp or 0.0)
    outbox.to_identity(route_key, Route(item=item, keys=keys))


async def _dead_letter(pipeline: Pipeline, message: faust.types.Message, raw: bytes, reason: str) -> None:
    record = dead_letter_record(raw, message.topic, message.partition, message.offset, reason)
    try:
        await pipeline.dlq.send(key=message.key, value=record)
    except Exception as exc:  # e.g. the broker refuses a record this large: keep the facts, cut the bytes
        log.warning(
            "dead_letter_truncated", topic=message.topic, offset=message.offset, error=type(exc).__name__
        )
        record = dead_letter_record(
            raw[:TRUNCATED_ORIGINAL_BYTES], message.topic, message.partition, message.offset, reason,
            original_size=len(raw),
        )
        await pipeline.dlq.send(key=message.key, value=record)
    kind = dead_letter_kind(reason)
    metrics.record_dead_letter(kind)
    metrics.record_event(message.topic.removeprefix(pipeline.settings.touchpoints_prefix), "dead_lettered")
    # the reason may quote field values, so only its kind is logged
    log.info(
        "dead_lettered", topic=message.topic, partition=message.partition, offset=message.offset, kind=kind
    )
