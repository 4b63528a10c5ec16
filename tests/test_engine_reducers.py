"""SPEC §1 "well-known event types": one small event sequence per reducer, read back through a rule.

Each test reads the state the way a marketer would — through a rule's condition or `${…}` params —
plus, where it is clearer, the engine's state directly.
"""

from __future__ import annotations

from pathlib import Path

from engine_helpers import ev, load, run

from orchestrator.engine import Engine

PROBE = """
- id: probe
  trigger: {event: probe}
  action:
    type: chat.note
    category: service
    params:
      total: "${cart.total}"
      items: "${cart.items}"
      orders: "${orders}"
      viewed: "${recent.viewed}"
      events: "${len(recent.events)}"
      last_seen: "${last_seen}"
      channels: "${channels_seen}"
      consent: "${customer.consent}"
      traits: "${customer.traits}"
      tz: "${customer.timezone}"
      location: "${location}"
      counter: "${counters.failed}"
"""
HEADER = """
defaults: {timezone: Europe/Paris}
geofences:
  - {id: opera, lat: 48.8719, lon: 2.3316, radius_m: 300}
  - {id: louvre, lat: 48.8606, lon: 2.3376, radius_m: 300}
counters:
  failed: {on: chat.intent_failed, reset_on: [chat.resolved]}
"""
OPERA = {"geo": {"lat": 48.8720, "lon": 2.3317}}
LOUVRE = {"geo": {"lat": 48.8607, "lon": 2.3377}}
NOWHERE = {"geo": {"lat": 45.0, "lon": 2.0}}


def probe(tmp_path: Path, *events, rules: str = PROBE) -> dict:
    """The probe action's params after `events`: a view of the state as rules see it."""
    n = len(events)
    outcome = run(load(tmp_path, rules, header=HEADER), [*events, ev("probe", n * 60 + 60, channel="chat")])
    (action,) = outcome.of("probe")
    return action.params


def test_built_in_state_starts_empty_not_null(tmp_path: Path) -> None:
    params = probe(tmp_path)
    assert params["total"] == 0
    assert params["items"] == []
    assert params["orders"]["count"] == 0
    assert params["viewed"] == []
    assert params["counter"] == 0
    assert params["consent"] == {}
    assert params["traits"] == {}
    assert params["location"] is None


def test_cart_add_merges_quantity_and_totals(tmp_path: Path) -> None:
    params = probe(
        tmp_path,
        ev("cart.item_added", 0, sku="A", qty=2, price=10),
        ev("cart.item_added", 60, sku="B", price=5),
        ev("cart.item_added", 120, sku="A", qty=1, price=10),
    )
    assert [(i["sku"], i["qty"]) for i in params["items"]] == [("A", 3), ("B", 1)]
    assert params["total"] == 35


def test_cart_missing_price_counts_as_zero(tmp_path: Path) -> None:
    params = probe(
        tmp_path, ev("cart.item_added", 0, sku="A", qty=3), ev("cart.item_added", 60, sku="B", price=4)
    )
    assert params["total"] == 4


def test_cart_remove_and_clear(tmp_path: Path) -> None:
    removed = probe(
        tmp_path,
        ev("cart.item_added", 0, sku="A", price=10),
        ev("cart.item_added", 60, sku="B", price=5),
        ev("cart.item_removed", 120, sku="A"),
    )
    assert [i["sku"] for i in removed["items"]] == ["B"]
    assert removed["total"] == 5
    cleared = probe(tmp_path, ev("cart.item_added", 0, sku="A", price=10), ev("cart.cleared", 60))
    assert cleared["items"] == [] and cleared["total"] == 0


def test_order_completed_empties_cart_and_counts(tmp_path: Path) -> None:
    params = probe(
        tmp_path,
        ev("cart.item_added", 0, sku="A", price=10),
        ev("order.completed", 60, order_id="o1", total=10),
        ev("order.completed", 120, order_id="o2", total=32.5),
    )
    assert params["items"] == []
    assert params["orders"]["count"] == 2
    assert params["orders"]["total_spent"] == 42.5
    assert params["orders"]["last_at"] is not None


def test_product_viewed_keeps_last_20_newest_last(tmp_path: Path) -> None:
    views = [ev("product.viewed", i, sku=f"S{i}") for i in range(25)]
    params = probe(tmp_path, *views)
    assert params["viewed"] == [f"S{i}" for i in range(5, 25)]


def test_recent_events_keeps_last_50(tmp_path: Path) -> None:
    rules = """
    - id: probe
      trigger: {event: probe}
      action:
        type: chat.note
        category: service
        params: {n: "${len(recent.events)}", first: "${recent.events}"}
    """
    events = [ev("page.viewed", i) for i in range(60)]
    outcome = run(load(tmp_path, rules, header=HEADER), [*events, ev("probe", 100)])
    params = outcome.of("probe")[0].params
    assert params["n"] == 50
    newest = params["first"][-1]
    assert newest["type"] == "probe" and newest["channel"] == "web"
    assert [e["type"] for e in params["first"]].count("page.viewed") == 49


def test_last_seen_and_channels_seen(tmp_path: Path) -> None:
    params = probe(
        tmp_path,
        ev("page.viewed", 0, channel="web"),
        ev("app.opened", 60, channel="mobile"),
        ev("page.viewed", 120, channel="web"),
    )
    assert params["channels"] == ["web", "mobile", "chat"]
    last_web = params["last_seen"]["web"]
    assert params["last_seen"]["mobile"] < last_web < params["last_seen"]["chat"]
    assert params["last_seen"].get("store") is None


def test_consent_updates(tmp_path: Path) -> None:
    params = probe(
        tmp_path,
        ev("consent.updated", 0, properties={"channel": "email", "granted": False}),
        ev("consent.updated", 60, properties={"channel": "push", "granted": True}),
    )
    assert params["consent"] == {"email": False, "push": True}


def test_identify_merges_traits(tmp_path: Path) -> None:
    params = probe(
        tmp_path,
        ev("identify", 0, traits={"tier": "gold", "name": "A"}),
        ev("identify", 60, traits={"tier": "silver"}),
    )
    assert params["traits"] == {"tier": "silver", "name": "A"}


def test_timezone_resolution_order(tmp_path: Path) -> None:
    """traits.timezone, else the last context.timezone, else the rule file's default."""
    assert probe(tmp_path)["tz"] == "Europe/Paris"
    ctx = probe(
        tmp_path,
        ev("page.viewed", 0, context={"timezone": "Asia/Tokyo"}),
        ev("page.viewed", 60, context={"timezone": "America/Chicago"}),
    )
    assert ctx["tz"] == "America/Chicago"
    traits = probe(
        tmp_path,
        ev("identify", 0, traits={"timezone": "America/Montreal"}),
        ev("page.viewed", 60, context={"timezone": "Asia/Tokyo"}),
    )
    assert traits["tz"] == "America/Montreal"


def test_counters_on_and_reset_on(tmp_path: Path) -> None:
    assert probe(tmp_path, ev("chat.intent_failed", 0), ev("chat.intent_failed", 60))["counter"] == 2
    reset = probe(
        tmp_path,
        ev("chat.intent_failed", 0),
        ev("chat.resolved", 60),
        ev("chat.intent_failed", 120),
    )
    assert reset["counter"] == 1


GEO_RULES = """
- id: entered
  trigger: {event: geofence.entered}
  action:
    type: push.send
    category: service
    params: {fence: "${event.properties.geofence}", lat: "${location.lat}", type: "${event.type}"}
- id: after-location
  trigger: {event: location.updated}
  action: {type: chat.note, category: service, params: {}}
"""


def _entries(tmp_path: Path, *contexts: dict) -> list[tuple[str, str]]:
    events = [
        ev("location.updated", i * 60, channel="mobile", eid=f"L{i}", context=c)
        for i, c in enumerate(contexts)
    ]
    outcome = run(load(tmp_path, GEO_RULES, header=HEADER), events)
    return [(a.params["fence"], a.trigger_event_id) for a in outcome.of("entered")]


def test_first_known_location_inside_is_an_entry(tmp_path: Path) -> None:
    assert _entries(tmp_path, OPERA) == [("opera", "L0:geofence:opera")]


def test_staying_inside_is_no_new_entry(tmp_path: Path) -> None:
    assert _entries(tmp_path, OPERA, {"geo": {"lat": 48.8721, "lon": 2.3318}}) == [
        ("opera", "L0:geofence:opera")
    ]


def test_leaving_and_reentering_is_an_entry(tmp_path: Path) -> None:
    assert _entries(tmp_path, OPERA, NOWHERE, OPERA) == [
        ("opera", "L0:geofence:opera"),
        ("opera", "L2:geofence:opera"),
    ]


def test_moving_between_fences_enters_the_new_one(tmp_path: Path) -> None:
    assert _entries(tmp_path, NOWHERE, OPERA, LOUVRE) == [
        ("opera", "L1:geofence:opera"),
        ("louvre", "L2:geofence:louvre"),
    ]


def test_derived_geofence_event_is_processed_right_after(tmp_path: Path) -> None:
    """The derived event sees the new location and comes after the location.updated triggers."""
    outcome = run(
        load(tmp_path, GEO_RULES, header=HEADER), [ev("location.updated", 0, eid="L", context=OPERA)]
    )
    assert [a.rule_id for a in outcome.actions] == ["after-location", "entered"]
    entered = outcome.of("entered")[0]
    assert entered.params == {"fence": "opera", "lat": 48.872, "type": "geofence.entered"}
    assert entered.trigger_event_id == "L:geofence:opera"
    assert entered.decided_at == "2026-05-04T09:00:00Z"


def test_location_state_is_kept(tmp_path: Path) -> None:
    rules = load(tmp_path, GEO_RULES, header=HEADER)
    step = Engine(rules).apply("c1", None, [ev("location.updated", 0, context=NOWHERE)], 0)
    assert step.state is not None and step.state.location == (45.0, 2.0)
