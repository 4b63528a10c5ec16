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
from orchestrator.engine.kpis import KpiTally
from orchestrator.engine.state import CustomerState
from schemas import Touchpoint


class _Snapshot(msgspec.Struct):
    clock: float | None
    aliases: dict[str, str]
    states: dict[str, bytes]
    kpis: bytes


@dataclass
class Replay:
    """Feed events one by one; collect every Step in decision order."""

    engine: Engine
    states: dict[str, CustomerState] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    clock: float | None = None
    kpis: KpiTally = field(default_factory=KpiTally)
    _heap: list[tuple[float, str]] = field(default_factory=list)

    def feed(self, event: Touchpoint) -> Iterator[Step]:
        """Advance the clock to the event's time (firing what is due), then apply the event."""
        yield from self.advance_to(event.ts)
        resolution = resolve_identity(event, self.aliases.get)
        profile = resolution.profile_id
        for alias in resolution.links:
            self.aliases[alias] = profile
        state = self.states.pop(profile, None)
        for other in resolution.merge_from:
            state = self.engine.merge(state, self.states.pop(other, None))
        assert self.clock is not None
        yield self._store(profile, self.engine.apply(profile, state, [event], self.clock))

    def advance_to(self, moment: float) -> Iterator[Step]:
        """Move the clock forward (never back) and fire every deadline it passes, in order."""
        if self.clock is not None and moment <= self.clock:
            return
        while self._heap and self._heap[0][0] <= moment:
            due, profile = heapq.heappop(self._heap)
            state = self.states.get(profile)
            if state is None or self.engine.next_due(state) != due:
                continue  # stale entry: the profile changed since it was indexed
            yield self._store(profile, self.engine.advance(profile, self.states.pop(profile), due))
        self.clock = moment

    def run(self, events: Iterable[Touchpoint], until: float | None = None) -> Iterator[Step]:
        for event in events:
            yield from self.feed(event)
        if until is not None:
            yield from self.advance_to(until)

    def _store(self, profile: str, step: Step) -> Step:
        for alias in step.forget_aliases:
            if self.aliases.get(alias) == profile:  # re-linked to another customer since: theirs now
                del self.aliases[alias]
        if step.state is None:
            self.states.pop(profile, None)
        else:
            self.states[profile] = step.state
            due = self.engine.next_due(step.state)
            if due is not None:
                heapq.heappush(self._heap, (due, profile))
        self.kpis.add(step)
        return step

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
            due = engine.next_due(state)
            if due is not None:
                heapq.heappush(replay._heap, (due, profile))
        return replay
