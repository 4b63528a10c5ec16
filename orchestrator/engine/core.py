"""The decision engine: one customer's events and clock in, new state and decisions out.

Pure and deterministic: no I/O, no wall clock — `now` always comes from the caller (the wall
clock in a worker, event time in replay). The worker, `journey replay` and the tests all drive
this one class. It takes ownership of the state it is given and returns the new one.

Order of one event (SPEC §3 fine points): fire what the clock passed; apply reducers; match
goals; cancel waits; evaluate triggers against the state after the event; then handle a
derived `geofence.entered`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

import msgspec

from orchestrator.engine import hashing, policy
from orchestrator.engine.identity import IDENTIFY, alias_keys
from orchestrator.engine.merge import merge_states
from orchestrator.engine.outcomes import Conversion, Deferral, Step, Suppression, iso_utc
from orchestrator.engine.reducers import apply_builtin, cart_view, counter_plan
from orchestrator.engine.scope import Scope, build_scope, rule_roots, scope_plan
from orchestrator.engine.state import (
    MAX_SEEN_EVENT_IDS,
    CustomerState,
    Deferred,
    Emission,
    LastAction,
    PendingWait,
    TriggerRef,
)
from orchestrator.rules.model import Rule, RuleSet, Variant
from schemas import Action, Touchpoint
from schemas.action import ActionStatus
from schemas.touchpoint import EventContext

ERASURE = "privacy.erasure_requested"
GEOFENCE_ENTERED = "geofence.entered"
HOLDOUT_GROUP = "holdout"
DEFAULT_GROUP = "default"
CONTEXT_RECENT_EVENTS = 10


@lru_cache(maxsize=1024)
def _kind_parts(kind: str) -> tuple[str, str]:
    """("type", "channel") of a recent-event kind: a few kinds recur in every action context."""
    type_, channel = kind.split(" ", 1)
    return type_, channel


def _precedence(rule: Rule) -> tuple[int, int]:
    """Higher priority first, ties in file order (SPEC §3)."""
    return (-rule.priority, rule.index)


def _by_precedence(rules: list[Rule]) -> tuple[Rule, ...]:
    return tuple(sorted(rules, key=_precedence))


# A triggered rule, its condition's test (None for none) and whether that is the previous rule's condition
_Candidate = tuple[Rule, Callable[[Scope], bool] | None, bool]


class _ByChannel(dict[str, tuple[_Candidate, ...]]):
    """One event type's triggered rules per channel, in precedence order, channel filters applied.

    A channel no rule names gets the rules that name none (`others`, read with `get`, not through a
    `__missing__` call): the channel test is done once, here, rather than for every rule an event
    triggers. A rule with the same condition as the rule before it (rules copied per channel or
    action sit together) is marked as such: a condition reads only the scope, which no decision
    changes, so one evaluation answers both. `plan` is what their scope holds: the roots of them all.
    """

    __slots__ = ("others", "plan")

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        super().__init__()
        self.plan = scope_plan(frozenset().union(*(rule_roots(rule, at_trigger=True) for rule in rules)))
        named = {channel for rule in rules for channel in rule.trigger.channels or ()}
        for channel in (*named, None):
            candidates: list[_Candidate] = []
            previous: Rule | None = None
            for rule in rules:
                if rule.trigger.channels is not None and channel not in rule.trigger.channels:
                    continue
                condition = rule.condition
                same = condition is not None and previous is not None and previous.condition == condition
                candidates.append((rule, condition.test if condition else None, same))
                previous = rule
            if channel is None:
                self.others = tuple(candidates)
            else:
                self[channel] = tuple(candidates)


# What an event type sets off, in one lookup per event: the rules it is the goal of, the rules whose
# waits it cancels, the rules it triggers; None where there are none.
_Effects = tuple[tuple[Rule, ...] | None, set[str] | None, _ByChannel | None]

# What the engine reads of a touchpoint, in one step from its instance dict, where pydantic keeps the
# fields (and the derived `ts` and `props`): the interpreter has no fast attribute read for a class with
# a `__getattr__`, as pydantic's models have, and six slow reads per event cost more than this lookup.
_EVENT_FIELDS = itemgetter("event_id", "type", "channel", "ts", "props", "context")
_UNKNOWN_RULE = (0, 0)  # the precedence of a wait or deferred action whose rule a reload removed
_NEVER = float("inf")  # "no end time": compares later than any, so the earliest needs no None test


class Engine:
    """Decides for one rule set; build a new one to change rules (hot reload swaps instances)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._rules = {rule.id: rule for rule in rules.rules}
        self._precedence = {rule.id: _precedence(rule) for rule in rules.rules}
        self._weights = {rule.id: tuple(v.weight for v in rule.variants) for rule in rules.rules}
        triggers: dict[str, list[Rule]] = {}
        goals: dict[str, list[Rule]] = {}
        cancels: dict[str, set[str]] = {}
        for rule in rules.rules:
            triggers.setdefault(rule.trigger.event, []).append(rule)
            if rule.goal is not None:
                goals.setdefault(rule.goal.event, []).append(rule)
            for event_type in rule.wait.cancel_on if rule.wait else ():
                cancels.setdefault(event_type, set()).add(rule.id)
        # per event type and channel, in precedence order: each rule with its condition's test,
        # unwrapped once here rather than for every rule an event triggers
        by_channel = {event: _ByChannel(_by_precedence(rs)) for event, rs in triggers.items()}
        self._effects: dict[str, _Effects] = {
            event: (tuple(goals.get(event, ())) or None, cancels.get(event), by_channel.get(event))
            for event in triggers.keys() | goals.keys() | cancels.keys()
        }
        # what the scope of a wait's end holds: the roots of the rule's params and recheck
        self._wait_plans = {rule.id: scope_plan(rule_roots(rule, at_trigger=False)) for rule in rules.rules}
        self._handoff_rules = frozenset(r.id for r in rules.rules if r.action.type.endswith(".handoff"))
        # what the hot path reads for every event or decision, unwrapped once here
        self._channels = {rule.id: rule.action.channel for rule in rules.rules}
        self._counter_plan = counter_plan(rules.counters)
        self._counter_names = tuple(c.name for c in rules.counters)
        self._geofences = rules.geofences
        self._default_tz = rules.defaults.timezone
        self._ttl = rules.defaults.profile_ttl_s

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
        # the turn's end, here rather than in a method of its own: one call fewer per engine call
        ended, step = turn.state, turn.step
        ended.clock = turn.now
        # A profile that has seen an event is never empty: skip building an empty state to compare.
        step.state = None if ended.newest_at is None and ended == CustomerState(clock=turn.now) else ended
        return step

    def advance(self, profile_id: str, state: CustomerState | None, now: float) -> Step:
        """Fire the waits and deferred actions due at or before `now`."""
        return self.apply(profile_id, state, (), now)

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
        ttl, newest = self._ttl, state.newest_at
        earliest = _NEVER if ttl is None or newest is None else newest + ttl  # the expiry
        for wait in state.waits:
            due = wait.due
            if due < earliest:
                earliest = due
        for deferred in state.deferred:
            due = deferred.due
            if due < earliest:
                earliest = due
        return None if earliest == _NEVER else earliest

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
        kinds = state.recent_kinds
        recent: list[dict[str, Any]] = []
        for kind, at in state.recent[-CONTEXT_RECENT_EVENTS:]:
            type_, channel = _kind_parts(kinds[kind])
            recent.append({"type": type_, "channel": channel, "occurred_at": iso_utc(at)})
        return {
            "customer_id": profile_id,
            "traits": dict(state.traits),
            "cart": cart_view(state),
            "orders": {"count": state.orders_count, "total_spent": state.orders_total},
            "last_channel": recent[-1]["channel"] if recent else None,
            "channels_seen": list(state.channels),
            "recent_events": recent,
            "counters": dict(state.counters),
        }


class _Turn:
    """One engine call's working set: the profile, its state, the clock and what was decided."""

    __slots__ = ("context", "engine", "now", "overdue", "profile_id", "quiet", "state", "step")

    def __init__(self, engine: Engine, profile_id: str, state: CustomerState | None, now: float) -> None:
        self.engine = engine
        self.profile_id = profile_id
        if state is None:
            state = CustomerState()
        self.state = state
        clock = state.clock
        self.now = clock if clock is not None and clock > now else now  # the clock never goes back
        self.step = Step(None)
        self.overdue = False
        self.context: dict[str, Any] | None = None  # the customer context, while the state is unchanged
        # (decision time, end of its quiet hours): the rules an event fires decide at one time, and the
        # customer's timezone changes only with an event, which resets it as it resets the context
        self.quiet: tuple[float, float | None] | None = None

    # -- the clock ---------------------------------------------------------------------------

    def fire_due(self) -> None:
        """Fire, in end-time order, every wait, deferred action and expiry due by `now`.

        An item is judged as at its end time, except one that was already overdue when it was
        created (a late event): that one fires at the current clock.
        """
        state, now = self.state, self.now
        self.overdue = False
        ttl, newest = self.engine._ttl, state.newest_at
        expiry = _NEVER if ttl is None or newest is None else newest + ttl  # as in `Engine.next_due`
        while True:
            first = _NEVER  # the earliest end time: due if it is by now
            for wait in state.waits:
                due = wait.due
                if due < first:
                    first = due
            for deferred in state.deferred:
                due = deferred.due
                if due < first:
                    first = due
            if expiry <= now and expiry <= first:
                self._delete_profile()
                return
            if first > now:
                return
            clock = state.clock
            floor = now if clock is None else clock
            self._fire_at(first, floor if floor > first else first)

    def _fire_at(self, due: float, at: float) -> None:
        """Fire the items that end at `due`, by rule precedence (waits first among equals), as at `at`."""
        state = self.state
        waits = state.waits
        if len(waits) == 1 and not state.deferred:  # the common case: the one pending item ends at `due`
            self._wait_ended(waits.pop(), at)
            return
        items: list[PendingWait | Deferred] = [wait for wait in waits if wait.due == due]
        if state.deferred:  # rarely any: quiet hours
            items += [deferred for deferred in state.deferred if deferred.due == due]
        if len(items) > 1:
            precedence = self.engine._precedence
            items.sort(key=lambda item: precedence.get(item.rule_id, _UNKNOWN_RULE))
        for item in items:
            if isinstance(item, PendingWait):
                state.waits.remove(item)
                self._wait_ended(item, at)
            else:
                state.deferred.remove(item)
                self._emit_deferred(item, at)

    def _wait_ended(self, wait: PendingWait, at: float) -> None:
        rule = self.engine._rules.get(wait.rule_id)
        if rule is None or rule.wait is None:  # the rule was removed by a reload: its waits lapse
            return
        engine = self.engine
        scope = build_scope(
            engine._wait_plans[rule.id],
            self.profile_id,
            self.state,
            wait.trigger,
            at,
            engine._counter_names,
            engine._default_tz,
        )
        if rule.wait.recheck is not None and not rule.wait.recheck.test(scope):
            self._suppress(rule, "recheck", at, wait.trigger.event_id)
            return
        self._decide(rule, wait.trigger.event_id, at, scope)

    # -- events ------------------------------------------------------------------------------

    def apply_event(self, event: Touchpoint) -> None:
        state = self.state
        event_id, type_, channel, at, props, context = _EVENT_FIELDS(event.__dict__)
        fingerprint = hashing.event_fingerprint(event_id)
        seen = state.seen
        if fingerprint in seen:
            self.step.duplicates += 1
            return
        seen.append(fingerprint)
        if len(seen) > MAX_SEEN_EVENT_IDS:
            del seen[: len(seen) - MAX_SEEN_EVENT_IDS]
        self.step.applied += 1
        if type_ == ERASURE:
            self._delete_profile()
            return
        if type_ == IDENTIFY and event.customer_id == self.profile_id:
            known = set(state.aliases)
            state.aliases.extend(key for key in alias_keys(event) if key not in known)
        entered = self._handle(type_, channel, at, props, context, event_id, event)
        for fence_id in entered:
            derived = TriggerRef(
                f"{event_id}:geofence:{fence_id}", GEOFENCE_ENTERED, channel, at, {"geofence": fence_id}
            )
            self._handle(GEOFENCE_ENTERED, channel, at, derived.properties, None, derived.event_id, derived)

    def _handle(
        self,
        type_: str,
        channel: str,
        at: float,
        props: dict[str, Any],
        context: EventContext | None,
        event_id: str,
        event: Touchpoint | TriggerRef,
    ) -> Sequence[str]:
        engine, state = self.engine, self.state
        self.context = self.quiet = None  # the event changes what the context shows, and the timezone
        entered = apply_builtin(
            state, type_, channel, at, props, context, engine._counter_plan, engine._geofences
        )
        effects = engine._effects.get(type_)
        if effects is None:
            return entered
        goals, cancelled, by_channel = effects
        if goals is not None and state.last_actions:  # only a recorded action can convert
            for rule in goals:
                self._match_goal(rule, channel, at)
        if cancelled and state.waits:
            state.waits = [w for w in state.waits if w.rule_id not in cancelled]
        if by_channel is None:
            return entered
        candidates = by_channel.get(channel, by_channel.others)
        if not candidates:
            return entered
        now = self.now
        # one scope per event: every trigger sees the same state after the event
        scope = build_scope(
            by_channel.plan,
            self.profile_id,
            state,
            event,
            now,
            engine._counter_names,
            engine._default_tz,
        )
        passed = True
        # the waits this event starts share one record of it: nothing changes a wait's trigger
        trigger = event if isinstance(event, TriggerRef) else None
        for rule, test, same in candidates:
            if not same:
                passed = test is None or test(scope)
            if not passed:
                continue
            wait = rule.wait
            if wait is None:
                self._decide(rule, event_id, now, scope)
                continue
            if state.waits and not self._reenter(rule):  # no pending wait: nothing to restart or keep
                continue
            if trigger is None:
                trigger = TriggerRef(event_id, type_, channel, at, props)
            due = at + wait.for_s
            state.waits.append(PendingWait(rule.id, due, trigger))
            if due <= now:
                self.overdue = True
        return entered

    def _reenter(self, rule: Rule) -> bool:
        """Whether `rule` may start a wait: `restart` drops its pending one, `ignore` keeps it instead."""
        waits = self.state.waits
        rule_id = rule.id
        for index, pending in enumerate(waits):
            if pending.rule_id == rule_id:
                if rule.reentry == "ignore":
                    return False
                del waits[index]
                return True
        return True

    def _match_goal(self, rule: Rule, channel: str, at: float) -> None:
        goal = rule.goal
        assert goal is not None
        if goal.channels is not None and channel not in goal.channels:
            return
        last = self.state.last_actions.get(rule.id)
        if last is None or last.converted or not last.at <= at <= last.at + goal.within_s:
            return
        last.converted = True
        self.step.conversions += (Conversion(rule.id, last.group, last.action_id, self.profile_id, at),)

    # -- decisions ---------------------------------------------------------------------------

    def _decide(self, rule: Rule, trigger_event_id: str, at: float, scope: Scope) -> None:
        """Cooldown, holdout, category, quiet hours, then consent and caps (SPEC §3).

        The action is built only once it is known to be recorded or deferred: most suppressions
        (cooldown, quiet hours dropped, caps) happen before anything needs rendering.
        """
        state = self.state
        rule_id = rule.id
        cooldown_s = rule.cooldown_s
        if cooldown_s is not None:
            last = state.rule_last_at.get(rule_id)
            deferred = state.deferred
            if (last is not None and at < last + cooldown_s) or (
                deferred and any(d.rule_id == rule_id for d in deferred)  # a deferred action counts as sent
            ):
                self._suppress(rule, "cooldown", at, trigger_event_id)
                return
        holdout = rule.holdout
        if holdout and hashing.in_holdout(rule_id, self.profile_id, holdout):  # most rules hold none out
            self._record(rule_id, self._action(rule, trigger_event_id, at, scope, held_out=True), at)
            return
        if rule.action.category != "marketing":
            self._record(rule_id, self._action(rule, trigger_event_id, at, scope), at)
            return
        if rule.quiet_hours != "ignore":
            quiet = self.quiet
            if quiet is not None and quiet[0] == at:
                until = quiet[1]
            else:
                defaults = self.engine.rules.defaults
                until = policy.quiet_until(
                    at, policy.customer_timezone(state, defaults.timezone), defaults.quiet_hours
                )
                self.quiet = (at, until)
            if until is not None:
                if rule.quiet_hours == "drop":
                    self._suppress(rule, "quiet_hours", at, trigger_event_id)
                else:
                    action = self._action(rule, trigger_event_id, at, scope)
                    state.deferred.append(Deferred(rule_id, until, msgspec.structs.asdict(action)))
                    self.step.deferred += (
                        Deferral(rule_id, self.profile_id, action.action_id, at, until, trigger_event_id),
                    )
                return
        if self._may_emit(rule, self.engine._channels[rule_id], at, trigger_event_id):
            self._record(rule_id, self._action(rule, trigger_event_id, at, scope), at)

    def _action(
        self, rule: Rule, trigger_event_id: str, at: float, scope: Scope, *, held_out: bool = False
    ) -> Action:
        """The action as decided, or as held out (no variant).

        An experiment's variant is drawn here, for the actions actually built: a decision that is
        suppressed never needs it, and each draw is a hash.
        """
        spec = rule.action
        params = spec.params.render(scope)
        variant: Variant | None = None
        if rule.variants and not held_out:
            weights = self.engine._weights[rule.id]
            variant = rule.variants[hashing.choose_variant(rule.id, self.profile_id, weights)]
            if variant.params is not None:
                params = {**params, **variant.params.render(scope)}
        status: ActionStatus = "held_out" if held_out else "emitted"
        return Action(
            action_id=hashing.action_id(rule.id, self.profile_id, trigger_event_id),
            rule_id=rule.id,
            rule_version=rule.version,
            customer_id=self.profile_id,
            type=spec.type,
            channel=self.engine._channels[rule.id],
            category=spec.category,
            params=params,
            context=self._context() if spec.context else None,
            trigger_event_id=trigger_event_id,
            decided_at=iso_utc(at),
            status=status,
            variant=variant.id if variant is not None else None,
        )

    def _context(self) -> dict[str, Any]:
        """The customer context of the actions decided on the current state.

        Built once and shared: the rules an event fires all carry the same context (a chat event
        firing four handoff rules built it four times), and actions are read-only once decided.
        Decisions change no field the context shows; events and erasure start a new one.
        """
        context = self.context
        if context is None:
            context = self.context = self.engine.snapshot(self.profile_id, self.state)
        return context

    def _emit_deferred(self, item: Deferred, at: float) -> None:
        """A deferred action comes due: it is emitted as decided, stamped with the emission time."""
        rule = self.engine._rules.get(item.rule_id)
        if rule is None:
            return
        action = item.action
        if not self._may_emit(rule, action["channel"], at, action["trigger_event_id"]):
            return
        decided_at = iso_utc(at)
        if action["decided_at"] != decided_at:
            action = {**action, "decided_at": decided_at}
        self._record(item.rule_id, Action(**action), at)

    def _may_emit(self, rule: Rule, channel: str, at: float, trigger_event_id: str) -> bool:
        """Consent and caps are judged at the moment of emission, deferred or not; counts the emission."""
        state = self.state
        if policy.consent_refused(state, channel):
            self._suppress(rule, "consent", at, trigger_event_id)
            return False
        policy.prune_emissions(state, at)
        if policy.cap_reached(state, self.engine.rules.contact_policy, channel, at):
            self._suppress(rule, "cap", at, trigger_event_id)
            return False
        state.emissions.append(Emission(at, channel))
        return True

    def _record(self, rule_id: str, action: Action, at: float) -> None:
        """Count the action for the rule's cooldown and goal; its group is read off it, as KPIs read it."""
        group = HOLDOUT_GROUP if action.status == "held_out" else action.variant or DEFAULT_GROUP
        state = self.state
        state.rule_last_at[rule_id] = at
        state.last_actions[rule_id] = LastAction(action.action_id, at, group)
        self.step.actions += (action,)

    def _suppress(self, rule: Rule, reason: str, at: float, trigger_event_id: str) -> None:
        self.step.suppressed += (Suppression(rule.id, self.profile_id, reason, at, trigger_event_id),)

    # -- privacy -----------------------------------------------------------------------------

    def _delete_profile(self) -> None:
        """Erasure or expiry (SPEC §7): forget everything but the consent opt-outs."""
        old = self.state
        self.step.erased = True
        self.step.forget_aliases = tuple(sorted(set(chain(self.step.forget_aliases, old.aliases))))
        opt_outs = {channel: False for channel, granted in old.consent.items() if granted is False}
        self.state = CustomerState(consent=opt_outs)
        self.context = self.quiet = None
