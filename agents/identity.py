"""Identity: resolve each event to its profile through the alias map, then re-key it by profile.

The alias map is partitioned like `journey.identity`: an alias lives in the partition its key
hashes to, and only that partition answers for it. An event is routed by its first alias key;
when its resolution needs an alias owned by another partition it hops there (`Route.known`
carries the answers so far). Links to aliases of other partitions are sent to their owners.
The agent takes the waiting messages (`take_events`) and handles each partition's messages in
order as one batch, acting for that partition (`acting_for`) so alias reads and writes stay in its
store and changelog; one delivery round trip serves every partition's batch.
See docs/runtime.md for the merge protocol and the limits of this scheme.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import faust

from orchestrator.engine import resolve_identity
from orchestrator.logging import get_logger
from orchestrator.runtime.dead_letter import dead_letter_record
from orchestrator.runtime.envelope import Deliver, Forget, Handoff, Link, Route, decode_identity
from orchestrator.runtime.partition_scope import acting_for, by_partition
from orchestrator.runtime.pipeline import Outbox, Pipeline
from schemas import parse_validated_touchpoint

log = get_logger(__name__)
UNKNOWN = ""
# Messages handled together (see agents/customers.py): one delivery round trip for all of them.
MESSAGES_MAX = 500
MESSAGES_WITHIN_S = 0.005


def register(pipeline: Pipeline) -> None:
    @pipeline.app.agent(pipeline.identity_topic, name="journey.identity")
    async def identity(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for events in stream.take_events(MESSAGES_MAX, within=MESSAGES_WITHIN_S):
            await handle_messages(pipeline, events)
            yield None  # take_events acks the messages after this: their output is delivered, aliases written


async def handle_messages(pipeline: Pipeline, events: Sequence[faust.EventT]) -> None:
    """One run per partition over its messages in order; one delivery for all; then each run's writes."""
    outbox = Outbox(pipeline)
    runs: list[tuple[faust.EventT, IdentityBatchRun]] = []
    for partition, messages in by_partition(events).items():
        batch = IdentityBatchRun(pipeline, partition, messages[0].message.offset, outbox)
        with acting_for(messages[-1]):
            for message in messages:
                batch.offset = message.message.offset
                await batch.run(decode_identity(message.value).commands)
        runs.append((messages[-1], batch))
    await outbox.flush()
    await pipeline.write(runs)


class IdentityBatchRun:
    """One partition's messages: alias changes are staged, delivered output first, then written.

    Later events of the same batch read the staged changes, so an `identify` and the anonymous
    events right behind it resolve alike whether or not they share a batch.
    """

    def __init__(self, pipeline: Pipeline, partition: int, offset: int, outbox: Outbox | None = None) -> None:
        self.pipeline = pipeline
        self.partition = partition
        self.offset = offset  # of the message being run: dead letters name it
        self.outbox = outbox if outbox is not None else Outbox(pipeline)
        self.staged: dict[str, str | None] = {}

    async def run(self, commands: list[Route | Link | Forget]) -> None:
        for command in commands:
            if isinstance(command, Route):
                try:
                    self._route(command)
                except Exception as exc:  # never wedge the partition on one event: dead-letter it
                    log.exception("identity_error", partition=self.partition, offset=self.offset)
                    record = dead_letter_record(
                        command.item.raw,
                        self.pipeline.identity_topic.get_topic_name(),
                        self.partition,
                        self.offset,
                        f"processing error: {type(exc).__name__}",
                    )
                    await self.outbox.send(self.pipeline.dlq, value=record)
            elif isinstance(command, Link):
                self.staged[command.alias] = command.profile
            elif self._alias(command.alias) == command.profile:
                self.staged[command.alias] = None

    def write(self) -> None:
        """Write the staged alias changes (call once the outbox is flushed)."""
        aliases = self.pipeline.aliases
        for alias, profile in self.staged.items():
            if profile is not None:
                aliases[alias] = profile.encode()
            elif aliases.get(alias) is not None:
                del aliases[alias]

    def _alias(self, key: str) -> str:
        if key in self.staged:
            return self.staged[key] or UNKNOWN
        value = self.pipeline.aliases.get(key)
        return value.decode() if value is not None else UNKNOWN

    def _lookup_local(self, route: Route) -> None:
        for key in route.keys:
            if key not in route.known and self.pipeline.partition(key) == self.partition:
                route.known[key] = self._alias(key)

    def _route(self, route: Route) -> None:
        pipeline, outbox = self.pipeline, self.outbox
        if route.profile:  # decided at ingest: no lookup, link or merge
            outbox.to_customers(route.profile, Deliver(profile=route.profile, item=route.item))
            return
        touchpoint = parse_validated_touchpoint(route.item.raw)
        needs_all = bool(touchpoint.customer_id) and touchpoint.type == "identify"
        needs_any = not touchpoint.customer_id
        if needs_all or needs_any:
            self._lookup_local(route)
            hop = _next_hop(route, needs_all)
            if hop is not None:
                outbox.to_identity(hop, route)
                return
        resolution = resolve_identity(touchpoint, lambda key: route.known.get(key) or None)
        profile = resolution.profile_id
        for key in resolution.links:
            if pipeline.partition(key) == self.partition:
                self.staged[key] = profile
            else:
                outbox.to_identity(key, Link(alias=key, profile=profile))
        for anon in resolution.merge_from:
            outbox.to_customers(anon, Handoff(anon=anon, into=profile))
        if resolution.merge_from:
            log.info(
                "profile_merge_started",
                profile=profile,
                merge_from=resolution.merge_from,
                event_id=touchpoint.event_id,
            )
        outbox.to_customers(profile, Deliver(profile=profile, item=route.item, expect=resolution.merge_from))


def _next_hop(route: Route, needs_all: bool) -> str | None:
    """The next alias whose owner must be asked, or None when the answers so far decide."""
    for key in route.keys:
        answer = route.known.get(key)
        if answer is None:
            return key
        if answer != UNKNOWN and not needs_all:
            return None
    return None
