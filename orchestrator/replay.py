"""`journey replay`'s driver: the engine run offline over events in file order, clock = event time.

It plays the part the worker plays live — alias map, profile store, a heap of deadlines — with
plain dicts, so a dry run decides exactly what production would. The clock is the latest
`occurred_at` seen; when it moves, every profile's due items fire in end-time order first.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import msgspec

from orchestrator.engine import Engine, Step, decode_state, encode_state, resolve_identity
from orchestrator.engine.identity import direct_profile
from orchestrator.engine.kpis import KpiTally
from orchestrator.engine.state import CustomerState
from schemas import Touchpoint

_NOTHING = float("inf")  # a timer's due time when its profile has nothing left to fire


class _Snapshot(msgspec.Struct):
    clock: float | None
    aliases: dict[str, str]
    states: dict[str, bytes]
    kpis: bytes


@dataclass
class Replay:
    """Drive the engine over events in order, firing deadlines as the clock passes them; every Step
    comes out in decision order.

    Deadlines fire in (due time, profile) order. The index is lazy: a profile's entry is only a
    lower bound of its next due time, made when that time moves earlier. Every event moves the
    profile's expiry a little later, so indexing each stored state, as a timer index would, filled
    the heap with entries that were never due; an entry reached early is made again at the
    profile's real due time, which keeps the firing order exactly that of a complete index. The
    heap holds due times only, each with the profiles indexed there: floats compare several
    times faster than (time, profile) tuples. A profile's timer is one list, `[due, indexed]`: its
    state's next due time (`_NOTHING` once nothing is left to fire) and its earliest entry, so storing a
    state reads and updates one dict entry.
    """

    engine: Engine
    states: dict[str, CustomerState] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    clock: float | None = None
    kpis: KpiTally = field(default_factory=KpiTally)
    _heap: list[float] = field(default_factory=list)  # the due times in `_entries`
    _entries: dict[float, list[str]] = field(default_factory=dict)  # due time → profiles indexed there
    _timers: dict[str, list[float]] = field(default_factory=dict)  # profile → [due, indexed]

    def advance_to(self, moment: float) -> Iterator[Step]:
        """Move the clock forward (never back) and fire every deadline it passes, in order."""
        if self.clock is not None and moment <= self.clock:
            return
        heap, timers = self._heap, self._timers
        while heap and heap[0] <= moment:
            entry = heapq.heappop(heap)
            # Firing indexes nothing at `entry` again (what is left is due later), so this is all.
            for profile in sorted(self._entries.pop(entry)):
                timer = timers.get(profile)
                if timer is None or timer[1] != entry:
                    continue  # superseded by an earlier entry, which has been reached already
                del timers[profile]
                due = timer[0]
                if due == _NOTHING:
                    continue  # the profile has been erased or has nothing left to fire
                if due != entry:  # the profile's due time moved later since: index it there
                    self._enter(profile, due)
                    continue
                yield self._store(profile, self.engine.advance(profile, self.states.pop(profile), due))
        self.clock = moment

    def run(self, events: Iterable[Touchpoint], until: float | None = None) -> Iterator[Step]:
        """Advance the clock to each event's time (firing what is due), then apply the event.

        The clock moves inline when no deadline is due yet: most events find none.
        """
        heap = self._heap
        for event in events:
            moment = event.ts
            if heap and heap[0] <= moment:
                yield from self.advance_to(moment)
            elif self.clock is None or moment > self.clock:
                self.clock = moment
            yield self._apply(event)
        if until is not None:
            yield from self.advance_to(until)

    def _apply(self, event: Touchpoint) -> Step:
        """Resolve the event's profile (linking and merging as `identify` says) and apply it."""
        profile = direct_profile(event)
        if profile is None:
            resolution = resolve_identity(event, self.aliases.get)
            profile = resolution.profile_id
            for alias in resolution.links:
                self.aliases[alias] = profile
            state = self.states.pop(profile, None)
            for other in resolution.merge_from:
                state = self.engine.merge(state, self.states.pop(other, None))
                self._forget_due(other)  # its deadlines are the merged profile's now
        else:
            state = self.states.pop(profile, None)
        assert self.clock is not None
        return self._store(profile, self.engine.apply(profile, state, [event], self.clock))

    def _store(self, profile: str, step: Step) -> Step:
        for alias in step.forget_aliases:
            if self.aliases.get(alias) == profile:  # re-linked to another customer since: theirs now
                del self.aliases[alias]
        state = step.state
        if state is None:
            self.states.pop(profile, None)
            self._forget_due(profile)
        else:
            self.states[profile] = state
            self._index(profile, state)
        if step.actions or step.conversions:
            self.kpis.add(step)
        return step

    def _index(self, profile: str, state: CustomerState) -> None:
        """Record the profile's next due time; index it only if that is earlier than its entry."""
        due = self.engine.next_due(state)
        timer = self._timers.get(profile)
        if timer is None:
            if due is not None:
                self._enter(profile, due)
            return
        if due is None:
            timer[0] = _NOTHING
        elif due < timer[1]:
            self._enter(profile, due)
        else:
            timer[0] = due

    def _forget_due(self, profile: str) -> None:
        """The profile has nothing left to fire; an entry it still has is skipped when reached."""
        timer = self._timers.get(profile)
        if timer is not None:
            timer[0] = _NOTHING

    def _enter(self, profile: str, due: float) -> None:
        entries = self._entries.get(due)
        if entries is None:
            self._entries[due] = [profile]
            heapq.heappush(self._heap, due)
        else:
            entries.append(profile)
        self._timers[profile] = [due, due]

    def snapshot(self) -> bytes:
        """Everything needed to resume later: the split-and-resume property relies on it."""
        return msgspec.msgpack.encode(
            _Snapshot(
                clock=self.clock,
                aliases=dict(self.aliases),
                states={p: encode_state(s) for p, s in self.states.items()},
                kpis=self.kpis.encode(),
            )
        )

    @classmethod
    def resume(cls, engine: Engine, raw: bytes) -> Replay:
        snap = msgspec.msgpack.decode(raw, type=_Snapshot)
        replay = cls(engine, aliases=snap.aliases, clock=snap.clock, kpis=KpiTally.decode(snap.kpis))
        for profile, blob in snap.states.items():
            state = decode_state(blob)
            replay.states[profile] = state
            replay._index(profile, state)
        return replay
