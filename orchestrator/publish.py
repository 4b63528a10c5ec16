"""The Python publisher for channel apps: validated touchpoints onto `touchpoints.<channel>`.

Validating before sending means a broken event fails in the channel app, with a message naming the
field, instead of in the orchestrator's dead-letter topic hours later. Sends are batched: `send`
returns as soon as the event is queued (the returned future resolves on delivery) and `flush` waits
for everything queued, so a web request handler does not pay a broker round trip per event.

    async with Publisher("localhost:9092") as publisher:
        await publisher.send({"event_id": "…", "type": "cart.item_added", "channel": "web", …})
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from orchestrator.config import Settings
from orchestrator.lag import kafka_client_kwargs
from orchestrator.logging import get_logger
from schemas import MAX_EVENT_BYTES, InvalidEvent, Touchpoint, parse_touchpoint

log = get_logger(__name__)

# Room for the deliberate over-limit messages of the simulator: the orchestrator, not the producer,
# is the one that must refuse them (to the dead-letter topic, with a reason).
MAX_REQUEST_BYTES = 2 * MAX_EVENT_BYTES + 64 * 1024

Event = dict[str, Any] | bytes | str | Touchpoint


class PublisherNotConfigured(RuntimeError):
    """No Kafka bootstrap: neither given nor in `JOURNEY_KAFKA_BOOTSTRAP`."""


class PublishError(RuntimeError):
    """Some queued messages were not delivered; `failures` holds the broker's errors."""

    def __init__(self, failures: list[BaseException]) -> None:
        super().__init__(f"{len(failures)} message(s) not delivered: {failures[0]!r}")
        self.failures = failures


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_event(event: Event) -> tuple[Touchpoint, bytes]:
    """Validate `event` and return it with the exact bytes to publish; raise `InvalidEvent` otherwise.

    The bytes are what gets validated, so what passes here is what the orchestrator receives.
    Dicts may hold `datetime` values; NaN and infinities are refused, as JSON has no such numbers.
    """
    if isinstance(event, Touchpoint):
        raw = event.model_dump_json(exclude_unset=True).encode()
    elif isinstance(event, dict):
        try:
            text = json.dumps(event, default=_json_default, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidEvent(f"cannot be encoded as JSON ({exc})") from None
        raw = text.encode()
    elif isinstance(event, str):
        raw = event.encode()
    elif isinstance(event, bytes | bytearray | memoryview):
        raw = bytes(event)
    else:
        raise InvalidEvent(f"an event must be a dict, JSON bytes or a Touchpoint, not {type(event).__name__}")
    return parse_touchpoint(raw), raw


def partition_key(event: Touchpoint) -> bytes | None:
    """The best identifier the event has (SPEC §1): customer id, anonymous id, first alias by name."""
    ident = event.customer_id or event.anonymous_id
    if ident is None and event.identifiers:
        ident = event.identifiers[min(event.identifiers)]
    return ident.encode() if ident else None


class Publisher:
    """An async context manager over one aiokafka producer: acks=all, batched by `linger_ms`."""

    def __init__(
        self,
        bootstrap: str | None = None,
        *,
        settings: Settings | None = None,
        linger_ms: int = 5,
        client_id: str = "journey-publisher",
        **producer_options: Any,
    ) -> None:
        self.settings = settings or Settings()
        self.bootstrap = bootstrap or self.settings.kafka_bootstrap
        if not self.bootstrap:
            raise PublisherNotConfigured(
                "no Kafka to publish to: pass a bootstrap (--kafka host:port) or set JOURNEY_KAFKA_BOOTSTRAP"
            )
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "client_id": client_id,
            "acks": "all",
            "linger_ms": linger_ms,
            "max_request_size": MAX_REQUEST_BYTES,
            **kafka_client_kwargs(self.settings),
            **producer_options,
        }
        self._options = options
        self._producer: AIOKafkaProducer | None = None
        self._pending: set[asyncio.Future[RecordMetadata]] = set()
        self._failures: list[BaseException] = []
        self.sent = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                await self.flush()
        finally:
            await self.stop()

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self._options)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def topic_for(self, event: Touchpoint) -> str:
        return self.settings.touchpoint_topic(event.channel)

    async def send(self, event: Event, *, topic: str | None = None) -> asyncio.Future[RecordMetadata]:
        """Validate and queue one touchpoint; the future resolves when the broker has it (acks=all)."""
        touchpoint, raw = encode_event(event)
        return await self.send_raw(topic or self.topic_for(touchpoint), raw, partition_key(touchpoint))

    async def send_raw(
        self, topic: str, value: bytes, key: bytes | str | None = None
    ) -> asyncio.Future[RecordMetadata]:
        """Queue bytes as they are, unchecked: for replaying captured traffic and deliberate bad input."""
        if self._producer is None:
            raise RuntimeError("Publisher is not started: use `async with Publisher(...)`")
        key_bytes = key.encode() if isinstance(key, str) else key
        future = await self._producer.send(topic, value=value, key=key_bytes)
        self._pending.add(future)
        future.add_done_callback(self._delivered)
        self.sent += 1
        return future

    def _delivered(self, future: asyncio.Future[RecordMetadata]) -> None:
        self._pending.discard(future)
        if future.cancelled():
            self._failures.append(asyncio.CancelledError("send cancelled"))
        elif (error := future.exception()) is not None:
            log.warning("publish.delivery_failed", error=repr(error))
            self._failures.append(error)

    async def flush(self) -> None:
        """Wait until everything queued is delivered; raise `PublishError` if anything was not."""
        if self._producer is not None:
            await self._producer.flush()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._failures:
            failures, self._failures = self._failures, []
            raise PublishError(failures)
