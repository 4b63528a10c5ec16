"""The engine's shortcuts decide exactly as the general path would.

Scopes leave out what no rule reads (`recent.events`, `cart.items`), conditions made only of
non-raising comparisons are tested without the guarding frame, counters are applied from a per-type
plan, and the replay driver indexes deadlines lazily: each test pins one of them to the behaviour it
replaces.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from engine_helpers import at, ev, load, run

from orchestrator.engine.reducers import cart_total, cart_view, counter_plan
from orchestrator.engine.scope import CART_ITEMS, RECENT_EVENTS, build_scope, rule_roots, scope_plan
from orchestrator.engine.state import CartItem, CustomerState
from orchestrator.rules.expr import _guarded_test, compile_expression
from orchestrator.rules.model import Counter


def test_paths_are_the_dotted_names_an_expression_reads() -> None:
    expression = compile_expression("len(recent.viewed) > 1 and cart.total >= 20 or now > 0")
    assert expression.paths == {("recent", "viewed"), ("cart", "total"), ("now",)}
    assert expression.roots == {"recent", "cart", "now"}


def test_scope_markers_follow_what_rules_read(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        """
        - id: totals
          trigger: {event: go}
          condition: "cart.total > 0 and len(recent.viewed) > 0"
          action: {type: chat.note, category: service, params: {total: "${cart.total}"}}
        - id: everything
          trigger: {event: go}
          condition: "len(recent.events) > 0"
          wait: {for: 10m, recheck: "len(cart.items) > 0"}
          action: {type: chat.note, category: service, params: {cart: "${cart}"}}
        """,
    )
    totals, everything = rules.rules
    assert not {RECENT_EVENTS, CART_ITEMS} & rule_roots(totals, at_trigger=True)
    assert {RECENT_EVENTS, CART_ITEMS} <= rule_roots(everything, at_trigger=True)
    assert CART_ITEMS in rule_roots(everything, at_trigger=False)
    assert RECENT_EVENTS not in rule_roots(everything, at_trigger=False)


def test_a_scope_without_items_has_the_same_total() -> None:
    state = CustomerState(cart=[CartItem("a", 2.0, 9.99), CartItem("b", 1.0, 0.1), CartItem("c", 3.0, 45.0)])
    assert cart_total(state) == cart_view(state)["total"]
    assert cart_total(CustomerState()) == cart_view(CustomerState())["total"] == 0
    event = ev("go")
    plan = scope_plan(frozenset({"cart", "recent"}))
    scope = build_scope(plan, "c1", state, event, 0.0, (), ZoneInfo("UTC"))
    assert scope["cart"] == {"total": cart_view(state)["total"]}
    assert scope["recent"] == {"viewed": []}


def test_safe_conditions_are_their_own_test_and_agree_with_the_guarded_one() -> None:
    safe = compile_expression("cart.total >= 20 and not len(cart.items) > 2 or event.type in ['a', 'b']")
    unsafe = compile_expression("'web' in channels_seen")
    assert safe.test.__name__ != "test"  # no guarding frame
    assert unsafe.test.__name__ == "test"
    scopes = [
        {},
        {"cart": None, "event": "x"},
        {"cart": {"total": 25, "items": [1, 2, 3]}, "event": {"type": "b"}},
        {"cart": {"total": 25, "items": "ab"}, "event": {"type": ["a"]}},
        {"cart": {"total": True, "items": {}}},
        {"cart": {"total": float("nan")}},
    ]
    guarded = _guarded_test(safe.evaluate)
    for scope in scopes:
        assert safe.test(scope) is guarded(scope)


def test_counter_plan_resets_before_counting() -> None:
    plan = counter_plan(
        (
            Counter("failed", frozenset({"chat.intent_failed", "chat.reset"}), frozenset({"chat.reset"})),
            Counter("chats", frozenset({"chat.message"})),
        )
    )
    assert plan == {
        "chat.intent_failed": (("failed", False),),
        "chat.reset": (("failed", True),),
        "chat.message": (("chats", False),),
    }


def test_replay_fires_a_wait_that_moved_earlier_and_one_re_indexed_later(tmp_path: Path) -> None:
    """The first event indexes the profile at its expiry; a wait moves it earlier; a restart later."""
    rules = load(
        tmp_path,
        """
        - id: nudge
          trigger: {event: go}
          wait: {for: 30m}
          reentry: restart
          action: {type: chat.note, category: service}
        """,
        header="defaults: {profile_ttl: 1d}",
    )
    outcome = run(rules, [ev("seen", 0), ev("go", "1m"), ev("go", "10m"), ev("other", "2h")], until="3h")
    assert [a.decided_at for a in outcome.actions] == ["2026-05-04T09:40:00Z"]
    assert outcome.replay.engine.next_due(outcome.replay.states["c1"]) == at("2h") + 86400
