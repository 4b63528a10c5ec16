"""Ingest: validate touchpoints, dead-letter the bad ones, batch the good ones to `journey.identity`.

Nothing here may raise on bad input: a message that cannot be parsed, is too large or breaks the
contract goes to the dead-letter topic with its reason, and the batch goes on. The touchpoints come
from `TouchpointConsumer` (plain aiokafka, its own group), not a Faust stream: see its module for why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from orchestrator import metrics
from orchestrator.engine import alias_keys
from orchestrator.engine.identity import direct_profile
from orchestrator.logging import get_logger
from orchestrator.runtime.dead_letter import dead_letter_kind, dead_letter_record, redact_reason
from orchestrator.runtime.envelope import Item, Route
from orchestrator.runtime.pipeline import Outbox, Pipeline
from orchestrator.runtime.touchpoint_consumer import TouchpointConsumer
from orchestrator.runtime.tuning import FETCH_MAX_WAIT_MS
from schemas import InvalidEvent, Touchpoint, parse_touchpoint

log = get_logger(__name__)

BATCH_MAX = 2000
TRUNCATED_ORIGINAL_BYTES = 64 * 1024


def register(pipeline: Pipeline, session_timeout_s: float) -> None:
    async def handle(records: Sequence[ConsumerRecord]) -> None:
        await handle_records(pipeline, records)

    def joined(_assigned: set[TopicPartition]) -> None:
        pipeline.touchpoints_joined = True
        pipeline.announce_ready()

    consumer = TouchpointConsumer(
        pipeline.settings,
        handle,
        session_timeout_s=session_timeout_s,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        max_records=BATCH_MAX,
        on_assigned=joined,
    )

    @pipeline.app.task
    async def ingest() -> None:
        await consumer.run()


async def handle_records(pipeline: Pipeline, records: Sequence[ConsumerRecord]) -> None:
    """Route every record, then wait until the broker has everything they produced."""
    outbox = Outbox(pipeline)
    for record in records:
        await _route(pipeline, outbox, record)
    await outbox.flush()


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


async def _route(pipeline: Pipeline, outbox: Outbox, record: ConsumerRecord) -> None:
    raw = record.value if isinstance(record.value, bytes) else b""
    decision = triage(raw)
    if isinstance(decision, Rejected):
        await _dead_letter(pipeline, outbox, record, raw, decision.reason)
        return
    item = Item(raw=raw, channel=decision.touchpoint.channel, published=record.timestamp / 1000)
    outbox.to_identity(decision.route_key, Route(item=item, keys=decision.keys, profile=decision.profile))


async def _dead_letter(
    pipeline: Pipeline, outbox: Outbox, record: ConsumerRecord, raw: bytes, reason: str
) -> None:
    topic, partition, offset = record.topic, record.partition, record.offset
    dead = dead_letter_record(raw, topic, partition, offset, reason)
    try:
        await outbox.send(pipeline.dlq, key=record.key, value=dead)
    except Exception as exc:  # e.g. the broker refuses a record this large: keep the facts, cut the bytes
        log.warning("dead_letter_truncated", topic=topic, offset=offset, error=type(exc).__name__)
        dead = dead_letter_record(
            raw[:TRUNCATED_ORIGINAL_BYTES], topic, partition, offset, reason, original_size=len(raw)
        )
        await outbox.send(pipeline.dlq, key=record.key, value=dead)
    kind = dead_letter_kind(reason)
    metrics.record_dead_letter(kind)
    metrics.record_event(topic.removeprefix(pipeline.settings.touchpoints_prefix), "dead_lettered")
    # the reason may quote field values, so only its kind is logged
    log.info("dead_lettered", topic=topic, partition=partition, offset=offset, kind=kind)
