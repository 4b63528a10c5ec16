"""Replay properties on generated multi-customer streams: deterministic, resumable, order-insensitive
across customers.

Streams are drawn on a one-minute grid so that ties (several customers at the same instant) are
common; the replay clock is global, so only events with equal timestamps are ever reordered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from engine_helpers import BASE, ev, load
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.engine import Engine
from orchestrator.replay import Replay
from orchestrator.rules.model import RuleSet
from schemas import Touchpoint

RULES = """
- id: abandoned-cart
  priority: 50
  trigger: {event: cart.item_added, channel: [web, mobile]}
  condition: "cart.total >= 20"
  wait: {for: 30m, cancel_on: [order.completed, cart.cleared], recheck: "len(cart.items) > 0"}
  cooldown: 2h
  holdout: 20%
  goal: {event: order.completed, within: 1d}
  action: {type: email.send, params: {total: "${cart.total}"}}
- id: browse
  trigger: {event: product.viewed}
  reentry: ignore
  wait: {for: 45m}
  variants:
    - {id: a, weight: 2}
    - {id: b, weight: 1, params: {tone: warm}}
  goal: {event: cart.item_added, within: 2h}
  action: {type: push.send, params: {sku: "${event.properties.sku}"}}
- id: nearby
  priority: 40
  trigger: {event: geofence.entered}
  quiet_hours: drop
  action: {type: push.send, params: {store: "${event.properties.geofence}"}}
- id: handoff
  priority: 100
  trigger: {event: chat.message, channel: [chat]}
  condition: "counters.failed >= 2 or event.properties.sentiment <= -0.5"
  cooldown: 15m
  action: {type: chat.handoff, category: service, context: true, params: {queue: tier1}}
"""
HEADER = """
defaults:
  timezone: Europe/Paris
  quiet_hours: {start: "21:00", end: "08:00"}
  profile_ttl: 3d
contact_policy:
  max_per_day: 2
  channels:
    email: {max_per_day: 1}
geofences:
  - {id: opera, lat: 48.8719, lon: 2.3316, radius_m: 300}
counters:
  failed: {on: chat.intent_failed, reset_on: [chat.resolved]}
"""
CUSTOMERS = ("c0", "c1", "c2", "c3")
KINDS = (
    "add", "add", "view", "view", "remove", "clear", "order", "fail", "resolve", "chat", "near", "far",
    "opt-out", "identify", "anon", "erase", "order", "add", "view",
)  # fmt: skip
GRID_S = 7 * 60  # a 7-minute grid drifts across the 30/45-minute waits and the quiet-hours edges


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return load(tmp_path_factory.mktemp("rules"), RULES, header=HEADER)


def make_event(kind: str, customer: str, tick: int, serial: int, sku: int) -> Touchpoint:
    """One touchpoint of `kind` for `customer` (each customer has its own anonymous id)."""
    when = tick * GRID_S - 5 * 3600  # from 06:00 Paris: quiet hours end two hours in
    eid = f"{customer}-{serial}"
    anon = f"anon-{customer}"
    common: dict[str, Any] = {"eid": eid, "cid": customer}
    if kind == "add":
        return ev(
            "cart.item_added", when, channel="mobile", sku=f"S{sku}", qty=1 + sku % 2, price=15, **common
        )
    if kind == "view":
        return ev("product.viewed", when, sku=f"S{sku}", **common)
    if kind == "remove":
        return ev("cart.item_removed", when, sku=f"S{sku}", **common)
    if kind == "clear":
        return ev("cart.cleared", when, **common)
    if kind == "order":
        return ev("order.completed", when, order_id=eid, total=30, **common)
    if kind == "fail":
        return ev("chat.intent_failed", when, channel="chat", **common)
    if kind == "resolve":
        return ev("chat.resolved", when, channel="chat", **common)
    if kind == "chat":
        return ev("chat.message", when, channel="chat", sentiment=(sku - 2) / 2, **common)
    if kind in ("near", "far"):
        geo = {"lat": 48.8720, "lon": 2.3317} if kind == "near" else {"lat": 48.0, "lon": 2.0}
        return ev("location.updated", when, channel="mobile", context={"geo": geo}, **common)
    if kind == "opt-out":
        return ev("consent.updated", when, properties={"channel": "email", "granted": False}, **common)
    if kind == "identify":
        return ev("identify", when, anon=anon, traits={"tier": "gold"}, **common)
    if kind == "anon":
        return ev("cart.item_added", when, eid=eid, cid=None, anon=anon, sku=f"S{sku}", price=25)
    return ev("privacy.erasure_requested", when, **common)


step_spec = st.tuples(st.sampled_from(KINDS), st.integers(0, 3), st.integers(0, 4))


@st.composite
def streams(draw: st.DrawFn) -> dict[str, list[Touchpoint]]:
    """Per customer: its own events in order, on the shared grid (ticks non-decreasing)."""
    out: dict[str, list[Touchpoint]] = {}
    for customer in draw(st.lists(st.sampled_from(CUSTOMERS), min_size=1, max_size=4, unique=True)):
        specs = draw(st.lists(step_spec, min_size=1, max_size=18))
        tick, events = 0, []
        for serial, (kind, gap, sku) in enumerate(specs):
            tick += gap
            events.append(make_event(kind, customer, tick, serial, sku))
        out[customer] = events
    return out


def merged(per_customer: dict[str, list[Touchpoint]], order: list[str]) -> list[Touchpoint]:
    """One global stream, non-decreasing in time; ties broken by the customer order `order`."""
    rank = {c: i for i, c in enumerate(order)}
    tagged = [(e.ts, rank[c], i, e) for c, events in per_customer.items() for i, e in enumerate(events)]
    return [e for *_, e in sorted(tagged, key=lambda t: t[:3])]


@st.composite
def global_streams(draw: st.DrawFn) -> list[Touchpoint]:
    """A merged stream plus what real inputs hold: re-sent events (same id, applied once), late events
    (earlier than the clock) and identifies that link one customer's anonymous id to another."""
    events = merged(draw(streams()), list(CUSTOMERS))
    for index in sorted(draw(st.lists(st.integers(0, len(events) - 1), max_size=3)), reverse=True):
        events.insert(index + 1, events[index])
    extras = st.tuples(st.integers(0, len(events)), st.sampled_from(KINDS), st.sampled_from(CUSTOMERS))
    for serial, (index, kind, customer) in enumerate(draw(st.lists(extras, max_size=3))):
        events.insert(index, make_event(kind, customer, draw(st.integers(0, 10)), 1000 + serial, serial))
    for serial, (index, customer, other) in enumerate(
        draw(
            st.lists(
                st.tuples(
                    st.integers(0, len(events)), st.sampled_from(CUSTOMERS), st.sampled_from(CUSTOMERS)
                ),
                max_size=2,
            )
        )
    ):
        when = events[index - 1].occurred_at.isoformat() if index else 0
        events.insert(index, ev("identify", when, eid=f"link-{serial}", cid=customer, anon=f"anon-{other}"))
    return events


UNTIL = BASE.timestamp() - 5 * 3600 + 200 * GRID_S


def outputs(steps: Iterator[Any]) -> list[tuple[Any, ...]]:
    """Everything observable: actions, suppressions, deferrals and conversions, in order."""
    out: list[tuple[Any, ...]] = []
    for step in steps:
        out += [("action", a.to_json()) for a in step.actions]
        out += [("suppressed", s) for s in step.suppressed]
        out += [("deferred", d) for d in step.deferred]
        out += [("conversion", c) for c in step.conversions]
    return out


def full_run(rules: RuleSet, events: list[Touchpoint]) -> tuple[list[tuple[Any, ...]], Replay]:
    replay = Replay(Engine(rules))
    return outputs(replay.run(events, until=UNTIL)), replay


@settings(max_examples=60, deadline=None)
@given(events=global_streams())
def test_replaying_twice_gives_identical_output(rules: RuleSet, events: list[Touchpoint]) -> None:
    first, replay_a = full_run(rules, events)
    again, replay_b = full_run(rules, events)
    assert first == again
    assert replay_a.kpis.counts() == replay_b.kpis.counts()


@settings(max_examples=60, deadline=None)
@given(events=global_streams(), data=st.data())
def test_split_and_resume_from_snapshot_gives_identical_output(
    rules: RuleSet, events: list[Touchpoint], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(events)), label="split")
    whole, whole_replay = full_run(rules, events)
    first = Replay(Engine(rules))
    head = outputs(first.run(events[:split]))
    resumed = Replay.resume(Engine(rules), first.snapshot())
    tail = outputs(resumed.run(events[split:], until=UNTIL))
    assert head + tail == whole
    assert resumed.kpis.counts() == whole_replay.kpis.counts()
    assert resumed.snapshot() == whole_replay.snapshot()


def per_customer_actions(rules: RuleSet, events: list[Touchpoint]) -> dict[str, list[str]]:
    actions: dict[str, list[str]] = defaultdict(list)
    for step in Replay(Engine(rules)).run(events, until=UNTIL):
        for action in step.actions:
            actions[action.customer_id].append(action.to_json())
    return dict(actions)


@settings(max_examples=60, deadline=None)
@given(per_customer=streams(), order=st.permutations(CUSTOMERS))
def test_interleaving_customers_differently_changes_no_ones_actions(
    rules: RuleSet, per_customer: dict[str, list[Touchpoint]], order: list[str]
) -> None:
    baseline = per_customer_actions(rules, merged(per_customer, list(CUSTOMERS)))
    assert per_customer_actions(rules, merged(per_customer, list(order))) == baseline
