"""Workload generation: many customers' journeys merged into one deterministic publishing plan.

The plan is in relative time (seconds since the start of the run) and leaves `occurred_at` unset, so
the live loop stamps each event with the moment it is really sent; `generate` stamps them from a fixed
start instead, for replay files. The same seed always gives the same plan, byte for byte.

Besides the personas the plan holds what real channel apps do wrong or twice: re-sent events (same
`event_id`, same bytes, a few seconds later) and a few malformed messages (not JSON, no identifier,
a bad timestamp, a bad type, over 1 MiB) that the orchestrator must dead-letter, not drop.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from orchestrator.simulate.catalog import REGIONS, SOFA
from orchestrator.simulate.personas import PERSONAS, Journey
from schemas import MAX_EVENT_BYTES

DEFAULT_START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
ARRIVAL_GAP_S = 20.0
RESEND_PROBABILITY = 0.02
MALFORMED_PER_CUSTOMERS = 25
DEFAULT_TOPIC_PREFIX = "touchpoints."

Mangle = Callable[[dict[str, Any], datetime], bytes]


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, the shape every simulated channel app uses."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _encode(event: dict[str, Any], occurred_at: datetime) -> bytes:
    return orjson.dumps({**event, "occurred_at": format_time(occurred_at)})


def _truncated(event: dict[str, Any], occurred_at: datetime) -> bytes:
    """A message cut in half, as a crashed producer or a bad proxy leaves it: not JSON."""
    whole = _encode(event, occurred_at)
    return whole[: len(whole) // 2]


def _naive_time(event: dict[str, Any], occurred_at: datetime) -> bytes:
    """A timestamp without an offset: the event time would be a guess, so it is refused."""
    return orjson.dumps(
        {**event, "occurred_at": occurred_at.replace(tzinfo=None).isoformat(timespec="seconds")}
    )


MALFORMED_KINDS: tuple[str, ...] = ("not_json", "missing_ids", "oversized", "naive_time", "bad_type")
MIN_MALFORMED = 3


@dataclass(frozen=True)
class PlannedMessage:
    """One message of the plan; `render` turns it into the exact bytes for a given event time.

    `customer` is the index of the journey it belongs to (-1 for malformed messages), which links a
    customer's anonymous and known events for analysis.
    """

    offset_s: float
    topic: str
    key: bytes | None
    event: dict[str, Any]
    persona: str
    valid: bool = True
    resend_of: str | None = None
    mangle: Mangle | None = None
    customer: int = -1

    @property
    def event_id(self) -> str:
        return str(self.event.get("event_id", ""))

    def render(self, occurred_at: datetime) -> bytes:
        if self.mangle is not None:
            return self.mangle(self.event, occurred_at)
        return _encode(self.event, occurred_at)


class Message(NamedTuple):
    """A ready-to-send message with absolute event time: `(topic, key, value, offset_s)`."""

    topic: str
    key: bytes | None
    value: bytes
    offset_s: float


def _key(event: dict[str, Any]) -> bytes | None:
    ident = event.get("customer_id") or event.get("anonymous_id")
    if ident is None and event.get("identifiers"):
        ident = event["identifiers"][min(event["identifiers"])]
    return ident.encode() if isinstance(ident, str) else None


def _pick_persona(rng: random.Random) -> str:
    names = list(PERSONAS)
    return rng.choices(names, weights=[PERSONAS[name][1] for name in names])[0]


def _journey(rng: random.Random, prefix: str, index: int, persona: str | None) -> Journey:
    region = rng.choices(REGIONS, weights=[r.weight for r in REGIONS])[0]
    name = persona or _pick_persona(rng)
    journey = Journey(
        rng=rng,
        customer_id=f"{prefix}-c{index:06d}",
        anonymous_id=f"{prefix}-a{rng.getrandbits(48):012x}",
        device_id=f"{prefix}-d{rng.getrandbits(48):012x}",
        region=region,
        persona=name,
    )
    PERSONAS[name][0](journey)
    return journey


def _malformed(rng: random.Random, prefix: str, kind: str, offset_s: float, topic: str) -> PlannedMessage:
    event: dict[str, Any] = {
        "event_id": f"evt-bad-{rng.getrandbits(64):016x}",
        "type": "product.viewed",
        "channel": "web",
        "occurred_at": None,
        "anonymous_id": f"{prefix}-a{rng.getrandbits(48):012x}",
        "properties": {"sku": SOFA.sku, "price": SOFA.price},
    }
    mangle: Mangle | None = None
    if kind == "not_json":
        mangle = _truncated
    elif kind == "missing_ids":
        del event["anonymous_id"]
    elif kind == "naive_time":
        mangle = _naive_time
    elif kind == "bad_type":
        event["type"] = "Product Viewed"
    elif kind == "oversized":
        event["properties"]["review_draft"] = "x" * (MAX_EVENT_BYTES + 1024)
    return PlannedMessage(offset_s, topic, _key(event), event, f"malformed:{kind}", False, None, mangle)


def plan(
    seed: int,
    customers: int,
    *,
    journey_scale: float = 1.0,
    round_no: int = 0,
    faults: bool = True,
    personas: list[str] | None = None,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
) -> list[PlannedMessage]:
    """Every message of `customers` journeys, ordered by offset; ties keep generation order.

    Customers arrive on average every `ARRIVAL_GAP_S` seconds; all times are multiplied by
    `journey_scale` (0 sends every event at offset 0, for load tests). `personas`, if given, is cycled
    instead of drawing personas by weight. Ids carry the seed and round, so runs never share customers.
    """
    rng = random.Random(f"journey-sim:{seed}:{round_no}")
    prefix = f"s{seed}r{round_no}"
    messages: list[PlannedMessage] = []
    arrival = 0.0
    for index in range(customers):
        persona = personas[index % len(personas)] if personas else None
        journey = _journey(rng, prefix, index, persona)
        for step in journey.steps:
            offset = (arrival + step.at_s) * journey_scale
            topic = f"{topic_prefix}{step.event['channel']}"
            message = PlannedMessage(
                offset, topic, _key(step.event), step.event, journey.persona, customer=index
            )
            messages.append(message)
            if faults and rng.random() < RESEND_PROBABILITY:
                resend_at = offset + rng.uniform(0.5, 5.0) * journey_scale
                messages.append(
                    PlannedMessage(
                        resend_at,
                        topic,
                        message.key,
                        step.event,
                        journey.persona,
                        resend_of=message.event_id,
                        customer=index,
                    )
                )
        arrival += rng.expovariate(1 / ARRIVAL_GAP_S)
    if faults and customers > 0:
        span = arrival * journey_scale
        for n in range(max(MIN_MALFORMED, math.ceil(customers / MALFORMED_PER_CUSTOMERS))):
            kind = MALFORMED_KINDS[n % len(MALFORMED_KINDS)]
            if kind == "oversized" and n >= len(MALFORMED_KINDS):
                kind = "not_json"  # one 1 MiB message per round is enough to prove the limit
            messages.append(_malformed(rng, prefix, kind, rng.uniform(0, span), f"{topic_prefix}web"))
    messages.sort(key=lambda m: m.offset_s)
    return messages


def stamp_times(messages: list[PlannedMessage], start: datetime) -> list[datetime]:
    """Absolute event times: start + offset, and a re-sent event keeps its original's time."""
    first_seen: dict[str, datetime] = {}
    times: list[datetime] = []
    for message in messages:
        if message.resend_of is not None and message.resend_of in first_seen:
            times.append(first_seen[message.resend_of])
            continue
        moment = start + timedelta(seconds=message.offset_s)
        first_seen.setdefault(message.event_id, moment)
        times.append(moment)
    return times


def generate(
    seed: int,
    customers: int,
    start_time: datetime = DEFAULT_START,
    *,
    journey_scale: float = 1.0,
    round_no: int = 0,
    faults: bool = True,
    personas: list[str] | None = None,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
) -> list[Message]:
    """The plan with absolute event times from `start_time`: for replay files and tests."""
    planned = plan(
        seed,
        customers,
        journey_scale=journey_scale,
        round_no=round_no,
        faults=faults,
        personas=personas,
        topic_prefix=topic_prefix,
    )
    times = stamp_times(planned, start_time)
    return [Message(m.topic, m.key, m.render(t), m.offset_s) for m, t in zip(planned, times, strict=True)]
