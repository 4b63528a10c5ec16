"""Customers: apply events and due waits to each profile's state with the engine, emit its actions.

The agent takes the messages of `journey.customers` that are waiting (`take_events`) and handles
each partition's messages as one batch, acting for that partition (`acting_for`) so every table
read and write of the batch stays in its store and changelog. Each profile touched by a batch is
decoded once, stepped, and written once; one delivery round trip serves every partition's batch.
Merges (docs/runtime.md): a profile expecting `merge_in` answers buffers its events in the
`merges` table until every answer arrived, so nothing in flight is lost or applied twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence

import faust

from orchestrator import metrics
from orchestrator.engine import CustomerState, Engine, Step, decode_state, encode_state
from orchestrator.logging import get_logger
from orchestrator.metrics import EventOutcome
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
from orchestrator.runtime.partition_scope import acting_for, by_partition
from orchestrator.runtime.pipeline import DUE, Outbox, Pipeline, now
from schemas import Touchpoint, parse_validated_touchpoint

log = get_logger(__name__)

# Messages handled together: one delivery round trip to the broker for all of them instead of one
# each. The window is short because every hop adds it to publish->action latency at low rates.
MESSAGES_MAX = 500
MESSAGES_WITHIN_S = 0.005


def register(pipeline: Pipeline) -> None:
    @pipeline.app.agent(pipeline.customers_topic, name="journey.customers")
    async def customers(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in stream.take_events(MESSAGES_MAX, within=MESSAGES_WITHIN_S):
            await handle_messages(pipeline, events)
            yield None  # take_events acks the messages after this: their output is delivered, state written


async def handle_messages(pipeline: Pipeline, events: Sequence[faust.EventT]) -> None:
    """One run per partition over its messages in order; one delivery for all; then each run's writes."""
    outbox = Outbox(pipeline)
    clock = now()
    runs: list[tuple[faust.EventT, CustomerBatchRun]] = []
    for partition, messages in by_partition(events).items():
        batch = CustomerBatchRun(pipeline, partition, clock, outbox)
        with acting_for(messages[-1]):
            for message in messages:
                batch.take(decode_customers(message.value).commands, message.message.offset)
            batch.settle()
        runs.append((messages[-1], batch))
    for _, batch in runs:
        await batch.deliver()
    await outbox.flush()
    await pipeline.write(runs)
    metrics.set_pending_waits(len(pipeline.index))


class CustomerBatchRun:
    """The work of one partition's messages: cached states, queued events, and what to send at the end."""

    def __init__(self, pipeline: Pipeline, partition: int, clock: float, outbox: Outbox) -> None:
        self.pipeline = pipeline
        self.engine: Engine = pipeline.rules.engine
        self.partition = partition
        self.now = clock
        self.outbox = outbox
        self.offset = 0  # of the message whose commands are being taken: dead letters name it
        self.states: dict[str, CustomerState | None] = {}
        self.stored: dict[str, bytes | None] = {}  # `profiles` as read: an unchanged value is not rewritten
        self.queued: dict[str, list[Touchpoint]] = {}
        self.queued_items: dict[str, list[tuple[Item, int]]] = {}
        self.failed: list[tuple[Item, int, str]] = []
        self.pendings: dict[str, PendingMerge | None] = {}
        self.dirty: set[str] = set()
        self.dirty_pendings: set[str] = set()
        self.advance: set[str] = set()
        self.actions: list[tuple[str, str, bytes]] = []
        self.steps: list[tuple[str, Step]] = []
        self.outcomes: Counter[tuple[str, EventOutcome]] = Counter()

    def take(self, commands: list[Deliver | Handoff | MergeIn | Tick], offset: int) -> None:
        """Apply one message's commands in order; events are queued until `settle`."""
        self.offset = offset
        for command in commands:
            if isinstance(command, Deliver):
                self._deliver(command)
            elif isinstance(command, Handoff):
                self._handoff(command)
            elif isinstance(command, MergeIn):
                self._merge_in(command)
            else:
                self._tick()

    def settle(self) -> None:
        """Step every profile with queued events or due waits, once each."""
        for profile in list(self.queued):
            self._step(profile)
        for profile in sorted(self.advance):
            self._step(profile)
        for profile in self.advance:  # still waiting for a merge: keep it in the index
            state = self._state(profile)
            if state is not None:
                self.pipeline.index.set(self.partition, profile, self.engine.next_due(state))
        for (channel, outcome), count in self.outcomes.items():
            metrics.record_events(channel, outcome, count)

    # --- reading, cached for the batch -------------------------------------------------------------
    def _state(self, profile: str) -> CustomerState | None:
        if profile not in self.states:
            raw = self.pipeline.profiles.get(profile)
            self.stored[profile] = raw
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
        self.queued.setdefault(profile, []).append(parse_validated_touchpoint(item.raw))
        self.queued_items.setdefault(profile, []).append((item, self.offset))

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
            reason = f"processing error: {type(exc).__name__}"
            self.failed.extend((item, offset, reason) for item, offset in items)
            return
        self._record(profile, step, events, [item.published for item, _ in items])

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
            self.outcomes[event.channel, "applied" if position < step.applied else "duplicate"] += 1
        stamped = [at for at in published if at > 0]
        if stamped and step.actions:
            metrics.observe_latency(self.now - min(stamped))
        if step.duplicates:
            log.info("duplicates_ignored", profile=profile, count=step.duplicates)

    # --- delivering, then writing ------------------------------------------------------------------
    async def deliver(self) -> None:
        """Hand the outbox every dead letter and action; the caller flushes it before `write`."""
        pipeline, outbox = self.pipeline, self.outbox
        topic = pipeline.customers_topic.get_topic_name()
        for item, offset, reason in self.failed:
            record = dead_letter_record(item.raw, topic, self.partition, offset, reason)
            await outbox.send(pipeline.dlq, value=record)
            metrics.record_dead_letter(dead_letter_kind(reason))
        for suffix, key, value in self.actions:
            await outbox.send(await pipeline.action_topic(suffix), key=key.encode(), value=value)

    def write(self) -> None:
        """Write the state the delivered output was decided from (call once the outbox is flushed)."""
        pipeline = self.pipeline
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

    def _write(self, profile: str) -> None:
        pipeline = self.pipeline
        state = self.states[profile]
        had_deadline = pipeline.index.due_of(profile) is not None
        stored = self.stored[profile] if profile in self.stored else pipeline.profiles.get(profile)
        if state is None:
            if stored is not None:
                del pipeline.profiles[profile]
            if had_deadline or pipeline.deadlines.get(profile) is not None:
                del pipeline.deadlines[profile]
            pipeline.index.set(self.partition, profile, None)
            pipeline.views.delete(profile)
            return
        raw = encode_state(state)
        if raw != stored:
            pipeline.profiles[profile] = raw
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
