"""The Python publisher: validate before sending, the right topic and key, batched delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from kafka_readback import read_back

from orchestrator.config import Settings
from orchestrator.publish import Publisher, PublisherNotConfigured, encode_event, partition_key
from schemas import InvalidEvent, parse_touchpoint

EVENT = {
    "event_id": "p-1",
    "type": "cart.item_added",
    "channel": "web",
    "occurred_at": "2026-05-04T09:00:00Z",
    "anonymous_id": "a-1",
    "properties": {"sku": "SOFA-VELVET-GREEN", "qty": 1, "price": 899},
}


def test_dict_bytes_text_and_touchpoint_encode_to_the_same_event() -> None:
    touchpoint, raw = encode_event(EVENT)
    assert json.loads(raw) == EVENT
    assert encode_event(raw)[0] == touchpoint
    assert encode_event(raw.decode())[0] == touchpoint
    assert encode_event(touchpoint)[0] == touchpoint


def test_datetimes_in_dicts_become_rfc3339() -> None:
    touchpoint, _ = encode_event({**EVENT, "occurred_at": datetime(2026, 5, 4, 9, tzinfo=UTC)})
    assert touchpoint.ts == datetime(2026, 5, 4, 9, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "bad",
    [
        {**EVENT, "anonymous_id": None},
        {**EVENT, "properties": {"sku": "S", "price": float("nan")}},
        {**EVENT, "occurred_at": datetime(2026, 5, 4, 9)},
        b"not json",
        42,
    ],
    ids=["no-identifier", "nan", "naive-datetime", "not-json", "not-an-event"],
)
def test_invalid_events_raise_before_anything_is_sent(bad: object) -> None:
    with pytest.raises(InvalidEvent):
        encode_event(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ids", "key"),
    [
        ({"customer_id": "c", "anonymous_id": "a"}, b"c"),
        ({"anonymous_id": "a", "identifiers": {"device_id": "d"}}, b"a"),
        ({"identifiers": {"loyalty_card": "L", "device_id": "d"}}, b"d"),
    ],
)
def test_key_is_the_best_identifier(ids: dict[str, object], key: bytes) -> None:
    base = {k: v for k, v in EVENT.items() if k != "anonymous_id"}
    assert partition_key(encode_event({**base, **ids})[0]) == key


def test_without_a_bootstrap_the_publisher_says_how_to_configure_one() -> None:
    with pytest.raises(PublisherNotConfigured, match="JOURNEY_KAFKA_BOOTSTRAP"):
        Publisher(settings=Settings(kafka_bootstrap=None))


@pytest.mark.integration
async def test_publish_then_read_back(kafka_bootstrap: str, unique_topic_prefix: str) -> None:
    settings = Settings(touchpoints_prefix=f"{unique_topic_prefix}touchpoints.")
    events = [
        {**EVENT, "event_id": f"p-{n}", "channel": channel, "customer_id": f"c-{n % 3}"}
        for n, channel in enumerate(["web", "mobile", "web", "chat", "web"])
    ]
    async with Publisher(kafka_bootstrap, settings=settings) as publisher:
        futures = [await publisher.send(event) for event in events]
        await publisher.send_raw(f"{unique_topic_prefix}raw", b"{broken", "k-raw")
        explicit = await publisher.send(events[0], topic=f"{unique_topic_prefix}raw")
        with pytest.raises(InvalidEvent):
            await publisher.send({**EVENT, "type": "Cart Item Added"})
        await publisher.flush()
    assert all(future.done() and future.exception() is None for future in [*futures, explicit])
    assert publisher.sent == len(events) + 2

    prefix = settings.touchpoints_prefix
    records = await read_back(
        kafka_bootstrap, [f"{prefix}web", f"{prefix}mobile", f"{prefix}chat"], len(events)
    )
    received = {parse_touchpoint(r.value).event_id: r for r in records}
    assert set(received) == {e["event_id"] for e in events}
    for event in events:
        record = received[event["event_id"]]
        assert record.topic == f"{prefix}{event['channel']}"
        assert record.key == event["customer_id"].encode()
    partitions = {received[e["event_id"]].partition for e in events if e["customer_id"] == "c-0"}
    assert len(partitions) == 1  # one customer's events stay in order on one partition

    raw = await read_back(kafka_bootstrap, [f"{unique_topic_prefix}raw"], 2)
    assert sorted(r.value for r in raw) == sorted([b"{broken", json.dumps(events[0]).encode()])
