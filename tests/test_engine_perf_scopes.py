"""Smaller scopes and pre-split triggers decide exactly as the full ones would.

`len(cart.items)` alone reads the cart's own list, an `event` read only through `properties`
holds nothing else, and triggers are split per channel once: each test pins one of them.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from engine_helpers import ev, load, run

from orchestrator.engine import Engine
from orchestrator.engine.scope import (
    CART_COUNT,
    CART_ITEMS,
    EVENT_FIELDS,
    build_scope,
    rule_roots,
    scope_plan,
)
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
    full = build_scope(scope_plan(full_roots), "c1", state, event, 0.0, (), utc)
    small_plan = scope_plan(frozenset({"cart", CART_COUNT, "event"}))
    small = build_scope(small_plan, "c1", state, event, 0.0, (), utc)
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
    by_channel = Engine(rules)._effects["go"][2]
    assert by_channel is not None
    assert [rule.id for rule, _, _ in by_channel["web"]] == ["web-only", "any"]
    assert [rule.id for rule, _, _ in by_channel.get("kiosk", by_channel.others)] == ["any"]
    outcome = run(rules, [ev("go", 0, channel="kiosk"), ev("go", "1m", channel="web")])
    assert [a.rule_id for a in outcome.actions] == ["any", "web-only", "any"]


def test_a_rule_with_its_predecessors_condition_reuses_the_answer(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        """
        - id: first
          trigger: {event: go}
          condition: "event.properties.n >= 2"
          action: {type: chat.note, category: service}
        - id: second
          trigger: {event: go}
          condition: "event.properties.n >= 2"
          action: {type: chat.note, category: service}
        - id: third
          trigger: {event: go}
          condition: "event.properties.n >= 3"
          action: {type: chat.note, category: service}
        - id: fourth
          trigger: {event: go}
          condition: "event.properties.n >= 2"
          action: {type: chat.note, category: service}
        """,
    )
    by_channel = Engine(rules)._effects["go"][2]
    assert by_channel is not None
    assert [same for _, _, same in by_channel.others] == [False, True, False, False]
    outcome = run(rules, [ev("go", 0, n=1), ev("go", "1m", n=2), ev("go", "2m", n=3)])
    decided = ["first", "second", "fourth", "first", "second", "third", "fourth"]
    assert [a.rule_id for a in outcome.actions] == decided
