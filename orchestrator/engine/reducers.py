"""How each touchpoint changes the built-in customer state (SPEC §1 "well-known event types").

Reducers know nothing about rules except the declared counters and geofences, which are part
of the state's shape. They return the geofences newly entered so the engine can derive
`geofence.entered` events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from orchestrator.engine.state import MAX_RECENT_VIEWED, CartItem, CustomerState, push_recent
from orchestrator.rules.model import Counter, Geofence
from schemas.touchpoint import EventContext

EARTH_RADIUS_M = 6_371_008.8

# The types with a reducer of their own below: the others (half of all events) skip the whole chain.
_REDUCED = frozenset(
    {
        "product.viewed",
        "cart.item_added",
        "location.updated",
        "order.completed",
        "cart.item_removed",
        "identify",
        "consent.updated",
        "cart.cleared",
    }
)

CounterPlan = dict[str, tuple[tuple[str, bool], ...]]  # event type → (counter, resets it?) per counter


def counter_plan(counters: tuple[Counter, ...]) -> CounterPlan:
    """What each event type does to the declared counters, in declaration order.

    Built once per rule set: an event then reads one dict entry instead of testing both sets of
    every counter. A type in a counter's `reset_on` resets it, even if it is also in `on`.
    """
    plan: dict[str, list[tuple[str, bool]]] = {}
    for counter in counters:
        for type_ in counter.on | counter.reset_on:
            plan.setdefault(type_, []).append((counter.name, type_ in counter.reset_on))
    return {type_: tuple(changes) for type_, changes in plan.items()}


def fences_containing(location: tuple[float, float] | None, fences: tuple[Geofence, ...]) -> list[str]:
    """The fences within their radius of `location`, by the haversine distance.

    The location's latitude terms are computed once and the fences' at load time (`Geofence`),
    with the very same operations as the one-pair formula, so the distances are bit-identical.
    """
    if location is None:
        return []
    lat, lon = location
    p1 = math.radians(lat)
    cos_p1 = math.cos(p1)
    inside: list[str] = []
    for fence in fences:
        dp, dl = fence.lat_rad - p1, math.radians(fence.lon - lon)
        h = math.sin(dp / 2) ** 2 + cos_p1 * fence.cos_lat * math.sin(dl / 2) ** 2
        if 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h))) <= fence.radius_m:
            inside.append(fence.id)
    return inside


def cart_view(state: CustomerState) -> dict[str, Any]:
    """`cart` as expressions and action contexts see it: the items and their total (0 when empty).

    One pass builds both: the cart is read for most events, so this is on the hot path, and it
    is empty for about half of them.
    """
    if not state.cart:
        return {"items": [], "total": 0}  # what the loop below gives: `sum([])` is the integer 0
    items: list[dict[str, Any]] = []
    amounts: list[float] = []
    for item in state.cart:
        qty, price = item.qty, item.price
        items.append({"sku": item.sku, "qty": qty, "price": price})
        amounts.append(qty * price)
    return {"items": items, "total": sum(amounts)}


def cart_total(state: CustomerState) -> float:
    """`cart.total` alone, computed as `cart_view` does, for the scopes that read no item.

    An empty cart (a third of the benchmark's scopes) skips building the list: its sum is the integer 0.
    """
    cart = state.cart
    if not cart:
        return 0
    return sum([item.qty * item.price for item in cart])


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _add_to_cart(state: CustomerState, props: dict[str, Any]) -> None:
    sku, qty, price = str(props["sku"]), _number(props.get("qty"), 1.0), _number(props.get("price"))
    for item in state.cart:
        if item.sku == sku:
            item.qty += qty
            if props.get("price") is not None:
                item.price = price
            return
    state.cart.append(CartItem(sku, qty, price))


def apply_builtin(
    state: CustomerState,
    type_: str,
    channel: str,
    at: float,
    props: dict[str, Any],
    context: EventContext | None,
    counters: CounterPlan,
    geofences: tuple[Geofence, ...],
) -> Sequence[str]:
    """Apply one event; return the ids of geofences it made the customer enter."""
    entered: Sequence[str] = ()
    if type_ not in _REDUCED:
        pass
    elif type_ == "product.viewed":  # the most frequent first
        viewed = state.viewed  # in place: the engine owns the state it is given
        viewed.append(str(props["sku"]))
        if len(viewed) > MAX_RECENT_VIEWED:
            del viewed[:-MAX_RECENT_VIEWED]
    elif type_ == "cart.item_added":
        _add_to_cart(state, props)
    elif type_ == "location.updated":
        if context is not None and context.geo is not None:
            geo = context.geo
            before = set(fences_containing(state.location, geofences))
            state.location = (float(geo.lat), float(geo.lon))
            entered = [fid for fid in fences_containing(state.location, geofences) if fid not in before]
    elif type_ == "order.completed":
        state.cart = []
        state.orders_count += 1
        state.orders_total += _number(props.get("total"))
        state.orders_last_at = max(state.orders_last_at or at, at)
    elif type_ == "cart.item_removed":
        state.cart = [item for item in state.cart if item.sku != props["sku"]]
    elif type_ == "identify":
        traits = props.get("traits")
        if isinstance(traits, dict):
            state.traits = {**state.traits, **traits}
    elif type_ == "consent.updated":
        state.consent[str(props["channel"])] = bool(props["granted"])
    elif type_ == "cart.cleared":
        state.cart = []
    if context is not None and isinstance(context.timezone, str):
        state.context_timezone = context.timezone
    changes = counters.get(type_)
    if changes is not None:
        counts = state.counters
        for name, resets in changes:
            if resets:
                counts.pop(name, None)
            else:
                counts[name] = counts.get(name, 0) + 1
    # `b if b > a else a` is max(a, b) without the builtin's argument parsing: twice per event
    last_seen = state.last_seen
    seen_at = last_seen.get(channel, at)
    last_seen[channel] = at if at > seen_at else seen_at
    if channel not in state.channels:
        state.channels.append(channel)
    push_recent(state, type_, channel, at)
    newest = state.newest_at or at
    state.newest_at = at if at > newest else newest
    return entered
