"""Live KPI counts: one record per action and per conversion in a changelogged table, counts in memory.

Keying by action id is what makes the counts exact under at-least-once delivery: an action or a
conversion seen again (a redelivered batch after a crash) finds its record and counts nothing.

Actions and conversions are separate records (`a:<id>`, `c:<id>`), each written by the profile being
processed, so each lives in that profile's partition. That matters after a merge: an anonymous
profile's action is recorded in the anonymous partition, while its conversion happens on the customer's
partition, where a Faust table lookup cannot see the other partition's record. Each worker counts the
records of the partitions it owns, so the workers' rows add up to the whole (`sum_kpi_rows`).

The per-(rule, group) counts are rebuilt from the table of the partitions this worker owns after
every rebalance — the same pattern as the deadline index — so restarts and partition moves keep
them without a full scan per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from orchestrator.engine import Step
from orchestrator.engine.kpis import DEFAULT, HOLDOUT
from orchestrator.runtime.changelog import BatchedChangelogTable

GroupKey = tuple[str, str]
ACTION = b"a:"
CONVERSION = b"c:"


class _Outcome(msgspec.Struct, array_like=True):
    rule_id: str
    group: str
    profile: str  # whose partition holds the record: the worker owning it counts it after a rebalance


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Outcome)


class KpiLedger:
    def __init__(self, table: BatchedChangelogTable) -> None:
        self.table = table
        self._counts: dict[GroupKey, list[int]] = {}

    def record(self, profile: str, step: Step) -> None:
        """Count the step's actions and conversions once each; call from the customers agent only."""
        for action in step.actions:
            group = HOLDOUT if action.status == "held_out" else action.variant or DEFAULT
            if self._first(ACTION + action.action_id.encode(), _Outcome(action.rule_id, group, profile)):
                self._counts.setdefault((action.rule_id, group), [0, 0])[0] += 1
        for conversion in step.conversions:
            outcome = _Outcome(conversion.rule_id, conversion.group, profile)
            if self._first(CONVERSION + conversion.action_id.encode(), outcome):
                self._counts.setdefault((conversion.rule_id, conversion.group), [0, 0])[1] += 1

    def _first(self, key: bytes, outcome: _Outcome) -> bool:
        """Write the record unless it exists; True when it is new (and so counts)."""
        if self.table.get(key) is not None:
            return False
        self.table[key] = _ENCODER.encode(outcome)
        return True

    def rebuild(self, owned: Iterable[int], partition_of: Callable[[str], int]) -> None:
        """Recount from the table entries of the partitions this worker now owns."""
        owned_set = set(owned)
        counts: dict[GroupKey, list[int]] = {}
        for key, raw in self.table.items():
            outcome = _DECODER.decode(raw)
            if partition_of(outcome.profile) not in owned_set:
                continue
            slot = counts.setdefault((outcome.rule_id, outcome.group), [0, 0])
            slot[0 if bytes(key).startswith(ACTION) else 1] += 1
        self._counts = counts

    def counts(self) -> dict[GroupKey, tuple[int, int]]:
        return {key: (actions, conversions) for key, (actions, conversions) in self._counts.items()}
