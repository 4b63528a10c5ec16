"""The simulator: deterministic, realistic journeys that decide what each persona should get."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import SHARED_EXAMPLES
from kafka_readback import read_back

from orchestrator.config import Settings
from orchestrator.simulate import EXPECTED_RULES, PERSONAS, STORES, generate, plan, simulate
from orchestrator.simulate.catalog import STORE_BY_ID
from schemas import InvalidEvent, parse_touchpoint

JOURNEY = Path(sys.executable).with_name("journey")
SHARED_RULES = SHARED_EXAMPLES / "rules.yaml"


def test_same_seed_gives_identical_bytes() -> None:
    assert generate(11, 40) == generate(11, 40)


def test_different_seeds_give_different_events_and_customers() -> None:
    first, second = generate(11, 40), generate(12, 40)
    assert [m.value for m in first] != [m.value for m in second]
    ids = {parse_touchpoint(m.value).customer_id for m in first if _valid(m.value)}
    assert ids.isdisjoint({parse_touchpoint(m.value).customer_id for m in second if _valid(m.value)} - {None})


def _valid(raw: bytes) -> bool:
    try:
        parse_touchpoint(raw)
    except InvalidEvent:
        return False
    return True


def test_planned_good_events_validate_and_malformed_ones_do_not() -> None:
    messages = plan(5, 60)
    start = datetime(2026, 5, 4, tzinfo=UTC)
    kinds = collections.Counter(m.persona for m in messages if not m.valid)
    assert set(kinds) >= {"malformed:not_json", "malformed:missing_ids", "malformed:oversized"}
    for message in messages:
        raw = message.render(start)
        assert _valid(raw) == message.valid, (message.persona, raw[:200])
        if message.valid:
            event = parse_touchpoint(raw)
            assert message.topic == f"touchpoints.{event.channel}"
            assert message.key == (event.customer_id or event.anonymous_id or "").encode()


def test_messages_are_in_time_order_and_absolute_times_follow_offsets() -> None:
    messages = generate(3, 20, datetime(2026, 1, 1, tzinfo=UTC))
    offsets = [m.offset_s for m in messages]
    assert offsets == sorted(offsets)
    first = json.loads(messages[0].value)
    assert first["occurred_at"] == "2026-01-01T00:00:00.000Z"


def test_resent_events_are_byte_identical_copies() -> None:
    messages = generate(2, 300)
    by_id = collections.defaultdict(list)
    for message in messages:
        if _valid(message.value):
            by_id[parse_touchpoint(message.value).event_id].append(message.value)
    copies = [values for values in by_id.values() if len(values) > 1]
    assert copies
    assert all(len(set(values)) == 1 for values in copies)


def _journeys(seed: int, customers: int) -> dict[str, list[dict]]:
    start = datetime(2026, 5, 4, tzinfo=UTC)
    by_customer: dict[str, list[dict]] = collections.defaultdict(list)
    for message in plan(seed, customers, faults=False, personas=list(PERSONAS)):
        event = json.loads(message.render(start))
        by_customer[f"{message.persona}/{message.customer}"].append(event)
    return by_customer


def test_personas_play_their_scripts() -> None:
    journeys = _journeys(9, 2 * len(PERSONAS))
    assert {name.split("/")[0] for name in journeys} == set(PERSONAS)
    assert len(journeys) == 2 * len(PERSONAS)
    for name, events in journeys.items():
        persona = name.split("/")[0]
        types = [e["type"] for e in events]
        if persona == "buyer":
            assert types.index("order.completed") > types.index("cart.item_added")
        if persona == "sofa_abandoner":
            cart = events[types.index("cart.item_added")]
            assert "customer_id" not in cart and cart["channel"] == "mobile"
            assert cart["properties"]["sku"] == "SOFA-VELVET-GREEN"
            login = events[types.index("identify")]
            assert login["anonymous_id"] == cart["anonymous_id"] and login["customer_id"]
            assert "timezone" in login["properties"]["traits"]
            assert "order.completed" not in types
        if persona == "umbrella_browser":
            last = events[-1]
            assert last["type"] == "location.updated"
            assert any(_inside(last["context"]["geo"], store.id) for store in STORES)
            assert all(e["context"].get("weather") == "rain" for e in events if e["type"] == "product.viewed")
        if persona == "chatbot_handoff":
            assert types[-4:] == ["chat.message", "chat.intent_failed", "chat.intent_failed", "chat.message"]
        if persona == "opted_out_abandoner":
            consent = events[types.index("consent.updated")]
            assert consent["properties"] == {"channel": "email", "granted": False}
            assert types.index("consent.updated") < types.index("cart.item_added")


def _inside(geo: dict[str, float], store_id: str) -> bool:
    from math import cos, hypot, radians

    store = STORE_BY_ID[store_id]
    dy = (geo["lat"] - store.lat) * 111_320
    dx = (geo["lon"] - store.lon) * 111_320 * cos(radians(store.lat))
    return hypot(dx, dy) <= store.radius_m


def test_customers_live_in_several_timezones() -> None:
    zones = {
        e["properties"]["traits"]["timezone"]
        for events in _journeys(4, 60).values()
        for e in events
        if e["type"] == "identify"
    }
    assert len(zones) >= 3


def test_journey_scale_compresses_time() -> None:
    slow, fast = plan(1, 10), plan(1, 10, journey_scale=0.01)
    assert fast[-1].offset_s == pytest.approx(slow[-1].offset_s * 0.01)
    assert all(m.offset_s == 0 for m in plan(1, 10, journey_scale=0))


def test_replay_gives_each_persona_its_expected_actions(tmp_path: Path) -> None:
    """The flagship rules with a geofence per simulated store decide exactly what each persona expects."""
    fences = "\n".join(
        f"  - {{id: {s.id}, lat: {s.lat}, lon: {s.lon}, radius_m: {s.radius_m}}}" for s in STORES
    )
    rules_text = SHARED_RULES.read_text()
    head, tail = rules_text.split("geofences:\n", 1)
    tail = tail.split("\n", 1)[1]
    while tail.startswith("  - "):
        tail = tail.split("\n", 1)[1]
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"{head}geofences:\n{fences}\n{tail}")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(m.value + b"\n" for m in generate(21, 80)))
    result = subprocess.run(
        [str(JOURNEY), "replay", str(rules), str(events), "--until", "2026-05-08T00:00:00Z"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    decided: dict[str, set[str]] = collections.defaultdict(set)
    for line in result.stdout.splitlines():
        action = json.loads(line)
        decided[action["customer_id"]].add(action["rule_id"])
    personas = {m.event["customer_id"]: m.persona for m in plan(21, 80) if "customer_id" in m.event}
    assert set(personas.values()) >= set(EXPECTED_RULES) - {"window_shopper"}
    wrong = {cid: (p, decided[cid]) for cid, p in personas.items() if decided[cid] != EXPECTED_RULES[p]}
    assert not wrong
    assert set(decided) <= set(personas)


@pytest.mark.integration
async def test_simulate_publishes_live_stamped_events(kafka_bootstrap: str, unique_topic_prefix: str) -> None:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, touchpoints_prefix=f"{unique_topic_prefix}touchpoints."
    )
    before = datetime.now(UTC)
    report = await simulate(seed=8, customers=6, journey_scale=0, settings=settings)
    assert report.sent == len(plan(8, 6)) and report.malformed >= 3
    topics = sorted(report.by_topic)
    records = await read_back(kafka_bootstrap, topics, report.sent)
    assert len(records) == report.sent
    valid = [parse_touchpoint(r.value) for r in records if _valid(r.value)]
    assert len(valid) == report.sent - report.malformed
    assert all(before <= e.occurred_at <= datetime.now(UTC) for e in valid)


@pytest.mark.integration
async def test_simulate_respects_rate_and_duration(kafka_bootstrap: str, unique_topic_prefix: str) -> None:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, touchpoints_prefix=f"{unique_topic_prefix}touchpoints."
    )
    report = await simulate(seed=9, customers=3, rate=40, duration=1.5, journey_scale=0, settings=settings)
    assert report.rounds >= 2  # new customers keep arriving until the duration is over
    assert 40 <= report.sent <= 62
    assert report.elapsed_s < 3
