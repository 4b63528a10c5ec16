"""The touchpoint contract (SPEC §1) as channel apps meet it: what parses, and what is refused and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_EXAMPLES

from schemas import MAX_EVENT_BYTES, InvalidEvent, parse_touchpoint, parse_validated_touchpoint

EXAMPLES = SHARED_EXAMPLES / "events.jsonl"
REPO_EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

GOOD: dict[str, Any] = {
    "event_id": "e-1",
    "type": "product.viewed",
    "channel": "web",
    "occurred_at": "2026-05-04T09:00:00Z",
    "customer_id": "c-1",
    "properties": {"sku": "SOFA-VELVET-GREEN", "price": 899},
}


def event(**changes: Any) -> bytes:
    """GOOD with fields replaced; a value of `...` removes the field."""
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def without_ids(**changes: Any) -> bytes:
    return event(customer_id=..., **changes)


INVALID: list[tuple[str, bytes, str]] = [
    ("missing event_id", event(event_id=...), "`event_id`: is required"),
    ("empty event_id", event(event_id=""), "`event_id`"),
    ("129-char event_id", event(event_id="e" * 129), "`event_id`"),
    ("type not dotted lowercase", event(type="Cart.Item_Added"), "`type`"),
    ("missing channel", event(channel=...), "`channel`: is required"),
    ("channel upper case", event(channel="Web"), "`channel`"),
    (
        "occurred_at without offset",
        event(occurred_at="2026-05-04T09:00:00"),
        "`occurred_at`: missing timezone",
    ),
    ("occurred_at a number", event(occurred_at=1777885200), "`occurred_at`: must be an RFC 3339"),
    ("occurred_at impossible date", event(occurred_at="2026-13-45T09:00:00Z"), "`occurred_at`"),
    ("no identifier at all", without_ids(), "one of customer_id, anonymous_id or identifiers"),
    ("empty identifiers", without_ids(identifiers={}), "one of customer_id, anonymous_id or identifiers"),
    ("identifier not a string", event(identifiers={"device_id": 42}), "`identifiers.device_id`"),
    ("customer_id not a string", event(customer_id=100), "`customer_id`"),
    ("properties not an object", event(properties=[1, 2]), "`properties`"),
    ("cart.item_added without sku", event(type="cart.item_added", properties={"qty": 1}), "`properties.sku`"),
    ("negative qty", event(type="cart.item_added", properties={"sku": "S", "qty": -1}), "`properties.qty`"),
    ("qty as text", event(type="cart.item_added", properties={"sku": "S", "qty": "2"}), "`properties.qty`"),
    (
        "order.completed without total",
        event(type="order.completed", properties={"order_id": "o1"}),
        "`properties.total`",
    ),
    (
        "consent granted not bool",
        event(type="consent.updated", properties={"channel": "email", "granted": "false"}),
        "`properties.granted`",
    ),
    (
        "sentiment out of range",
        event(type="chat.message", properties={"text": "hi", "sentiment": -1.5}),
        "`properties.sentiment`",
    ),
    ("location.updated without geo", event(type="location.updated", properties={}), "context.geo"),
    (
        "latitude out of range",
        event(type="location.updated", context={"geo": {"lat": 91, "lon": 2}}),
        "`context.geo.lat`",
    ),
    ("bad IANA timezone", event(context={"timezone": "Mars/Olympus_Mons"}), "`context.timezone`"),
    ("context not an object", event(context="paris"), "`context`"),
    ("not JSON", b'{"event_id": "e-1", "type": ', "not valid JSON"),
    ("JSON array", b"[1, 2, 3]", "an event must be a JSON object"),
    ("JSON string", b'"hello"', "an event must be a JSON object"),
    ("invalid UTF-8", event(event_id="e-BYTES").replace(b"BYTES", b"\xff\xfe"), "not valid JSON"),
    ("NaN", event().replace(b"899", b"NaN"), "not valid JSON"),
    (
        "Infinity in unknown properties",
        event(type="x.y", properties={}).replace(b"{}", b'{"a": Infinity}'),
        "JSON",
    ),
    ("over 1 MiB", event(properties={"sku": "S", "blob": "x" * MAX_EVENT_BYTES}), "1 MiB"),
    ("empty message", b"", "not valid JSON"),
]


def test_every_shared_example_event_parses() -> None:
    lines = [line for line in EXAMPLES.read_bytes().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert parse_touchpoint(line).event_id


def test_revalidation_rebuilds_exactly_what_the_first_validation_built() -> None:
    """The worker's later hops rebuild events with `parse_validated_touchpoint`: same object, same
    derived fields, for every event type the simulator and the shared example produce."""
    from orchestrator.simulate import generate

    simulated = [m.value for m in generate(11, 300, datetime.now(UTC), journey_scale=0, faults=False)]
    examples = [line for line in EXAMPLES.read_bytes().splitlines() if line.strip()]
    for raw in simulated + examples:
        first, again = parse_touchpoint(raw), parse_validated_touchpoint(raw)
        assert again == first and again.__dict__ == first.__dict__, raw


def test_invalid_cases_are_distinct_and_many() -> None:
    assert len({raw for _, raw, _ in INVALID}) == len(INVALID) >= 15


@pytest.mark.parametrize(
    ("raw", "reason"), [(raw, reason) for _, raw, reason in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_event_is_refused_with_a_reason_naming_the_field(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_touchpoint(raw)
    assert reason in str(caught.value)


def test_unknown_top_level_fields_are_kept() -> None:
    parsed = parse_touchpoint(event(app_version="4.2.0", experiment={"id": "x"}))
    assert parsed.model_extra == {"app_version": "4.2.0", "experiment": {"id": "x"}}


def test_unknown_types_and_properties_pass_through() -> None:
    parsed = parse_touchpoint(event(type="newsletter.signup", properties={"list": "weekly", "n": 1}))
    assert parsed.properties == {"list": "weekly", "n": 1}


def test_well_known_defaults_apply() -> None:
    parsed = parse_touchpoint(event(type="cart.item_added", properties={"sku": "S", "price": 10}))
    assert parsed.props["qty"] == 1


def test_identifiers_alone_are_enough() -> None:
    parsed = parse_touchpoint(without_ids(identifiers={"loyalty_card": "L-9", "device_id": "d-1"}))
    assert parsed.identifiers == {"loyalty_card": "L-9", "device_id": "d-1"}


def test_offsets_and_fractions_are_accepted() -> None:
    parsed = parse_touchpoint(event(occurred_at="2026-05-04T11:00:00.123456789+02:00"))
    assert parsed.ts == pytest.approx(1777885200.123456)
