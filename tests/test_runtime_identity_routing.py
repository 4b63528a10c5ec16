"""The identity hop logic of `agents/identity.py` across partitions, without a broker.

A dict per partition plays the part of that partition's slice of the alias table, so the test shows
that each alias is only ever read and written in the partition that owns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from agents.identity import IdentityBatchRun
from agents.ingest import Accepted, triage
from orchestrator.runtime.envelope import (
    CustomerCommand,
    Deliver,
    Handoff,
    IdentityCommand,
    Item,
    Link,
    Route,
)
from orchestrator.runtime.partitioning import partition_for

PARTITIONS = 4


@dataclass
class AliasSlices:
    """`aliases` as seen from the partition being processed: reads and writes must stay in it."""

    slices: dict[int, dict[str, bytes]] = field(default_factory=lambda: {p: {} for p in range(PARTITIONS)})
    current: int = 0

    def _owned(self, key: str) -> dict[str, bytes]:
        assert partition_for(key, PARTITIONS) == self.current, f"{key} read outside its partition"
        return self.slices[self.current]

    def get(self, key: str) -> bytes | None:
        return self._owned(key).get(key)

    def __setitem__(self, key: str, value: bytes) -> None:
        self._owned(key)[key] = value


@dataclass
class FakePipeline:
    aliases: AliasSlices = field(default_factory=AliasSlices)

    def partition(self, key: str) -> int:
        return partition_for(key, PARTITIONS)


def run(pipeline: FakePipeline, event: dict[str, Any]) -> list[CustomerCommand]:
    """Route one event as ingest would, then play every identity hop until it reaches customers.

    Each hop is one `IdentityBatchRun` on its partition; its staged alias writes are applied after
    it, as `finish` does once its output is delivered.
    """
    raw = orjson.dumps({"occurred_at": "2026-05-04T09:00:00Z", "channel": "web", **event})
    decision = triage(raw)
    assert isinstance(decision, Accepted)
    route = Route(Item(raw, "web", 0.0), decision.keys, profile=decision.profile)
    pending: dict[int, list[IdentityCommand]] = {partition_for(decision.route_key, PARTITIONS): [route]}
    customers: list[CustomerCommand] = []
    hops = 0
    while pending:
        partition, commands = pending.popitem()
        pipeline.aliases.current = partition
        batch = IdentityBatchRun(pipeline, partition, offset=0)  # type: ignore[arg-type]
        for command in commands:
            if isinstance(command, Route):
                batch._route(command)
            elif isinstance(command, Link):
                batch.staged[command.alias] = command.profile
        for alias, profile in batch.staged.items():
            assert profile is not None
            pipeline.aliases[alias] = profile.encode()
        for target, routed in batch.outbox.identity.items():
            pending.setdefault(target, []).extend(routed)
        for delivered in batch.outbox.customers.values():
            customers.extend(delivered)
        hops += 1
        assert hops < 10
    return customers


def delivered_to(commands: list[CustomerCommand]) -> str:
    (deliver,) = [c for c in commands if isinstance(c, Deliver)]
    return deliver.profile


def test_unknown_identifiers_start_a_profile_from_the_first_in_name_order() -> None:
    pipeline = FakePipeline()
    commands = run(
        pipeline,
        {"event_id": "e1", "type": "page.viewed", "identifiers": {"loyalty_card": "L1", "device_id": "D1"}},
    )
    assert delivered_to(commands) == "anon:device_id:D1"


def test_identify_links_every_alias_and_later_events_resolve_by_any_of_them() -> None:
    pipeline = FakePipeline()
    commands = run(
        pipeline,
        {
            "event_id": "e1",
            "type": "identify",
            "customer_id": "c-1",
            "anonymous_id": "a-1",
            "identifiers": {"device_id": "D1"},
        },
    )
    handoffs = sorted(c.anon for c in commands if isinstance(c, Handoff))
    assert handoffs == ["anon:a-1", "anon:device_id:D1"]
    (deliver,) = [c for c in commands if isinstance(c, Deliver)]
    assert deliver.profile == "c-1" and sorted(deliver.expect) == handoffs
    # the first alias is unknown and owned by another partition: the event hops to the second one
    assert partition_for("anon:a_card:X", PARTITIONS) != partition_for("anon:device_id:D1", PARTITIONS)
    later = run(
        pipeline, {"event_id": "e2", "type": "page.viewed", "identifiers": {"device_id": "D1", "a_card": "X"}}
    )
    assert delivered_to(later) == "c-1"
    by_anon = run(pipeline, {"event_id": "e3", "type": "page.viewed", "anonymous_id": "a-1"})
    assert delivered_to(by_anon) == "c-1"


def test_a_customer_event_needs_no_lookup() -> None:
    commands = run(
        FakePipeline(), {"event_id": "e1", "type": "page.viewed", "customer_id": "c-9", "anonymous_id": "a-9"}
    )
    assert [type(c) for c in commands] == [Deliver] and delivered_to(commands) == "c-9"


def test_only_events_that_need_no_lookup_skip_identitys_parse() -> None:
    """Ingest names the profile of an event that needs no alias work; identity then forwards it as is."""
    def profile_of(event: dict[str, Any]) -> str:
        decision = triage(orjson.dumps({"occurred_at": "2026-05-04T09:00:00Z", "channel": "web", **event}))
        assert isinstance(decision, Accepted)
        return decision.profile

    known = {"customer_id": "c-9", "anonymous_id": "a"}
    assert profile_of({"event_id": "e1", "type": "page.viewed", **known}) == "c-9"
    assert profile_of({"event_id": "e2", "type": "identify", **known}) == ""
    assert profile_of({"event_id": "e3", "type": "page.viewed", "anonymous_id": "a"}) == ""
