"""Ingest: validate touchpoints, dead-letter the bad ones, batch the good ones to `journey.identity`.

Nothing here may raise on bad input: a message that cannot be parsed, is too large or breaks the
contract goes to the dead-letter topic with its reason, and the batch goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import faust

from orchestrator import metrics
from orchestrator.engine import alias_keys
from orchestrator.engine.identity import direct_profile
from orchestrator.logging import get_logger
from orchestrator.runtime.dead_letter import dead_letter_kind, dead_letter_record, redact_reason
from orchestrator.runtime.envelope import Item, Route
from orchestrator.runtime.pipeline import Outbox, Pipeline
from schemas import InvalidEvent, Touchpoint, parse_touchpoint

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


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid touchpoint, the alias key that routes it to its `journey.identity` partition, and its
    profile when that needs no alias lookup ("" otherwise)."""

    touchpoint: Touchpoint
    route_key: str
    keys: list[str]
    profile: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message for the dead-letter topic; `reason` names the field and never quotes its value."""

    reason: str


def triage(value: object) -> Accepted | Rejected:
    """The per-message decision of the ingest agent: route it, or dead-letter it with a reason.

    A pure function, so the fuzz tests can throw any input at exactly what the agent runs. It never
    raises: a non-bytes value (a tombstone) is judged as empty, and a validator bug becomes a
    `processing error` reason instead of stopping the stream.
    """
    raw = value if isinstance(value, bytes) else b""
    try:
        touchpoint = parse_touchpoint(raw)
        keys = alias_keys(touchpoint)
    except InvalidEvent as exc:
        return Rejected(redact_reason(str(exc)) or "not a valid event")
    except Exception as exc:  # a validator bug must not stop the stream
        log.exception("ingest_unexpected_error", error=type(exc).__name__)
        return Rejected(f"processing error: {type(exc).__name__}")
    route_key = keys[0] if keys else str(touchpoint.customer_id)
    return Accepted(touchpoint, route_key, keys, direct_profile(touchpoint) or "")


async def _route(pipeline: Pipeline, outbox: Outbox, event: faust.EventT) -> None:
    message = event.message
    raw = event.value if isinstance(event.value, bytes) else b""
    decision = triage(raw)
    if isinstance(decision, Rejected):
        await _dead_letter(pipeline, outbox, message, raw, decision.reason)
        return
    item = Item(raw=raw, channel=decision.touchpoint.channel, published=message.timestamp or 0.0)
    outbox.to_identity(decision.route_key, Route(item=item, keys=decision.keys, profile=decision.profile))


async def _dead_letter(
    pipeline: Pipeline, outbox: Outbox, message: faust.types.Message, raw: bytes, reason: str
) -> None:
    record = dead_letter_record(raw, message.topic, message.partition, message.offset, reason)
    try:
        await outbox.send(pipeline.dlq, key=message.key, value=record)
    except Exception as exc:  # e.g. the broker refuses a record this large: keep the facts, cut the bytes
        log.warning(
            "dead_letter_truncated", topic=message.topic, offset=message.offset, error=type(exc).__name__
        )
        record = dead_letter_record(
            raw[:TRUNCATED_ORIGINAL_BYTES], message.topic, message.partition, message.offset, reason,
            original_size=len(raw),
        )
        await outbox.send(pipeline.dlq, key=message.key, value=record)
    kind = dead_letter_kind(reason)
    metrics.record_dead_letter(kind)
    metrics.record_event(message.topic.removeprefix(pipeline.settings.touchpoints_prefix), "dead_lettered")
    # the reason may quote field values, so only its kind is logged
    log.info(
        "dead_lettered", topic=message.topic, partition=message.partition, offset=message.offset, kind=kind
    )
