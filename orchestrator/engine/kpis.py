"""KPI counts per rule and group, and the rows of SPEC §5 built from them.

Counts are keyed by action id, not incremented blindly, so an outcome seen twice (a redelivered
event in the live system) is counted once.
"""

from __future__ import annotations

from typing import Any

import msgspec

from orchestrator.engine.outcomes import Step
from orchestrator.rules.model import Rule, RuleSet

HOLDOUT = "holdout"
DEFAULT = "default"


class _Record(msgspec.Struct, array_like=True):
    rule_id: str
    group: str
    converted: bool = False


class KpiTally(msgspec.Struct):
    """action id → (rule, group, converted); small enough for replay, mergeable for the live system."""

    records: dict[str, _Record] = {}

    def add(self, step: Step) -> None:
        for action in step.actions:
            group = HOLDOUT if action.status == "held_out" else action.variant or DEFAULT
            self.records.setdefault(action.action_id, _Record(action.rule_id, group))
        for conversion in step.conversions:
            record = self.records.setdefault(
                conversion.action_id, _Record(conversion.rule_id, conversion.group)
            )
            record.converted = True

    def counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(rule, group) → (actions, conversions)."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for record in self.records.values():
            actions, conversions = out.get((record.rule_id, record.group), (0, 0))
            out[(record.rule_id, record.group)] = (actions + 1, conversions + int(record.converted))
        return out

    def encode(self) -> bytes:
        return msgspec.msgpack.encode(self)

    @classmethod
    def decode(cls, raw: bytes) -> KpiTally:
        return msgspec.msgpack.decode(raw, type=cls)


def rule_groups(rule: Rule) -> list[str]:
    groups = [v.id for v in rule.variants] or [DEFAULT]
    if rule.holdout > 0:
        groups.append(HOLDOUT)
    return groups


def kpi_rows(rules: RuleSet, counts: dict[tuple[str, str], tuple[int, int]]) -> list[dict[str, Any]]:
    """One row per rule and group, rules in file order, holdout last (SPEC §5)."""
    rows: list[dict[str, Any]] = []
    for rule in rules.rules:
        for group in rule_groups(rule):
            actions, conversions = counts.get((rule.id, group), (0, 0))
            rows.append(
                {
                    "rule_id": rule.id,
                    "group": group,
                    "actions": actions,
                    "conversions": conversions if rule.goal is not None else None,
                }
            )
    return with_rates(rows)


def sum_kpi_rows(row_lists: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Add up the rows of several workers (each counts the partitions it owns) and recompute rates."""
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for rows in row_lists:
        for row in rows:
            total = totals.setdefault(
                (row["rule_id"], row["group"]),
                {"rule_id": row["rule_id"], "group": row["group"], "actions": 0, "conversions": None},
            )
            total["actions"] += row["actions"]
            if row["conversions"] is not None:
                total["conversions"] = (total["conversions"] or 0) + row["conversions"]
    return with_rates(list(totals.values()))


def with_rates(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rate` = conversions / actions; `uplift` = rate − the rule's holdout rate (SPEC §5)."""
    holdout_rates = {row["rule_id"]: _rate(row) for row in rows if row["group"] == HOLDOUT}
    out: list[dict[str, Any]] = []
    for row in rows:
        rate = _rate(row)
        holdout_rate = holdout_rates.get(row["rule_id"])
        uplift = None
        if row["group"] != HOLDOUT and rate is not None and holdout_rate is not None:
            uplift = rate - holdout_rate
        out.append({**row, "rate": rate, "uplift": uplift})
    return out


def _rate(row: dict[str, Any]) -> float | None:
    if row["conversions"] is None or not row["actions"]:
        return None
    return row["conversions"] / row["actions"]
