"""The names an expression can read (SPEC §3), built lazily from the state and the event.

Most conditions read one or two roots, so each root is materialised only when first asked for.
Timestamps are Unix seconds in expressions; `hours_since`/`days_since` take them as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator.engine.reducers import cart_total
from orchestrator.engine.state import CustomerState, TriggerRef, recent_events
from orchestrator.rules.expr import ROOTS
from schemas import Touchpoint

ROOT_NAMES = tuple(sorted(ROOTS))


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

    def __init__(self, state: CustomerState) -> None:
        super().__init__(viewed=state.viewed)
        self._state = state

    def get(self, key: str, default: Any = None) -> Any:
        if key == "events" and not super().__contains__("events"):
            self["events"] = [
                {"type": t, "channel": c, "occurred_at": at} for t, c, at in recent_events(self._state)
            ]
        return super().get(key, default)


class Scope(Mapping[str, Any]):
    """A read-only mapping of root name → plain data, computed on first access."""

    __slots__ = ("_cache", "_counter_names", "_event", "_now", "_profile_id", "_state", "_timezone")

    def __init__(
        self,
        profile_id: str,
        state: CustomerState,
        event: Any,
        now: float,
        counter_names: tuple[str, ...],
        timezone: str,
    ) -> None:
        self._profile_id = profile_id
        self._state = state
        self._event = event
        self._now = now
        self._counter_names = counter_names
        self._timezone = timezone
        self._cache: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            pass
        if name not in ROOT_NAMES:
            raise KeyError(name)
        value = getattr(self, f"_root_{name}")()
        self._cache[name] = value
        return value

    def get(self, name: str, default: Any = None) -> Any:
        """Compiled expressions read roots through `get`: the hot path, so no `Mapping.get` detour."""
        cache = self._cache
        if name in cache:
            return cache[name]
        if name not in ROOT_NAMES:
            return default
        value = cache[name] = getattr(self, f"_root_{name}")()
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(ROOT_NAMES)

    def __len__(self) -> int:
        return len(ROOT_NAMES)

    def _root_event(self) -> dict[str, Any]:
        event = self._event
        if isinstance(event, TriggerRef):
            return trigger_view(event)
        return event_view(event) if event is not None else {}

    def _root_customer(self) -> dict[str, Any]:
        s = self._state
        return {"id": self._profile_id, "traits": s.traits, "consent": s.consent, "timezone": self._timezone}

    def _root_cart(self) -> dict[str, Any]:
        s = self._state
        items = [{"sku": i.sku, "qty": i.qty, "price": i.price} for i in s.cart]
        return {"items": items, "total": cart_total(s)}

    def _root_orders(self) -> dict[str, Any]:
        s = self._state
        return {"count": s.orders_count, "total_spent": s.orders_total, "last_at": s.orders_last_at}

    def _root_recent(self) -> dict[str, Any]:
        return _RecentView(self._state)

    def _root_last_seen(self) -> dict[str, float]:
        return self._state.last_seen

    def _root_channels_seen(self) -> list[str]:
        return self._state.channels

    def _root_location(self) -> dict[str, float] | None:
        loc = self._state.location
        return {"lat": loc[0], "lon": loc[1]} if loc else None

    def _root_counters(self) -> dict[str, int]:
        counts = self._state.counters
        return {name: counts.get(name, 0) for name in self._counter_names}

    def _root_now(self) -> float:
        return self._now
