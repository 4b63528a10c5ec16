"""Smaller scopes and pre-split triggers decide exactly as the full ones would.

`len(cart.items)` alone reads the cart's own list, an `event` read only through `properties`
holds nothing else, and triggers are split per channel once: each test pins one of them.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from engine_helpers import ev, load, run

from orchestrator.engine import Engine
from orchestrator.engine.scope import CART_COUNT, CART_ITEMS, EVENT_FIELDS, build_scope, rule_roots
from orchestrator.engine.state import CartItem, CustomerState
from orchestrator.rules.expr import compile_expression


def test_lengths_are_the_paths_read_only_through_len() -> None:
    assert compile_expression("len(cart.items) > 0").lengths == {("cart", "items")}
    assert compile_expression("len(cart.items) + 1 > 2 and cart.total > 0").lengths == {("cart", "items")}
    assert not compile_expression("len(cart.items) > 0 and cart.items == null").lengths
    assert not compile_expression("contains(cart.items, 'a')").lengths


def test_scope_markers_for_counted_items_and_event_fields(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        """
        - id: counted
          trigger: {event: go}
          condition: "event.properties.n > 0"
          wait: {for: 10m, recheck: "len(cart.items) > 0"}
          action: {type: chat.note, category: service, params: {total: "${cart.total}"}}
        - id: typed
          trigger: {event: go}
          condition: "event.type == 'go' and len(cart) > 1"
          action: {type: chat.note, category: service}
        """,
    )
    counted, typed = rules.rules
    assert CART_COUNT in rule_roots(counted, at_trigger=False)
    assert not {CART_ITEMS, EVENT_FIELDS} & rule_roots(counted, at_trigger=False)
    assert EVENT_FIELDS not in rule_roots(counted, at_trigger=True)
    assert {CART_ITEMS, EVENT_FIELDS} <= rule_roots(typed, at_trigger=True)


def test_counted_and_properties_only_scopes_read_as_the_full_ones() -> None:
    state = CustomerState(cart=[CartItem("a", 2.0, 9.99), CartItem("b", 1.0, 0.1)])
    event = ev("go", n=3)
    utc = ZoneInfo("UTC")
    full_roots = frozenset({"cart", CART_ITEMS, "event", EVENT_FIELDS})
    full = build_scope(full_roots, "c1", state, event, 0.0, (), utc)
    small = build_scope(frozenset({"cart", CART_COUNT, "event"}), "c1", state, event, 0.0, (), utc)
    sources = ("len(cart.items) > 1", "len(cart.items) == 2", "cart.total > 20", "event.properties.n == 3")
    for source in sources:
        expression = compile_expression(source)
        assert expression.evaluate(small) == expression.evaluate(full), source
    assert small["event"] == {"properties": full["event"]["properties"]}


def test_a_channel_no_rule_names_triggers_only_the_rules_without_channels(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        """
        - id: web-only
          trigger: {event: go, channel: [web]}
          action: {type: chat.note, category: service}
        - id: any
          trigger: {event: go}
          action: {type: chat.note, category: service}
        """,
    )
    by_channel = Engine(rules)._triggers["go"]
    assert [rule.id for rule, _ in by_channel["web"]] == ["web-only", "any"]
    assert [rule.id for rule, _ in by_channel["kiosk"]] == ["any"]
    outcome = run(rules, [ev("go", 0, channel="kiosk"), ev("go", "1m", channel="web")])
    assert [a.rule_id for a in outcome.actions] == ["any", "web-only", "any"]
