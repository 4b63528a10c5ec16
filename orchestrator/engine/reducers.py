"""How each touchpoint changes the built-in customer state (SPEC §1 "well-known event types").

Reducers know nothing about rules except the declared counters and geofences, which are part
of the state's shape. They return the geofences newly entered so the engine can derive
`geofence.entered` events.
"""

from __future__ import annotations

import math
from typing import Any

from orchestrator.engine.state import MAX_RECENT_VIEWED, CartItem, CustomerState, push_recent
from orchestrator.rules.model import Counter, Geofence

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def fences_containing(location: tuple[float, float] | None, fences: tuple[Geofence, ...]) -> list[str]:
    if location is None:
        return []
    return [f.id for f in fences if distance_m(location[0], location[1], f.lat, f.lon) <= f.radius_m]


def cart_total(state: CustomerState) -> float:
    return sum(item.qty * item.price for item in state.cart)


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
    context: dict[str, Any] | None,
    counters: tuple[Counter, ...],
    geofences: tuple[Geofence, ...],
) -> list[str]:
    """Apply one event; return the ids of geofences it made the customer enter."""
    entered: list[str] = []
    if type_ == "identify":
        traits = props.get("traits")
        if isinstance(traits, dict):
            state.traits = {**state.traits, **traits}
    elif type_ == "consent.updated":
        state.consent[str(props["channel"])] = bool(props["granted"])
    elif type_ == "product.viewed":
        state.viewed = [*state.viewed, str(props["sku"])][-MAX_RECENT_VIEWED:]
    elif type_ == "cart.item_added":
        _add_to_cart(state, props)
    elif type_ == "cart.item_removed":
        state.cart = [item for item in state.cart if item.sku != props["sku"]]
    elif type_ == "cart.cleared":
        state.cart = []
    elif type_ == "order.completed":
        state.cart = []
        state.orders_count += 1
        state.orders_total += _number(props.get("total"))
        state.orders_last_at = max(state.orders_last_at or at, at)
    elif type_ == "location.updated" and context and isinstance(context.get("geo"), dict):
        geo = context["geo"]
        before = set(fences_containing(state.location, geofences))
        state.location = (float(geo["lat"]), float(geo["lon"]))
        entered = [fid for fid in fences_containing(state.location, geofences) if fid not in before]
    if context and isinstance(context.get("timezone"), str):
        state.context_timezone = context["timezone"]
    for counter in counters:
        if type_ in counter.reset_on:
            state.counters.pop(counter.name, None)
        elif type_ in counter.on:
            state.counters[counter.name] = state.counters.get(counter.name, 0) + 1
    state.last_seen[channel] = max(state.last_seen.get(channel, at), at)
    if channel not in state.channels:
        state.channels.append(channel)
    push_recent(state, type_, channel, at)
    state.newest_at = max(state.newest_at or at, at)
    return entered
