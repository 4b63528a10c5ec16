"""The names an expression can read (SPEC §3), built from the state and the event.

Which roots a rule's expressions can read is known once the rules load (`Expression.roots`,
`Template.roots`), so a scope is a plain dict of exactly those roots, built once per event (or
ended wait): compiled expressions then read it with `dict.get`, in C, rather than through a lazy
mapping's Python method for every name. `recent.events`, the one costly value nobody reads in
practice, stays lazy, and only in the scopes of rules that can read it: elsewhere `recent` is a plain
dict too. Likewise `cart.items` is built only for rules that can read it (most read the total), and
is the cart's own list where it is only counted (`len(cart.items)`, every abandoned-cart recheck);
`event` holds only its `properties` unless a rule reads another of its fields.
Timestamps are Unix seconds; `hours_since`/`days_since` take them as they are.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from orchestrator.engine.policy import customer_timezone
from orchestrator.engine.reducers import cart_total, cart_view
from orchestrator.engine.state import CustomerState, TriggerRef, recent_events
from orchestrator.rules.model import Rule
from schemas import Touchpoint

Scope = dict[str, Any]  # root name → plain data, as `build_scope` makes it
# In a set of roots: `recent` must be the view that can build its events; `cart` must hold its items,
# or at least as many values as it has (`CART_COUNT`); `event` must have every field, not only
# `properties`.
RECENT_EVENTS = "recent.events"
CART_ITEMS = "cart.items"
CART_COUNT = "cart.items#len"
EVENT_FIELDS = "event.fields"


def event_view(event: Touchpoint) -> dict[str, Any]:
    context = event.context.model_dump(exclude_none=True) if event.context else {}
    return {
        "event_id": event.event_id,
        "type": event.type,
        "channel": event.channel,
        "occurred_at": event.ts,
        "customer_id": event.customer_id,
        "anonymous_id": event.anonymous_id,
        "identifiers": event.identifiers or {},
        "properties": event.props,
        "context": context,
    }


def trigger_view(trigger: TriggerRef) -> dict[str, Any]:
    return {
        "event_id": trigger.event_id,
        "type": trigger.type,
        "channel": trigger.channel,
        "occurred_at": trigger.at,
        "properties": trigger.properties,
    }


class _RecentView(dict[str, Any]):
    """`recent`, with `recent.events` built only when an expression reads it."""

    __slots__ = ("_state",)

    def __init__(self, state: CustomerState) -> None:  # no super().__init__(viewed=…): twice as slow
        self["viewed"] = state.viewed
        self._state = state

    def get(self, key: str, default: Any = None) -> Any:  # `dict.` rather than `super()`: read per event
        if key == "events" and "events" not in self:
            self["events"] = [
                {"type": t, "channel": c, "occurred_at": at} for t, c, at in recent_events(self._state)
            ]
        return dict.get(self, key, default)


def rule_roots(rule: Rule, *, at_trigger: bool) -> frozenset[str]:
    """Every root that the rule's params and its condition (`at_trigger`) or recheck can read.

    A wait's end evaluates the recheck, never the condition: its scope leaves out the roots only
    the condition reads (the orders of most abandoned-cart rules, built for every ended wait).
    `RECENT_EVENTS` and `CART_ITEMS` are among them when one of those expressions reads
    `recent.events` or `cart.items` (or the whole root), `CART_COUNT` when `cart.items` is only
    counted, `EVENT_FIELDS` when one reads a field of `event` other than `properties`.
    """
    roots: set[str] = set(rule.action.params.roots)
    paths: set[tuple[str, ...]] = set(rule.action.params.paths)  # values rendered: read whole
    counted: set[tuple[str, ...]] = set()
    expression = rule.condition if at_trigger else rule.wait.recheck if rule.wait else None
    if expression is not None:
        roots |= expression.roots
        paths |= expression.paths - expression.lengths
        counted |= expression.lengths
    for variant in rule.variants:
        if variant.params is not None:
            roots |= variant.params.roots
            paths |= variant.params.paths
    if _reads(paths, "recent", "events") or _reads(counted, "recent", "events"):
        roots.add(RECENT_EVENTS)
    if _reads(paths, "cart", "items") or ("cart",) in counted:
        roots.add(CART_ITEMS)
    elif ("cart", "items") in counted:
        roots.add(CART_COUNT)
    if any(path[0] == "event" and path[1:2] != ("properties",) for path in paths | counted):
        roots.add(EVENT_FIELDS)
    return frozenset(roots)


def _reads(paths: set[tuple[str, ...]], root: str, key: str) -> bool:
    """Whether one of `paths` can read `root.key`: through it, or through the whole of `root`."""
    return any(path[0] == root and path[1:2] in ((), (key,)) for path in paths)


# What `build_scope` puts in a scope, worked out once per set of roots (see `scope_plan`): flags it
# unpacks in one step rather than a dozen set lookups per scope, in this order: event (0: none,
# 1: its properties, 2: every field), customer, cart (0: none, 1: total, 2: total and the items to
# count, 3: the full view), orders, recent (0: none, 1: viewed, 2: the lazy view), last_seen,
# channels_seen, location, counters.
ScopePlan = tuple[int, bool, int, bool, int, bool, bool, bool, bool]


def scope_plan(roots: frozenset[str]) -> ScopePlan:
    """The plan of a scope holding `roots`, as `rule_roots` names them; any other name reads as null."""
    event = 0 if "event" not in roots else 2 if EVENT_FIELDS in roots else 1
    cart = 0 if "cart" not in roots else 3 if CART_ITEMS in roots else 2 if CART_COUNT in roots else 1
    recent = 0 if "recent" not in roots else 2 if RECENT_EVENTS in roots else 1
    return (
        event,
        "customer" in roots,
        cart,
        "orders" in roots,
        recent,
        "last_seen" in roots,
        "channels_seen" in roots,
        "location" in roots,
        "counters" in roots,
    )


def build_scope(
    plan: ScopePlan,
    profile_id: str,
    state: CustomerState,
    event: Touchpoint | TriggerRef,
    now: float,
    counter_names: tuple[str, ...],
    default_tz: ZoneInfo,
) -> Scope:
    """The roots `plan` holds (and `now`), as plain data: what compiled expressions read.

    The plan must hold every root the expressions to evaluate can read (see `rule_roots`); any
    other name reads as null, as an unknown name would.
    """
    scope: Scope = {"now": now}
    event_kind, customer, cart, orders, recent, last_seen, channels_seen, location, counters = plan
    if event_kind:
        if event_kind == 2:
            scope["event"] = trigger_view(event) if isinstance(event, TriggerRef) else event_view(event)
        else:
            scope["event"] = {
                "properties": event.properties if isinstance(event, TriggerRef) else event.props
            }
    if customer:
        timezone = customer_timezone(state, default_tz).key
        scope["customer"] = {
            "id": profile_id,
            "traits": state.traits,
            "consent": state.consent,
            "timezone": timezone,
        }
    if cart:
        if cart == 3:
            scope["cart"] = cart_view(state)
        elif cart == 2:
            scope["cart"] = {"items": state.cart, "total": cart_total(state)}
        else:
            scope["cart"] = {"total": cart_total(state)}
    if orders:
        scope["orders"] = {
            "count": state.orders_count,
            "total_spent": state.orders_total,
            "last_at": state.orders_last_at,
        }
    if recent:
        scope["recent"] = _RecentView(state) if recent == 2 else {"viewed": state.viewed}
    if last_seen:
        scope["last_seen"] = state.last_seen
    if channels_seen:
        scope["channels_seen"] = state.channels
    if location:
        where = state.location
        scope["location"] = {"lat": where[0], "lon": where[1]} if where else None
    if counters:
        counts = state.counters
        scope["counters"] = {name: counts.get(name, 0) for name in counter_names}
    return scope
