"""Customers: apply events and due waits to each profile's state with the engine, emit its actions.

One message of `journey.customers` is one batch for one partition, so every table write of the
batch lands in that partition's changelog. Each profile touched by a batch is decoded once,
stepped, and written once. Merges (docs/runtime.md): a profile expecting `merge_in` answers
buffers its events in the `merges` table until every answer arrived, so nothing in flight is lost
or applied twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import faust

from orchestrator import metrics
from orchestrator.engine import CustomerState, Engine, Step, decode_state, encode_state
from orchestrator.logging import get_logger
from orchestrator.runtime.dead_letter import dead_letter_kind, dead_letter_record
from orchestrator.runtime.envelope import (
    Deliver,
    Forget,
    Handoff,
    Item,
    MergeIn,
    PendingMerge,
    Tick,
    decode_customers,
    decode_pending,
    encode,
)
from orchestrator.runtime.pipeline import DUE, Outbox, Pipeline, now
from schemas import Touchpoint, parse_touchpoint

log = get_logger(__name__)


def register(pipeline: Pipeline) -> None:
    @pipeline.app.agent(pipeline.customers_topic, name="journey.customers")
    async def customers(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            batch = CustomerBatchRun(pipeline, event.message.partition, now())
            batch.run(decode_customers(event.value).commands)
            await batch.finish(event.message.offset)
            yield None


class CustomerBatchRun:
    """The work of one batch message: cached states, queued events, and what to send at the end."""

    def __init__(self, pipeline: Pipeline, partition: int, clock: float) -> None:
        self.pipeline = pipeline
        self.engine: Engine = pipeline.rules.engine
        self.partition = partition
        self.now = clock
        self.outbox = Outbox(pipeline)
        self.states: dict[str, CustomerState | None] = {}
        self.queued: dict[str, list[Touchpoint]] = {}
        self.queued_items: dict[str, list[Item]] = {}
        self.failed: list[tuple[Item, str]] = []
        self.pendings: dict[str, PendingMerge | None] = {}
        self.dirty: set[str] = set()
        self.dirty_pendings: set[str] = set()
        self.advance: set[str] = set()
        self.actions: list[tuple[str, str, bytes]] = []
        self.steps: list[tuple[str, Step]] = []

    def run(self, commands: list[Deliver | Handoff | MergeIn | Tick]) -> None:
        for command in commands:
            if isinstance(command, Deliver):
                self._deliver(command)
            elif isinstance(command, Handoff):
                self._handoff(command)
            elif isinstance(command, MergeIn):
                self._merge_in(command)
            else:
                self._tick()
        for profile in list(self.queued):
            self._step(profile)
        for profile in sorted(self.advance):
            self._step(profile)
        for profile in self.advance:  # still waiting for a merge: keep it in the index
            state = self._state(profile)
            if state is not None:
                self.pipeline.index.set(self.partition, profile, self.engine.next_due(state))

    # --- reading, cached for the batch -------------------------------------------------------------
    def _state(self, profile: str) -> CustomerState | None:
        if profile not in self.states:
            raw = self.pipeline.profiles.get(profile)
            self.states[profile] = decode_state(raw) if raw is not None else None
        return self.states[profile]

    def _pending(self, profile: str) -> PendingMerge | None:
        if profile not in self.pendings:
            raw = self.pipeline.merges.get(profile)
            self.pendings[profile] = decode_pending(raw) if raw is not None else None
        return self.pendings[profile]

    def _set_pending(self, profile: str, pending: PendingMerge | None) -> None:
        if pending is not None and not (pending.expected or pending.arrived or pending.buffered):
            pending = None
        self.pendings[profile] = pending
        self.dirty_pendings.add(profile)

    # --- commands -----------------------------------------------------------------------------------
    def _deliver(self, command: Deliver) -> None:
        profile = command.profile
        pending = self._pending(profile)
        if command.expect or (pending is not None and pending.expected):
            self._step(profile)
            pending = pending or PendingMerge()
            for anon in command.expect:
                if anon in pending.arrived:
                    pending.arrived.remove(anon)
                elif anon not in pending.expected:
                    pending.expected.append(anon)
            pending.buffered.append(command.item)
            self._release_if_complete(profile, pending)
            return
        self._queue(profile, command.item)

    def _queue(self, profile: str, item: Item) -> None:
        self.queued.setdefault(profile, []).append(parse_touchpoint(item.raw))
        self.queued_items.setdefault(profile, []).append(item)

    def _release_if_complete(self, profile: str, pending: PendingMerge) -> None:
        if not pending.expected and pending.buffered:
            for item in pending.buffered:
                self._queue(profile, item)
            pending.buffered = []
            log.info("profile_merge_completed", profile=profile)
        self._set_pending(profile, pending)

    def _handoff(self, command: Handoff) -> None:
        self._step(command.anon)
        state = self._state(command.anon)
        raw = encode_state(state) if state is not None else None
        self.outbox.to_customers(command.into, MergeIn(source=command.anon, into=command.into, state=raw))
        self.states[command.anon] = None
        self.dirty.add(command.anon)

    def _merge_in(self, command: MergeIn) -> None:
        into = command.into
        self._step(into)
        pending = self._pending(into) or PendingMerge()
        if command.source in pending.expected:
            pending.expected.remove(command.source)
        elif command.source not in pending.arrived:
            pending.arrived.append(command.source)
        else:
            return  # a redelivered answer: its state is already merged
        if command.state is not None:
            self.states[into] = self.engine.merge(self._state(into), decode_state(command.state))
            self.dirty.add(into)
        self._release_if_complete(into, pending)

    def _tick(self) -> None:
        self.pipeline.ticks_in_flight.pop(self.partition, None)
        for profile, due in self.pipeline.index.pop_due(self.partition, self.now):
            metrics.observe_wait_fire_delay(self.now - due)
            self.advance.add(profile)

    # --- stepping -----------------------------------------------------------------------------------
    def _step(self, profile: str) -> None:
        """Apply what is queued for `profile` (and fire what is due), unless it waits for a merge."""
        pending = self._pending(profile)
        if pending is not None and pending.expected:
            return
        events = self.queued.pop(profile, [])
        items = self.queued_items.pop(profile, [])
        state = self._state(profile)
        if not events and (profile not in self.advance or state is None):
            self.advance.discard(profile)
            return
        self.advance.discard(profile)
        try:
            step = (
                self.engine.apply(profile, state, events, self.now)
                if events
                else self.engine.advance(profile, state, self.now)
            )
        except Exception as exc:
            # An engine bug must not wedge the partition on one message forever: the profile keeps
            # its state, its events go to the dead-letter topic, the batch goes on.
            log.exception("engine_error", profile=profile, event_ids=[e.event_id for e in events])
            self.failed.extend((item, f"processing error: {type(exc).__name__}") for item in items)
            return
        self._record(profile, step, events, [item.published for item in items])

    def _record(self, profile: str, step: Step, events: list[Touchpoint], published: list[float]) -> None:
        self.states[profile] = step.state
        self.dirty.add(profile)
        self.steps.append((profile, step))
        for action in step.actions:
            suffix = action.topic_suffix
            self.actions.append((suffix, action.customer_id, action.to_json()))
            metrics.record_action(action)
        for suppression in step.suppressed:
            metrics.record_suppressed(suppression.rule_id, suppression.reason)
        for conversion in step.conversions:
            metrics.record_conversion(conversion.rule_id, conversion.group)
        for alias in step.forget_aliases:
            self.outbox.to_identity(alias, Forget(alias=alias, profile=profile))
        for position, event in enumerate(events):
            metrics.record_event(event.channel, "applied" if position < step.applied else "duplicate")
        stamped = [at for at in published if at > 0]
        if stamped and step.actions:
            metrics.observe_latency(self.now - min(stamped))
        if step.duplicates:
            log.info("duplicates_ignored", profile=profile, count=step.duplicates)

    # --- writing ------------------------------------------------------------------------------------
    async def finish(self, offset: int) -> None:
        """Deliver everything the batch decided, then write its state (see `Outbox`)."""
        pipeline, outbox = self.pipeline, self.outbox
        topic = pipeline.customers_topic.get_topic_name()
        for item, reason in self.failed:
            record = dead_letter_record(item.raw, topic, self.partition, offset, reason)
            await outbox.send(pipeline.dlq, value=record)
            metrics.record_dead_letter(dead_letter_kind(reason))
        for suffix, key, value in self.actions:
            await outbox.send(await pipeline.action_topic(suffix), key=key.encode(), value=value)
        await outbox.flush()
        for profile, step in self.steps:
            pipeline.kpis.record(profile, step)
        for profile in self.dirty:
            self._write(profile)
        for profile in self.dirty_pendings:
            pending = self.pendings[profile]
            if pending is None:
                if pipeline.merges.get(profile) is not None:
                    del pipeline.merges[profile]
            else:
                pipeline.merges[profile] = encode(pending)
        metrics.set_pending_waits(len(pipeline.index))

    def _write(self, profile: str) -> None:
        pipeline = self.pipeline
        state = self.states[profile]
        had_deadline = pipeline.index.due_of(profile) is not None
        if state is None:
            if pipeline.profiles.get(profile) is not None:
                del pipeline.profiles[profile]
            if had_deadline or pipeline.deadlines.get(profile) is not None:
                del pipeline.deadlines[profile]
            pipeline.index.set(self.partition, profile, None)
            pipeline.views.delete(profile)
            return
        pipeline.profiles[profile] = encode_state(state)
        due = self.engine.next_due(state)
        if due != pipeline.index.due_of(profile):
            if due is None:
                if pipeline.deadlines.get(profile) is not None:
                    del pipeline.deadlines[profile]
            else:
                pipeline.deadlines[profile] = DUE.pack(due)
            pipeline.index.set(self.partition, profile, due)
        view = self.engine.context_view(profile, state)
        if view is None:
            pipeline.views.delete(profile)
        else:
            pipeline.views.put(profile, view)
