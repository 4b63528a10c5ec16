"""Folding an anonymous profile into a known customer (SPEC §1 `identify`).

The customer's own facts win where both have one (traits, consent, location); lists and counts
combine; pending waits and deferred actions move over unless the customer already has one of
the same rule; for each rule the more recent last action wins (SPEC §5: merges carry them).
"""

from __future__ import annotations

from orchestrator.engine.state import (
    MAX_RECENT_VIEWED,
    MAX_SEEN_EVENT_IDS,
    CartItem,
    CustomerState,
    recent_events,
    set_recent,
)


def _merge_cart(into: list[CartItem], other: list[CartItem]) -> list[CartItem]:
    merged = {item.sku: CartItem(item.sku, item.qty, item.price) for item in other}
    for item in into:
        if item.sku in merged:
            merged[item.sku].qty += item.qty
            merged[item.sku].price = item.price
        else:
            merged[item.sku] = CartItem(item.sku, item.qty, item.price)
    return list(merged.values())


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def merge_states(into: CustomerState, other: CustomerState) -> CustomerState:
    counters = dict(other.counters)
    for name, value in into.counters.items():
        counters[name] = counters.get(name, 0) + value
    last_seen = dict(other.last_seen)
    for channel, at in into.last_seen.items():
        last_seen[channel] = max(at, last_seen.get(channel, at))
    rule_last_at = dict(other.rule_last_at)
    for rule_id, at in into.rule_last_at.items():
        rule_last_at[rule_id] = max(at, rule_last_at.get(rule_id, at))
    last_actions = dict(other.last_actions)
    for rule_id, action in into.last_actions.items():
        theirs = last_actions.get(rule_id)
        if theirs is None or action.at >= theirs.at:
            last_actions[rule_id] = action
    pending_rules = {w.rule_id for w in into.waits}
    deferred_rules = {d.rule_id for d in into.deferred}
    seen = list(dict.fromkeys([*other.seen, *into.seen]))[-MAX_SEEN_EVENT_IDS:]
    merged = CustomerState(
        traits={**other.traits, **into.traits},
        consent={**other.consent, **into.consent},
        cart=_merge_cart(into.cart, other.cart),
        orders_count=into.orders_count + other.orders_count,
        orders_total=into.orders_total + other.orders_total,
        orders_last_at=_latest(into.orders_last_at, other.orders_last_at),
        viewed=[*other.viewed, *into.viewed][-MAX_RECENT_VIEWED:],
        last_seen=last_seen,
        channels=list(dict.fromkeys([*into.channels, *other.channels])),
        location=into.location if into.location is not None else other.location,
        context_timezone=into.context_timezone or other.context_timezone,
        counters=counters,
        waits=[*into.waits, *(w for w in other.waits if w.rule_id not in pending_rules)],
        deferred=[*into.deferred, *(d for d in other.deferred if d.rule_id not in deferred_rules)],
        emissions=sorted([*other.emissions, *into.emissions], key=lambda e: e.at),
        rule_last_at=rule_last_at,
        last_actions=last_actions,
        seen=seen,
        aliases=list(dict.fromkeys([*into.aliases, *other.aliases])),
        newest_at=_latest(into.newest_at, other.newest_at),
        clock=_latest(into.clock, other.clock),
    )
    set_recent(merged, sorted([*recent_events(other), *recent_events(into)], key=lambda e: e[2]))
    return merged
