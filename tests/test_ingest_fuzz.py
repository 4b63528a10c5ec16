"""Hostile input at the ingest path: every message is routed or dead-lettered with a reason, never raised.

In process, hypothesis throws at least 10,000 generated messages (`JOURNEY_FUZZ_EXAMPLES` for a longer
run) at `agents.ingest.triage`, the very function the ingest agent calls per message: random bytes,
invalid UTF-8, deep nesting, huge numbers and strings, wrong types at every field, sizes around the
1 MiB limit, duplicate keys, NaN/Infinity, and valid events with one field broken. A planted personal
value must never be quoted back in a dead-letter reason.

Live, about 300 of those messages, interleaved with valid events that trigger a rule, go to a running
worker: it stays alive, each rejected message is in the DLQ (by topic, partition and offset) with the
reason `triage` gave in process, and every valid event decided its action.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from conftest import ProcessSpawner, worker_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtime_support import TopicReader, event, now_iso, values, wait_log, write_rules

from agents.ingest import Accepted, Rejected, triage
from orchestrator.config import Settings
from orchestrator.embedded import ManagedProcess
from orchestrator.metrics import DEAD_LETTER_KINDS
from orchestrator.runtime.dead_letter import dead_letter_kind, dead_letter_record
from orchestrator.runtime.envelope import IdentityBatch, Item, Route, decode_identity
from orchestrator.runtime.pipeline import MESSAGE_BYTES_MAX, split_batch
from schemas import MAX_EVENT_BYTES

EXAMPLES = int(os.environ.get("JOURNEY_FUZZ_EXAMPLES", "10000"))
LIVE_MESSAGES = 300
SENTINEL = "Ada.Lovelace+secret@example.com"  # a personal value planted in hostile fields

BASE: dict[str, Any] = {
    "event_id": "fz-1",
    "type": "cart.item_added",
    "channel": "web",
    "occurred_at": "2026-05-04T09:00:00Z",
    "customer_id": "c-fuzz",
    "anonymous_id": "a-fuzz",
    "identifiers": {"device_id": "d-1"},
    "properties": {"sku": "CHAIR-9", "qty": 2, "price": 120},
    "context": {"geo": {"lat": 45.5, "lon": -73.5}, "timezone": "Europe/Paris", "store_id": "s-1"},
}
WELL_KNOWN_PROPERTIES: dict[str, dict[str, Any]] = {
    "identify": {"traits": {"tier": "gold"}},
    "consent.updated": {"channel": "email", "granted": False},
    "product.viewed": {"sku": "CHAIR-9", "price": 120},
    "cart.item_added": {"sku": "CHAIR-9", "qty": 2, "price": 120},
    "cart.item_removed": {"sku": "CHAIR-9"},
    "order.completed": {"order_id": "o-1", "total": 240},
    "chat.message": {"text": "hello", "sentiment": -0.2, "intent": "stock"},
    "location.updated": {},
    "privacy.erasure_requested": {},
}
# Every place a value can be broken: top-level fields, then nested ones as (container, key) paths.
PATHS: list[tuple[str, ...]] = [
    ("event_id",),
    ("type",),
    ("channel",),
    ("occurred_at",),
    ("customer_id",),
    ("anonymous_id",),
    ("identifiers",),
    ("identifiers", "device_id"),
    ("properties",),
    ("context",),
    ("context", "geo"),
    ("context", "geo", "lat"),
    ("context", "geo", "lon"),
    ("context", "timezone"),
    ("context", "store_id"),
]
PROPERTY_KEYS = [
    "sku",
    "qty",
    "price",
    "traits",
    "channel",
    "granted",
    "order_id",
    "total",
    "text",
    "sentiment",
]
NUMBER_TEXTS = [
    "1e400",
    "-1e400",
    "1e-400",
    "9" * 5000,
    "-" + "9" * 400,
    "1" + "0" * 400 + ".5",
    "-0",
    "0.0000000000000000000000000000001",
    "12345678901234567890123456789",
    "1E+308",
]
NOT_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "nan", "inf", "+1", "01", ".5", "0x10", "1_000"]
BAD_TIMESTAMPS = [
    "2026-02-30T00:00:00Z",
    "2026-05-04T09:00:00",
    "2026-05-04T24:00:00Z",
    "2026-05-04T09:00:00+25:00",
    "2026-05-04T09:00:00.1234567890Z",
    "2026-05-04",
    "04/05/2026 09:00",
    "",
    SENTINEL,
    f"2026-05-04T09:00:00Z {SENTINEL}",
]
INVALID_UTF8 = [b"\xff", b"\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf", b"\x80"]
LONE_SURROGATES = ["\\ud800", "\\udfff", "\\ud800\\u0041"]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.just(SENTINEL),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
long_strings = st.builds(
    lambda char, n: char * n,
    st.sampled_from(["x", "é", "😀", " ", "\\"]),
    st.sampled_from([0, 63, 64, 65, 127, 128, 129, 255, 256, 257, 10_000, 100_000]),
)


def base_event(kind: str) -> dict[str, Any]:
    event_ = json.loads(json.dumps(BASE))
    event_["type"] = kind
    event_["properties"] = json.loads(json.dumps(WELL_KNOWN_PROPERTIES.get(kind, {"note": "x"})))
    return event_


def put(event_: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """`event_` with `path` set to `value` (containers on the way are created if missing or broken)."""
    node = event_
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return event_


def dumps(event_: dict[str, Any]) -> bytes:
    return json.dumps(event_, ensure_ascii=False).encode()


def with_raw_value(event_: dict[str, Any], path: tuple[str, ...], text: str) -> bytes:
    """The event's JSON with the value at `path` replaced by raw text (numbers JSON cannot hold)."""
    marker = f"__raw_{uuid.uuid4().hex}__"
    return dumps(put(event_, path, marker)).replace(f'"{marker}"'.encode(), text.encode())


event_kinds = st.sampled_from([*sorted(WELL_KNOWN_PROPERTIES), "test.ping", "Cart.Added", "a..b"])
all_paths = st.sampled_from(PATHS) | st.sampled_from(PROPERTY_KEYS).map(lambda k: ("properties", k))


@st.composite
def wrong_type(draw: st.DrawFn) -> tuple[str, bytes]:
    return "wrong_type", dumps(put(base_event(draw(event_kinds)), draw(all_paths), draw(json_values)))


@st.composite
def one_field_broken(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid event but for one thing: a missing field, a bad timestamp, timezone or identifier key."""
    event_ = base_event(draw(event_kinds))
    how = draw(st.sampled_from(["missing", "timestamp", "timezone", "identifier_key", "no_identity", "geo"]))
    if how == "missing":
        path = draw(all_paths)
        parent = event_
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent.get(key), dict) else {}
        parent.pop(path[-1], None)
    elif how == "timestamp":
        event_["occurred_at"] = draw(st.sampled_from(BAD_TIMESTAMPS))
    elif how == "timezone":
        event_["context"]["timezone"] = draw(
            st.sampled_from([SENTINEL, f"Europe/{SENTINEL}", "Mars/Olympus"])
        )
    elif how == "identifier_key":
        event_["identifiers"] = {SENTINEL: "v", draw(st.sampled_from(["ok", "Bad", ""])): SENTINEL}
    elif how == "no_identity":
        for key in ("customer_id", "anonymous_id", "identifiers"):
            event_.pop(key)
    else:
        event_["type"] = "location.updated"
        event_["context"]["geo"] = draw(
            st.sampled_from([None, {}, {"lat": 91, "lon": 0}, {"lat": SENTINEL, "lon": SENTINEL}])
        )
    return "one_field_broken", dumps(event_)


@st.composite
def huge_number(draw: st.DrawFn) -> tuple[str, bytes]:
    number = draw(st.sampled_from(NUMBER_TEXTS))
    return "huge_number", with_raw_value(base_event(draw(event_kinds)), draw(all_paths), number)


@st.composite
def not_a_json_number(draw: st.DrawFn) -> tuple[str, bytes]:
    number = draw(st.sampled_from(NOT_JSON_NUMBERS))
    return "nan_infinity", with_raw_value(base_event(draw(event_kinds)), draw(all_paths), number)


@st.composite
def huge_string(draw: st.DrawFn) -> tuple[str, bytes]:
    return "huge_string", dumps(put(base_event(draw(event_kinds)), draw(all_paths), draw(long_strings)))


@st.composite
def deep_nesting(draw: st.DrawFn) -> tuple[str, bytes]:
    depth = draw(st.sampled_from([10, 100, 127, 128, 129, 200, 255, 256, 1000, 100_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = opener * depth + "1" + closer * draw(st.sampled_from([depth, depth - 1, 0]))
    where = draw(st.sampled_from(["whole", "properties", "traits"]))
    if where == "whole":
        return "deep_nesting", nested.encode()
    path = ("properties", "deep") if where == "properties" else ("properties", "traits")
    return "deep_nesting", with_raw_value(base_event("identify"), path, nested)


@st.composite
def invalid_utf8(draw: st.DrawFn) -> tuple[str, bytes]:
    raw = dumps(base_event(draw(event_kinds)))
    if draw(st.booleans()):
        bad = draw(st.sampled_from(INVALID_UTF8))
    else:
        bad = draw(st.sampled_from(LONE_SURROGATES)).encode()
    at = draw(st.integers(min_value=0, max_value=len(raw)))
    return "invalid_utf8", raw[:at] + bad + raw[at:]


@st.composite
def near_size_limit(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid event padded to exactly 1 MiB - 1, 1 MiB or 1 MiB + 1 bytes."""
    event_ = put(base_event(draw(event_kinds)), ("properties", "pad"), "")
    target = MAX_EVENT_BYTES + draw(st.sampled_from([-1, 0, 1]))
    event_["properties"]["pad"] = "x" * (target - len(dumps(event_)))
    raw = dumps(event_)
    assert len(raw) == target
    return "size_limit", raw


@st.composite
def duplicate_keys(draw: st.DrawFn) -> tuple[str, bytes]:
    event_ = base_event(draw(event_kinds))
    key = draw(st.sampled_from(list(event_)))
    pairs = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in event_.items()]
    duplicate = f"{json.dumps(key)}: {json.dumps(draw(json_values))}"
    pairs.insert(draw(st.integers(min_value=0, max_value=len(pairs))), duplicate)
    return "duplicate_keys", ("{" + ", ".join(pairs) + "}").encode()


random_bytes = st.binary(max_size=600).map(lambda raw: ("random_bytes", raw))
any_json = json_values.map(lambda value: ("any_json", json.dumps(value).encode()))
valid_events = st.sampled_from([*WELL_KNOWN_PROPERTIES, "test.ping"]).map(
    lambda kind: ("valid", dumps(base_event(kind)))
)
not_bytes = st.sampled_from([None, "text", 42]).map(lambda value: ("not_bytes", value))

HOSTILE = st.one_of(
    random_bytes,
    invalid_utf8(),
    deep_nesting(),
    huge_number(),
    huge_string(),
    wrong_type(),
    near_size_limit(),
    duplicate_keys(),
    not_a_json_number(),
    one_field_broken(),
    any_json,
    valid_events,
    not_bytes,
)
KINDS = {
    "random_bytes",
    "invalid_utf8",
    "deep_nesting",
    "huge_number",
    "huge_string",
    "wrong_type",
    "size_limit",
    "duplicate_keys",
    "nan_infinity",
    "one_field_broken",
    "any_json",
    "valid",
    "not_bytes",
}


def check_triage(value: object) -> Accepted | Rejected:
    """What must hold for every message: a decision, never an exception; a usable dead letter."""
    decision = triage(value)
    raw = value if isinstance(value, bytes) else b""
    if isinstance(decision, Rejected):
        assert isinstance(decision.reason, str) and decision.reason.strip()
        assert SENTINEL.lower() not in decision.reason.lower(), decision.reason
        assert "lovelace" not in decision.reason.lower(), decision.reason
        assert dead_letter_kind(decision.reason) in DEAD_LETTER_KINDS
        assert not decision.reason.startswith("processing error"), decision.reason
        record = orjson.loads(dead_letter_record(raw, "touchpoints.web", 0, 1, decision.reason))
        assert base64.b64decode(record["original"]) == raw and record["reason"] == decision.reason
    else:
        assert len(raw) <= MAX_EVENT_BYTES
        assert decision.route_key in decision.keys or decision.route_key == decision.touchpoint.customer_id
        assert triage(raw) == decision, "a later hop re-validates the same bytes: it must agree"
    return decision


def test_ingest_triage_survives_generated_hostile_messages() -> None:
    seen: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(HOSTILE)
    def fuzz(message: tuple[str, object]) -> None:
        kind, value = message
        decision = check_triage(value)
        seen[kind] += 1
        outcomes[type(decision).__name__] += 1

    fuzz()
    assert sum(seen.values()) >= EXAMPLES
    assert set(seen) == KINDS, f"kinds never generated: {KINDS - set(seen)}"
    assert outcomes["Rejected"] > outcomes["Accepted"] > 0


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_size_limit_is_exact(delta: int) -> None:
    event_ = put(base_event("cart.item_added"), ("properties", "pad"), "")
    event_["properties"]["pad"] = "x" * (MAX_EVENT_BYTES + delta - len(dumps(event_)))
    decision = check_triage(dumps(event_))
    assert isinstance(decision, Rejected if delta > 0 else Accepted)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("occurred_at", SENTINEL, "`occurred_at`: the value is not an RFC 3339 timestamp"),
        ("occurred_at", "2026-13-45T09:00:00Z", "`occurred_at`: the value is not a valid date and time"),
        ("context", {"timezone": SENTINEL}, "`context.timezone`: the value is not an IANA timezone"),
        ("identifiers", {SENTINEL: "v"}, "`identifiers.[key]`: String should match pattern"),
    ],
)
def test_reasons_name_the_field_without_quoting_the_value(field: str, value: Any, expected: str) -> None:
    decision = check_triage(dumps({**BASE, field: value}))
    assert isinstance(decision, Rejected) and decision.reason.startswith(expected), decision


def test_batches_of_events_near_the_limit_are_split_in_order() -> None:
    """Found by the live part: four valid ~1 MiB events in one ingest batch made a 4.2 MB internal
    message, which the producer refused, crashing the ingest agent (and losing its batch)."""
    raw = dumps(put(base_event("cart.item_added"), ("properties", "pad"), "x" * (MAX_EVENT_BYTES - 400)))
    routes = [Route(Item(raw=raw, channel="web", published=float(i)), keys=[]) for i in range(7)]
    messages = split_batch(routes, IdentityBatch)
    assert len(messages) > 1 and all(len(m) <= MESSAGE_BYTES_MAX for m in messages)
    assert [c for m in messages for c in decode_identity(m).commands] == routes


# --- live: a running worker -------------------------------------------------------------------------


def live_messages() -> list[bytes]:
    """A fixed sample of the generator (derandomized, so every run sends the same messages)."""
    sample: list[bytes] = []

    @settings(
        max_examples=LIVE_MESSAGES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(HOSTILE)
    def collect(message: tuple[str, object]) -> None:
        if isinstance(message[1], bytes):
            sample.append(message[1])

    collect()
    return sample


@pytest.fixture(scope="module")
def live_settings(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return worker_settings(
        kafka_bootstrap,
        redis_url,
        tmp_path_factory.mktemp("fuzz-worker") / "data",
        rules=write_rules(tmp_path_factory.mktemp("fuzz-rules") / "rules.yaml"),
    )


@pytest.fixture(scope="module")
async def live_worker(
    live_settings: Settings, module_spawner: ProcessSpawner
) -> AsyncIterator[ManagedProcess]:
    process = module_spawner.journey("worker", settings=live_settings)
    await wait_log(process, "worker_ready", timeout_s=120)
    yield process


@pytest.mark.integration
@pytest.mark.slow
async def test_live_worker_dead_letters_hostile_messages_and_decides_valid_ones(
    live_worker: ManagedProcess, live_settings: Settings
) -> None:
    s = live_settings
    run = uuid.uuid4().hex[:6]
    hostile = live_messages()
    pings: dict[str, str] = {}  # event id -> customer id
    expected: dict[tuple[str, int, int], str] = {}  # (topic, partition, offset) -> reason
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for position, raw in enumerate(hostile):
            topic = s.touchpoint_topic("web" if position % 2 else "chat")
            sent = await producer.send_and_wait(topic, raw, key=None if position % 3 else b"fuzz")
            decision = triage(raw)
            if isinstance(decision, Rejected):
                expected[(sent.topic, sent.partition, sent.offset)] = decision.reason
            if position % 10 == 0:  # one record per request, in order with the hostile ones
                ping = event(f"ping-{run}-{position}", "test.ping", "web", customer_id=f"c-{run}-{position}")
                ping["occurred_at"] = now_iso()
                pings[ping["event_id"]] = ping["customer_id"]
                await producer.send_and_wait(s.touchpoint_topic("web"), orjson.dumps(ping))
    finally:
        await producer.stop()
    assert len(hostile) >= 250 and len(expected) >= 200

    reader = TopicReader(str(s.kafka_bootstrap))
    letters = await reader.read(
        [s.dlq_topic],
        until=lambda records: (
            {(v["topic"], v["partition"], v["offset"]) for v in values(records)} >= set(expected)
        ),
        timeout_s=60,
    )
    got = {(v["topic"], v["partition"], v["offset"]): v for v in values(letters)}
    missing = set(expected) - set(got)
    assert not missing, f"{len(missing)} hostile messages never reached the DLQ"
    for where, reason in expected.items():
        assert got[where]["reason"] == reason
    assert not [v for v in got.values() if v["reason"].startswith("processing error")]

    replies = await reader.read(
        [s.action_topic("chat")],
        until=lambda records: {v["trigger_event_id"] for v in values(records)} >= set(pings),
        timeout_s=60,
    )
    decided = {
        v["trigger_event_id"]: v["customer_id"] for v in values(replies) if v["rule_id"] == "ping-reply"
    }
    assert {e: decided.get(e) for e in pings} == pings
    assert live_worker.running, "the worker died on hostile input"
    crashes = [line for line in live_worker.log_path.read_text().splitlines() if "Crashed reason=" in line]
    assert not crashes, f"an agent crashed (Faust restarts it, losing its batch): {crashes[0][:300]}"
