"""SPEC §1 `identify` and §3 fine points on identity: anonymous profiles, merges, identifier aliases."""

from __future__ import annotations

from pathlib import Path

from engine_helpers import ev, load, run

from orchestrator.engine import resolve_identity
from orchestrator.engine.identity import alias_keys

RULES = """
- id: cart-wait
  trigger: {event: cart.item_added}
  wait: {for: 30m}
  action:
    type: chat.note
    category: service
    params: {total: "${cart.total}", viewed: "${recent.viewed}", n: "${counters.failed}"}
- id: probe
  trigger: {event: probe}
  action:
    type: chat.note
    category: service
    params: {total: "${cart.total}", n: "${counters.failed}", events: "${len(recent.events)}"}
"""
HEADER = "counters:\n  failed: {on: chat.intent_failed}\n"


def test_anonymous_events_get_an_anon_profile(tmp_path: Path) -> None:
    outcome = run(load(tmp_path, RULES, header=HEADER), [ev("probe", 0, cid=None, anon="a1")])
    assert outcome.of("probe")[0].customer_id == "anon:a1"


def test_identify_merges_cart_counters_recent_and_pending_waits(tmp_path: Path) -> None:
    events = [
        ev("product.viewed", 0, cid=None, anon="a1", sku="X"),
        ev("chat.intent_failed", 30, cid=None, anon="a1"),
        ev("cart.item_added", 60, cid=None, anon="a1", sku="X", qty=2, price=10),
        ev("chat.intent_failed", 90, cid="c1"),
        ev("identify", 120, cid="c1", anon="a1"),
        ev("probe", 180, cid="c1"),
    ]
    outcome = run(load(tmp_path, RULES, header=HEADER), events, until="2h")
    probe = outcome.of("probe")[0]
    assert probe.customer_id == "c1"
    assert probe.params["total"] == 20
    assert probe.params["n"] == 2
    assert probe.params["events"] == 6
    (waited,) = outcome.of("cart-wait")
    assert waited.customer_id == "c1"
    assert waited.decided_at == "2026-05-04T09:31:00Z"
    assert waited.params == {"total": 20, "viewed": ["X"], "n": 2}


def test_later_anonymous_events_resolve_to_the_customer(tmp_path: Path) -> None:
    events = [
        ev("identify", 0, cid="c1", anon="a1"),
        ev("cart.item_added", 60, cid=None, anon="a1", sku="X", price=7),
        ev("probe", 120, cid=None, anon="a1"),
    ]
    outcome = run(load(tmp_path, RULES, header=HEADER), events)
    probe = outcome.of("probe")[0]
    assert (probe.customer_id, probe.params["total"]) == ("c1", 7)
    assert "anon:a1" not in outcome.replay.states


def test_identifiers_only_start_a_profile_from_the_first_name(tmp_path: Path) -> None:
    """`anon:<name>:<value>` of the first identifier in name order (email_sha256 < loyalty_card)."""
    event = ev("probe", 0, cid=None, ids={"loyalty_card": "L9", "email_sha256": "abc"})
    outcome = run(load(tmp_path, RULES, header=HEADER), [event])
    assert outcome.of("probe")[0].customer_id == "anon:email_sha256:abc"


def test_known_identifier_aliases_resolve(tmp_path: Path) -> None:
    events = [
        ev("identify", 0, cid="c1", ids={"loyalty_card": "L9"}),
        ev("cart.item_added", 60, cid=None, ids={"device_id": "d1", "loyalty_card": "L9"}, sku="A", price=3),
        ev("probe", 120, cid=None, ids={"loyalty_card": "L9"}),
    ]
    outcome = run(load(tmp_path, RULES, header=HEADER), events)
    probe = outcome.of("probe")[0]
    assert (probe.customer_id, probe.params["total"]) == ("c1", 3)


def test_identifiers_only_profile_merges_on_identify(tmp_path: Path) -> None:
    events = [
        ev("cart.item_added", 0, cid=None, ids={"device_id": "d1"}, sku="A", price=3),
        ev("identify", 60, cid="c1", ids={"device_id": "d1"}),
        ev("probe", 120, cid="c1"),
    ]
    outcome = run(load(tmp_path, RULES, header=HEADER), events)
    assert outcome.of("probe")[0].params["total"] == 3


def test_non_identify_event_with_both_ids_does_not_link() -> None:
    """Only `identify` merges (SPEC §1); another event carrying both ids belongs to the customer."""
    resolution = resolve_identity(ev("page.viewed", 0, cid="c1", anon="a1"), {}.get)
    assert resolution.profile_id == "c1"
    assert resolution.links == [] and resolution.merge_from == []


def test_alias_keys_order() -> None:
    event = ev("page.viewed", 0, cid=None, anon="a", ids={"z": "1", "b": "2"})
    assert alias_keys(event) == ["anon:a", "anon:b:2", "anon:z:1"]
