"""SPEC §3 waits (`cancel_on`, `recheck`, `reentry`) and the clock rule."""

from __future__ import annotations

from pathlib import Path

from engine_helpers import at, ev, load, run

from orchestrator.engine import Engine

WAIT = """
- id: cart
  trigger: {event: cart.item_added}
  wait:
    for: 30m
    cancel_on: [order.completed, cart.cleared]
    recheck: "len(cart.items) > 0"
  reentry: REENTRY
  action:
    type: chat.note
    category: service
    params: {total: "${cart.total}", trigger: "${event.properties.sku}", now: "${now}"}
"""


def rules(tmp_path: Path, reentry: str = "restart"):
    return load(tmp_path, WAIT.replace("REENTRY", reentry))


def test_wait_fires_at_its_end_time_judged_then(tmp_path: Path) -> None:
    outcome = run(rules(tmp_path), [ev("cart.item_added", 0, sku="A", price=5)], until="2h")
    (action,) = outcome.actions
    assert action.decided_at == "2026-05-04T09:30:00Z"
    assert action.params == {"total": 5, "trigger": "A", "now": at("30m")}


def test_wait_does_not_fire_before_its_end(tmp_path: Path) -> None:
    outcome = run(rules(tmp_path), [ev("cart.item_added", 0, sku="A", price=5)], until="29m")
    assert outcome.actions == []


def test_cancel_on_cancels_the_pending_wait(tmp_path: Path) -> None:
    events = [ev("cart.item_added", 0, sku="A", price=5), ev("order.completed", 60, order_id="o", total=5)]
    assert run(rules(tmp_path), events, until="2h").actions == []


def test_recheck_false_suppresses(tmp_path: Path) -> None:
    events = [ev("cart.item_added", 0, sku="A", price=5), ev("cart.item_removed", 60, sku="A")]
    outcome = run(rules(tmp_path), events, until="2h")
    assert outcome.actions == []
    assert [(s.rule_id, s.reason) for s in outcome.suppressed] == [("cart", "recheck")]


def test_recheck_true_emits_with_state_at_end(tmp_path: Path) -> None:
    events = [ev("cart.item_added", 0, sku="A", price=5), ev("product.viewed", 60, sku="B")]
    outcome = run(rules(tmp_path), events, until="2h")
    assert [a.params["total"] for a in outcome.actions] == [5]


def test_reentry_restart_resets_the_pending_wait(tmp_path: Path) -> None:
    events = [ev("cart.item_added", 0, sku="A", price=5), ev("cart.item_added", "20m", sku="B", price=1)]
    (action,) = run(rules(tmp_path, "restart"), events, until="2h").actions
    assert action.decided_at == "2026-05-04T09:50:00Z"
    assert (action.params["trigger"], action.trigger_event_id) == ("B", events[1].event_id)


def test_reentry_ignore_keeps_the_first(tmp_path: Path) -> None:
    events = [ev("cart.item_added", 0, sku="A", price=5), ev("cart.item_added", "20m", sku="B", price=1)]
    (action,) = run(rules(tmp_path, "ignore"), events, until="2h").actions
    assert action.decided_at == "2026-05-04T09:30:00Z"
    assert (action.params["trigger"], action.params["total"]) == ("A", 6)


CLOCK = """
- id: short
  trigger: {event: go}
  wait: {for: 10m}
  action: {type: chat.note, category: service, params: {}}
- id: long
  trigger: {event: go}
  wait: {for: 20m}
  action: {type: chat.note, category: service, params: {}}
- id: seen
  trigger: {event: late}
  action: {type: chat.note, category: service, params: {}}
"""


def test_waits_fire_in_end_time_order_before_the_event_that_moved_the_clock(tmp_path: Path) -> None:
    """Waits of two customers ending at 09:20 and 09:10/09:30 fire in end-time order, then the event."""
    events = [
        ev("go", 0, cid="a"),
        ev("go", "10m", cid="b"),
        ev("late", "25m", cid="a"),
    ]
    outcome = run(load(tmp_path, CLOCK), events)
    assert outcome.decided() == [
        ("short", "a", "2026-05-04T09:10:00Z"),
        ("long", "a", "2026-05-04T09:20:00Z"),
        ("short", "b", "2026-05-04T09:20:00Z"),
        ("seen", "a", "2026-05-04T09:25:00Z"),
    ]


def test_wait_ending_exactly_at_the_new_clock_fires_before_the_event(tmp_path: Path) -> None:
    """(t1, t2] includes t2: a wait ending at the event's time fires first."""
    outcome = run(load(tmp_path, CLOCK), [ev("go", 0), ev("late", "10m")])
    assert [a.rule_id for a in outcome.actions] == ["short", "seen"]


def test_clock_never_moves_back_and_late_waits_fire_at_once(tmp_path: Path) -> None:
    """A late event (occurred before the clock) starts a wait that already ended: it fires at the clock."""
    events = [ev("page.viewed", "1h", cid="other"), ev("go", 0, cid="a", eid="late-go")]
    outcome = run(load(tmp_path, CLOCK), events)
    assert outcome.decided() == [
        ("short", "a", "2026-05-04T10:00:00Z"),
        ("long", "a", "2026-05-04T10:00:00Z"),
    ]
    assert outcome.replay.clock == at("1h")


def test_late_event_decides_at_the_clock(tmp_path: Path) -> None:
    outcome = run(load(tmp_path, CLOCK), [ev("page.viewed", "1h", cid="other"), ev("late", 0, cid="a")])
    assert outcome.decided() == [("seen", "a", "2026-05-04T10:00:00Z")]


def test_engine_now_never_moves_back_for_a_profile(tmp_path: Path) -> None:
    engine = Engine(load(tmp_path, CLOCK))
    step = engine.apply("a", None, [ev("late", "1h")], at("1h"))
    step = engine.apply("a", step.state, [ev("late", 0)], at(0))
    assert [a.decided_at for a in step.actions] == ["2026-05-04T10:00:00Z"]


def test_next_due_and_advance(tmp_path: Path) -> None:
    engine = Engine(load(tmp_path, CLOCK))
    step = engine.apply("a", None, [ev("go", 0)], at(0))
    assert engine.next_due(step.state) == at("10m")
    fired = engine.advance("a", step.state, at("15m"))
    assert [a.rule_id for a in fired.actions] == ["short"]
    assert engine.next_due(fired.state) == at("20m")
