"""SPEC §5: variants, goals with last-touch conversion, and the KPI rows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from engine_helpers import at, ev, load, run
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.engine import hashing

WELCOME = """
- id: welcome
  trigger: {event: newsletter.signup}
  holdout: HOLDOUT
  variants:
    - {id: plain, weight: 1}
    - {id: discount, weight: 1, params: {template: welcome_discount, discount: "${len(cart.items) + 10}"}}
  goal: {event: order.completed, channel: [web, mobile], within: 3d}
  action: {type: email.send, params: {template: welcome, keep: yes}}
"""
GOAL = """
- id: nudge
  trigger: {event: go}
  goal: {event: order.completed, within: 1h}
  action: {type: push.send, params: {}}
"""


def _order(when: str | float, channel: str = "web", cid: str = "c1"):
    return ev("order.completed", when, channel=channel, cid=cid, order_id="o", total=1)


def test_variant_params_merge_over_action_params(tmp_path: Path) -> None:
    rules = load(tmp_path, WELCOME.replace("HOLDOUT", "0%"))
    outcome = run(rules, [ev("newsletter.signup", i, cid=f"c{i}") for i in range(40)])
    by_variant = {a.variant: a.params for a in outcome.actions}
    assert by_variant["plain"] == {"template": "welcome", "keep": "yes"}
    assert by_variant["discount"] == {"template": "welcome_discount", "keep": "yes", "discount": 10}


def test_variant_is_null_without_variants_or_when_held_out(tmp_path: Path) -> None:
    rules = load(tmp_path, WELCOME.replace("HOLDOUT", "50%") + GOAL)
    events = [ev("newsletter.signup", i, cid=f"c{i}") for i in range(40)] + [ev("go", 100)]
    outcome = run(rules, events)
    assert all(a.variant is None for a in outcome.of("nudge"))
    for action in outcome.of("welcome"):
        assert (action.variant is None) == (action.status == "held_out")
    assert {a.status for a in outcome.of("welcome")} == {"emitted", "held_out"}


def test_last_touch_converts_the_most_recent_action_once(tmp_path: Path) -> None:
    rules = load(tmp_path, GOAL)
    outcome = run(rules, [ev("go", 0, eid="t1"), ev("go", 60, eid="t2"), _order(120), _order(180)])
    latest = outcome.actions[-1].action_id
    assert [(c.rule_id, c.action_id, c.group) for c in outcome.conversions] == [("nudge", latest, "default")]


def test_one_goal_event_converts_each_rule_independently(tmp_path: Path) -> None:
    rules = load(tmp_path, GOAL + GOAL.replace("nudge", "other"))
    outcome = run(rules, [ev("go", 0), _order(60)])
    assert sorted(c.rule_id for c in outcome.conversions) == ["nudge", "other"]


def test_goal_channel_filter(tmp_path: Path) -> None:
    rules = load(tmp_path, WELCOME.replace("HOLDOUT", "0%"))
    outcome = run(
        rules, [ev("newsletter.signup", 0), _order(60, channel="store"), _order(120, channel="mobile")]
    )
    assert [c.at for c in outcome.conversions] == [at(120)]


def test_window_bounds_are_inclusive(tmp_path: Path) -> None:
    """decided_at ≤ occurred_at ≤ decided_at + within: both ends convert, one second later does not."""
    rules = load(tmp_path, GOAL)
    assert len(run(rules, [ev("go", 0), _order(0)]).conversions) == 1
    assert len(run(rules, [ev("go", 0), _order(3600)]).conversions) == 1
    assert run(rules, [ev("go", 0), _order(3601)]).conversions == []


def test_goal_before_decided_at_converts_nothing(tmp_path: Path) -> None:
    """A late goal event (occurred before the action, applied after) converts nothing."""
    rules = load(tmp_path, GOAL)
    outcome = run(rules, [ev("page.viewed", 600, cid="other"), ev("go", 300), _order(100)])
    assert outcome.actions and outcome.conversions == []


def test_goal_event_that_also_triggers_does_not_convert_its_own_action(tmp_path: Path) -> None:
    """Goals are matched before triggers are evaluated."""
    rule = GOAL.replace("event: go", "event: order.completed")
    outcome = run(load(tmp_path, rule), [_order(0)])
    assert len(outcome.actions) == 1 and outcome.conversions == []


def test_held_out_actions_convert_into_holdout(tmp_path: Path) -> None:
    rules = load(tmp_path, GOAL.replace("goal:", "holdout: 100%\n  goal:"))
    outcome = run(rules, [ev("go", 0), _order(60)])
    assert [a.status for a in outcome.actions] == ["held_out"]
    assert [c.group for c in outcome.conversions] == ["holdout"]
    assert outcome.kpis() == [
        {
            "rule_id": "nudge",
            "group": "default",
            "actions": 0,
            "conversions": 0,
            "rate": None,
            "uplift": None,
        },
        {"rule_id": "nudge", "group": "holdout", "actions": 1, "conversions": 1, "rate": 1.0, "uplift": None},
    ]


def test_deferred_actions_count_from_emission(tmp_path: Path) -> None:
    """Deferred from 21:00 to 08:00 Paris (06:00Z): an order at 23:00Z converts nothing; at 06:30Z it does."""
    header = 'defaults:\n  timezone: Europe/Paris\n  quiet_hours: {start: "21:00", end: "08:00"}'
    rules = load(tmp_path, GOAL, header=header)
    early = run(rules, [ev("go", "12h"), _order("14h")], until="2d")
    assert [a.decided_at for a in early.actions] == ["2026-05-05T06:00:00Z"]
    assert early.conversions == []
    late = run(rules, [ev("go", "12h"), _order("1290m")], until="2d")
    assert len(late.conversions) == 1


def test_merge_carries_the_latest_action(tmp_path: Path) -> None:
    rules = load(tmp_path, GOAL)
    events = [ev("go", 0, cid=None, anon="a1"), ev("identify", 60, anon="a1"), _order(120)]
    outcome = run(rules, events)
    assert [(c.customer_id, c.action_id) for c in outcome.conversions] == [
        ("c1", outcome.actions[0].action_id)
    ]


def test_merge_keeps_the_more_recent_action_per_rule(tmp_path: Path) -> None:
    rules = load(tmp_path, GOAL)
    events = [
        ev("go", 0, cid="c1", eid="customer-go"),
        ev("go", 60, cid=None, anon="a1", eid="anon-go"),
        ev("identify", 120, anon="a1"),
        _order(180),
    ]
    outcome = run(rules, events)
    anon_action = next(a for a in outcome.actions if a.trigger_event_id == "anon-go")
    assert [c.action_id for c in outcome.conversions] == [anon_action.action_id]


def test_kpi_rows_shape_order_rate_and_uplift(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        WELCOME.replace("HOLDOUT", "30%")
        + "- id: no-goal\n  trigger: {event: go}\n  action: {type: push.send, params: {}}\n"
        + GOAL.replace("nudge", "never"),
    )
    customers = [f"c{i}" for i in range(300)]
    events = [ev("newsletter.signup", 0, cid=c) for c in customers] + [ev("go", 10)]
    events += [_order(20 + i, cid=c) for i, c in enumerate(customers) if i % 3 == 0]
    rows = run(rules, events).kpis()
    assert [(r["rule_id"], r["group"]) for r in rows] == [
        ("welcome", "plain"),
        ("welcome", "discount"),
        ("welcome", "holdout"),
        ("no-goal", "default"),
        ("never", "default"),
    ]
    assert all(list(r) == ["rule_id", "group", "actions", "conversions", "rate", "uplift"] for r in rows)
    welcome = rows[:3]
    assert sum(r["actions"] for r in welcome) == 300
    holdout_rate = welcome[2]["conversions"] / welcome[2]["actions"]
    for row in welcome[:2]:
        assert row["rate"] == row["conversions"] / row["actions"]
        assert row["uplift"] == row["rate"] - holdout_rate
    assert welcome[2]["uplift"] is None
    no_goal = {"rule_id": "no-goal", "group": "default", "actions": 1, "conversions": None}
    assert rows[3] == {**no_goal, "rate": None, "uplift": None}
    assert rows[4] == {**no_goal, "rule_id": "never", "conversions": 0, "rate": 0.0, "uplift": None}


@settings(max_examples=15, deadline=None)
@given(
    weights=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=4),
    rule_id=st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True),
)
def test_variant_assignment_is_stable_and_follows_weights(weights: list[int], rule_id: str) -> None:
    """Over 10,000 customers each share is within 0.02 of its weight's share (≥ 4 σ for n = 10,000)."""
    customers = [f"cust-{i}" for i in range(10_000)]
    chosen = [hashing.choose_variant(rule_id, c, weights) for c in customers]
    assert chosen[:200] == [hashing.choose_variant(rule_id, c, weights) for c in customers[:200]]
    counts = Counter(chosen)
    total = sum(weights)
    for index, weight in enumerate(weights):
        assert abs(counts[index] / len(customers) - weight / total) < 0.02


def test_variant_and_holdout_draws_are_independent() -> None:
    """Among held-in customers the variant split stays even (the two hashes use separate salts)."""
    customers = [f"cust-{i}" for i in range(10_000)]
    held_in = [c for c in customers if not hashing.in_holdout("r", c, 0.5)]
    share = sum(hashing.choose_variant("r", c, [1, 1]) == 0 for c in held_in) / len(held_in)
    assert abs(share - 0.5) < 0.03
