"""Live KPI counts: outcomes keyed by action id in a changelogged table, counts kept in memory.

Keying by action id is what makes the counts exact under at-least-once delivery: an action or a
conversion seen again (a redelivered batch after a crash) finds its record and counts nothing.
The per-(rule, group) counts are rebuilt from the table of the partitions this worker owns after
every rebalance — the same pattern as the deadline index — so restarts and partition moves keep
them without a full scan per request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import faust
import msgspec

from orchestrator.engine import Step
from orchestrator.engine.kpis import HOLDOUT

GroupKey = tuple[str, str]


class _Outcome(msgspec.Struct, array_like=True):
    rule_id: str
    group: str
    profile: str
    converted: bool = False


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Outcome)


class KpiLedger:
    def __init__(self, table: faust.Table) -> None:
        self.table = table
        self._counts: dict[GroupKey, list[int]] = {}

    def record(self, profile: str, step: Step) -> None:
        """Count the step's actions and conversions once each; call from the customers agent only."""
        for action in step.actions:
            key = action.action_id.encode()
            if self.table.get(key) is None:
                group = HOLDOUT if action.status == "held_out" else action.variant or "default"
                self.table[key] = _ENCODER.encode(_Outcome(action.rule_id, group, profile))
                self._counts.setdefault((action.rule_id, group), [0, 0])[0] += 1
        for conversion in step.conversions:
            key = conversion.action_id.encode()
            raw = self.table.get(key)
            outcome = _DECODER.decode(raw) if raw is not None else None
            if outcome is None or outcome.converted:
                continue
            outcome.converted = True
            self.table[key] = _ENCODER.encode(outcome)
            self._counts.setdefault((outcome.rule_id, outcome.group), [0, 0])[1] += 1

    def rebuild(self, owned: Iterable[int], partition_of: Any) -> None:
        """Recount from the table entries of the partitions this worker now owns."""
        owned_set = set(owned)
        counts: dict[GroupKey, list[int]] = {}
        for _key, raw in self.table.items():
            outcome = _DECODER.decode(raw)
            if partition_of(outcome.profile) not in owned_set:
                continue
            slot = counts.setdefault((outcome.rule_id, outcome.group), [0, 0])
            slot[0] += 1
            slot[1] += int(outcome.converted)
        self._counts = counts

    def counts(self) -> dict[GroupKey, tuple[int, int]]:
        return {key: (actions, conversions) for key, (actions, conversions) in self._counts.items()}
