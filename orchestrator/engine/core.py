"""The decision engine: one customer's events and clock in, new state and decisions out.

Pure and deterministic: no I/O, no wall clock — `now` always comes from the caller (the wall
clock in a worker, event time in replay). The worker, `journey replay` and the tests all drive
this one class. It takes ownership of the state it is given and returns the new one.

Order of one event (SPEC §3 fine points): fire what the clock passed; apply reducers; match
goals; cancel waits; evaluate triggers against the state after the event; then handle a
derived `geofence.entered`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

from orchestrator.engine import hashing, policy
from orchestrator.engine.identity import IDENTIFY, alias_keys
from orchestrator.engine.merge import merge_states
from orchestrator.engine.outcomes import Conversion, Deferral, Step, Suppression, iso_utc
from orchestrator.engine.reducers import apply_builtin, cart_total
from orchestrator.engine.scope import Scope
from orchestrator.engine.state import (
    MAX_SEEN_EVENT_IDS,
    CustomerState,
    Deferred,
    Emission,
    LastAction,
    PendingWait,
    TriggerRef,
    recent_events,
)
from orchestrator.rules.model import Rule, RuleSet
from schemas import Action, Touchpoint

ERASURE = "privacy.erasure_requested"
GEOFENCE_ENTERED = "geofence.entered"
HOLDOUT_GROUP = "holdout"
DEFAULT_GROUP = "default"
CONTEXT_RECENT_EVENTS = 10


def _by_precedence(rules: list[Rule]) -> tuple[Rule, ...]:
    """Higher priority first, ties in file order (SPEC §3)."""
    return tuple(sorted(rules, key=lambda r: (-r.priority, r.index)))


class Engine:
    """Decides for one rule set; build a new one to change rules (hot reload swaps instances)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._rules = {rule.id: rule for rule in rules.rules}
        triggers: dict[str, list[Rule]] = {}
        goals: dict[str, list[Rule]] = {}
        cancels: dict[str, set[str]] = {}
        for rule in rules.rules:
            triggers.setdefault(rule.trigger.event, []).append(rule)
            if rule.goal is not None:
                goals.setdefault(rule.goal.event, []).append(rule)
            for event_type in rule.wait.cancel_on if rule.wait else ():
                cancels.setdefault(event_type, set()).add(rule.id)
        self._triggers = {event: _by_precedence(rs) for event, rs in triggers.items()}
        self._goals = {event: tuple(rs) for event, rs in goals.items()}
        self._cancels = cancels
        self._counter_names = tuple(c.name for c in rules.counters)
        self._handoff_rules = frozenset(r.id for r in rules.rules if r.action.type.endswith(".handoff"))

    def apply(
        self, profile_id: str, state: CustomerState | None, events: Sequence[Touchpoint], now: float
    ) -> Step:
        """Fire what is due at `now`, then apply `events` in order; duplicates are ignored."""
        turn = _Turn(self, profile_id, state, now)
        turn.fire_due()
        for event in events:
            turn.apply_event(event)
            if turn.overdue:  # a late event started a wait that has already ended: it fires at once
                turn.fire_due()
        return turn.finish()

    def advance(self, profile_id: str, state: CustomerState | None, now: float) -> Step:
        """Fire the waits and deferred actions due at or before `now`."""
        turn = _Turn(self, profile_id, state, now)
        turn.fire_due()
        return turn.finish()

    def merge(self, into: CustomerState | None, other: CustomerState | None) -> CustomerState | None:
        """Fold an anonymous profile into the customer it turned out to be."""
        if other is None:
            return into
        if into is None:
            return other
        return merge_states(into, other)

    def next_due(self, state: CustomerState | None) -> float | None:
        """The earliest moment this profile needs the clock: what timer indexes hold."""
        if state is None:
            return None
        moments = [w.due for w in state.waits] + [d.due for d in state.deferred]
        expiry = self._expiry(state)
        if expiry is not None:
            moments.append(expiry)
        return min(moments) if moments else None

    def context_view(self, profile_id: str, state: CustomerState) -> dict[str, Any] | None:
        """What a call-centre or store app reads about the customer (kept in Redis).

        None for an erased customer's suppression record (SPEC §7): it holds nothing to show.
        """
        if state.newest_at is None:
            return None
        handoffs = [
            {"rule_id": rule_id, "action_id": la.action_id, "decided_at": iso_utc(la.at)}
            for rule_id, la in state.last_actions.items()
            if rule_id in self._handoff_rules and la.group != HOLDOUT_GROUP
        ]
        return {**self.snapshot(profile_id, state), "open_handoffs": handoffs}

    def snapshot(self, profile_id: str, state: CustomerState) -> dict[str, Any]:
        """The customer context an action carries when its rule asks for it (e.g. a handoff)."""
        recent = recent_events(state)[-CONTEXT_RECENT_EVENTS:]
        return {
            "customer_id": profile_id,
            "traits": dict(state.traits),
            "cart": {
                "items": [{"sku": i.sku, "qty": i.qty, "price": i.price} for i in state.cart],
                "total": cart_total(state),
            },
            "orders": {"count": state.orders_count, "total_spent": state.orders_total},
            "last_channel": recent[-1][1] if recent else None,
            "channels_seen": list(state.channels),
            "recent_events": [
                {"type": type_, "channel": channel, "occurred_at": iso_utc(at)}
                for type_, channel, at in recent
            ],
            "counters": dict(state.counters),
        }

    def _expiry(self, state: CustomerState) -> float | None:
        ttl = self.rules.defaults.profile_ttl_s
        if ttl is None or state.newest_at is None:
            return None
        return state.newest_at + ttl


class _Turn:
    """One engine call's working set: the profile, its state, the clock and what was decided."""

    __slots__ = ("engine", "now", "overdue", "profile_id", "rules", "state", "step")

    def __init__(self, engine: Engine, profile_id: str, state: CustomerState | None, now: float) -> None:
        self.engine = engine
        self.rules = engine.rules
        self.profile_id = profile_id
        self.state = state if state is not None else CustomerState()
        self.now = max(now, self.state.clock) if self.state.clock is not None else now
        self.step = Step(state=None)
        self.overdue = False

    def finish(self) -> Step:
        state = self.state
        state.clock = self.now
        empty = state == CustomerState(clock=self.now)
        self.step.state = None if empty else state
        return self.step

    def _scope(self, event: Any, at: float) -> Scope:
        tz = policy.customer_timezone(self.state, self.rules.defaults.timezone)
        return Scope(self.profile_id, self.state, event, at, self.engine._counter_names, tz.key)

    # -- the clock ---------------------------------------------------------------------------

    def fire_due(self) -> None:
        """Fire, in end-time order, every wait, deferred action and expiry due by `now`.

        An item is judged as at its end time, except one that was already overdue when it was
        created (a late event): that one fires at the current clock.
        """
        state, now = self.state, self.now
        self.overdue = False
        if not state.waits and not state.deferred:
            expiry = self.engine._expiry(state)
            if expiry is not None and expiry <= now:
                self._delete_profile()
            return
        floor = state.clock if state.clock is not None else now
        while True:
            due_items: list[tuple[float, int, int, Any]] = []
            for wait in state.waits:
                if wait.due <= now:
                    due_items.append(self._due_key(wait.due, wait.rule_id, wait))
            for deferred in state.deferred:
                if deferred.due <= now:
                    due_items.append(self._due_key(deferred.due, deferred.rule_id, deferred))
            expiry = self.engine._expiry(state)
            if (
                expiry is not None
                and expiry <= now
                and (not due_items or expiry <= min(item[0] for item in due_items))
            ):
                self._delete_profile()
                return
            if not due_items:
                return
            due_items.sort(key=lambda item: item[:3])
            first = due_items[0][0]
            for due, _, _, item in due_items:
                if due != first:
                    break
                at = max(due, floor)
                if isinstance(item, PendingWait):
                    state.waits.remove(item)
                    self._wait_ended(item, at)
                else:
                    state.deferred.remove(item)
                    self._emit_marketing(item.action, at, item.rule_id)

    def _due_key(self, due: float, rule_id: str, item: Any) -> tuple[float, int, int, Any]:
        rule = self.engine._rules.get(rule_id)
        return (due, -(rule.priority if rule else 0), rule.index if rule else 0, item)

    def _wait_ended(self, wait: PendingWait, at: float) -> None:
        rule = self.engine._rules.get(wait.rule_id)
        if rule is None or rule.wait is None:  # the rule was removed by a reload: its waits lapse
            return
        scope = self._scope(wait.trigger, at)
        if rule.wait.recheck is not None and not rule.wait.recheck.test(scope):
            self._suppress(rule, "recheck", at, wait.trigger.event_id)
            return
        self._decide(rule, wait.trigger.event_id, at, scope)

    # -- events ------------------------------------------------------------------------------

    def apply_event(self, event: Touchpoint) -> None:
        state = self.state
        fingerprint = hashing.event_fingerprint(event.event_id)
        if fingerprint in state.seen:
            self.step.duplicates += 1
            return
        state.seen.append(fingerprint)
        if len(state.seen) > MAX_SEEN_EVENT_IDS:
            del state.seen[: len(state.seen) - MAX_SEEN_EVENT_IDS]
        self.step.applied += 1
        if event.type == ERASURE:
            self._delete_profile()
            return
        if event.type == IDENTIFY and event.customer_id == self.profile_id:
            known = set(state.aliases)
            state.aliases.extend(key for key in alias_keys(event) if key not in known)
        context = event.context.model_dump(exclude_none=True) if event.context else None
        entered = self._handle(
            event.type, event.channel, event.ts, event.props, context, event.event_id, event
        )
        for fence_id in entered:
            derived = TriggerRef(
                f"{event.event_id}:geofence:{fence_id}",
                GEOFENCE_ENTERED,
                event.channel,
                event.ts,
                {"geofence": fence_id},
            )
            self._handle(
                GEOFENCE_ENTERED, event.channel, event.ts, derived.properties, None, derived.event_id, derived
            )

    def _handle(
        self,
        type_: str,
        channel: str,
        at: float,
        props: dict[str, Any],
        context: dict[str, Any] | None,
        event_id: str,
        event: Touchpoint | TriggerRef,
    ) -> list[str]:
        engine, state = self.engine, self.state
        entered = apply_builtin(
            state, type_, channel, at, props, context, self.rules.counters, self.rules.geofences
        )
        for rule in engine._goals.get(type_, ()):
            self._match_goal(rule, channel, at)
        cancelled = engine._cancels.get(type_)
        if cancelled and state.waits:
            state.waits = [w for w in state.waits if w.rule_id not in cancelled]
        scope: Scope | None = None  # one per event: every trigger sees the same state after the event
        for rule in engine._triggers.get(type_, ()):
            channels = rule.trigger.channels
            if channels is not None and channel not in channels:
                continue
            if scope is None:
                scope = self._scope(event, self.now)
            if rule.condition is not None and not rule.condition.test(scope):
                continue
            if rule.wait is None:
                self._decide(rule, event_id, self.now, scope)
                continue
            pending = next((w for w in state.waits if w.rule_id == rule.id), None)
            if pending is not None:
                if rule.reentry == "ignore":
                    continue
                state.waits.remove(pending)
            trigger = (
                event if isinstance(event, TriggerRef) else TriggerRef(event_id, type_, channel, at, props)
            )
            due = at + rule.wait.for_s
            state.waits.append(PendingWait(rule.id, due, trigger))
            self.overdue = self.overdue or due <= self.now
        return entered

    def _match_goal(self, rule: Rule, channel: str, at: float) -> None:
        goal = rule.goal
        assert goal is not None
        if goal.channels is not None and channel not in goal.channels:
            return
        last = self.state.last_actions.get(rule.id)
        if last is None or last.converted or not last.at <= at <= last.at + goal.within_s:
            return
        last.converted = True
        self.step.conversions.append(Conversion(rule.id, last.group, last.action_id, self.profile_id, at))

    # -- decisions ---------------------------------------------------------------------------

    def _decide(self, rule: Rule, trigger_event_id: str, at: float, scope: Scope) -> None:
        state = self.state
        if rule.cooldown_s is not None:
            last = state.rule_last_at.get(rule.id)
            deferred = any(d.rule_id == rule.id for d in state.deferred)
            if deferred or (last is not None and at < last + rule.cooldown_s):
                self._suppress(rule, "cooldown", at, trigger_event_id)
                return
        action_id = hashing.action_id(rule.id, self.profile_id, trigger_event_id)
        held_out = hashing.in_holdout(rule.id, self.profile_id, rule.holdout)
        variant = None
        params = rule.action.params.render(scope)
        if rule.variants and not held_out:
            chosen = rule.variants[
                hashing.choose_variant(rule.id, self.profile_id, [v.weight for v in rule.variants])
            ]
            variant = chosen.id
            if chosen.params is not None:
                params = {**params, **chosen.params.render(scope)}
        action = {
            "action_id": action_id,
            "rule_id": rule.id,
            "rule_version": rule.version,
            "customer_id": self.profile_id,
            "type": rule.action.type,
            "channel": rule.action.channel,
            "category": rule.action.category,
            "params": params,
            "context": self.engine.snapshot(self.profile_id, state) if rule.action.context else None,
            "trigger_event_id": trigger_event_id,
            "decided_at": iso_utc(at),
            "status": "held_out" if held_out else "emitted",
            "variant": variant,
        }
        if held_out:
            self._record(rule.id, action, at, HOLDOUT_GROUP)
            return
        if rule.action.category != "marketing":
            self._record(rule.id, action, at, variant or DEFAULT_GROUP)
            return
        if rule.quiet_hours != "ignore":
            tz = policy.customer_timezone(state, self.rules.defaults.timezone)
            until = policy.quiet_until(at, tz, self.rules.defaults.quiet_hours)
            if until is not None:
                if rule.quiet_hours == "drop":
                    self._suppress(rule, "quiet_hours", at, trigger_event_id)
                else:
                    state.deferred.append(Deferred(rule.id, until, action))
                    self.step.deferred.append(
                        Deferral(rule.id, self.profile_id, action_id, at, until, trigger_event_id)
                    )
                return
        self._emit_marketing(action, at, rule.id)

    def _emit_marketing(self, action: dict[str, Any], at: float, rule_id: str) -> None:
        """Consent and caps are judged at the moment of emission, deferred or not."""
        rule = self.engine._rules.get(rule_id)
        if rule is None:
            return
        state = self.state
        channel = action["channel"]
        if policy.consent_refused(state, channel):
            self._suppress(rule, "consent", at, action["trigger_event_id"])
            return
        policy.prune_emissions(state, at)
        if policy.cap_reached(state, self.rules.contact_policy, channel, at):
            self._suppress(rule, "cap", at, action["trigger_event_id"])
            return
        state.emissions.append(Emission(at, channel))
        decided_at = iso_utc(at)
        if action["decided_at"] != decided_at:
            action = {**action, "decided_at": decided_at}
        self._record(rule_id, action, at, action["variant"] or DEFAULT_GROUP)

    def _record(self, rule_id: str, action: dict[str, Any], at: float, group: str) -> None:
        self.state.rule_last_at[rule_id] = at
        self.state.last_actions[rule_id] = LastAction(action["action_id"], at, group)
        self.step.actions.append(Action(**action))

    def _suppress(self, rule: Rule, reason: str, at: float, trigger_event_id: str) -> None:
        self.step.suppressed.append(Suppression(rule.id, self.profile_id, reason, at, trigger_event_id))

    # -- privacy -----------------------------------------------------------------------------

    def _delete_profile(self) -> None:
        """Erasure or expiry (SPEC §7): forget everything but the consent opt-outs."""
        old = self.state
        self.step.erased = True
        self.step.forget_aliases = sorted(set(chain(self.step.forget_aliases, old.aliases)))
        opt_outs = {channel: False for channel, granted in old.consent.items() if granted is False}
        self.state = CustomerState(consent=opt_outs)
