"""What one engine call returns: the new state and everything decided along the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from orchestrator.engine.state import CustomerState
from schemas import Action


@lru_cache(maxsize=4096)
def iso_utc(ts: float) -> str:
    """RFC 3339 in UTC with a `Z`; whole seconds print without a fraction.

    Cached: one event's time is formatted for each of its decisions, and replays revisit the same
    instants (waits ending together, quiet hours ending at the same minute).
    """
    moment = datetime.fromtimestamp(ts, UTC)
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Suppression:
    """A decision that was not sent: cooldown, cap, consent, quiet_hours or recheck."""

    rule_id: str
    customer_id: str
    reason: str
    at: float
    trigger_event_id: str

    def explain(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "customer_id": self.customer_id,
            "status": "suppressed",
            "reason": self.reason,
            "decided_at": iso_utc(self.at),
            "trigger_event_id": self.trigger_event_id,
        }


@dataclass(frozen=True, slots=True)
class Deferral:
    """A marketing action held by quiet hours until `until`."""

    rule_id: str
    customer_id: str
    action_id: str
    at: float
    until: float
    trigger_event_id: str

    def explain(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "customer_id": self.customer_id,
            "action_id": self.action_id,
            "status": "deferred",
            "reason": "quiet_hours",
            "decided_at": iso_utc(self.at),
            "until": iso_utc(self.until),
            "trigger_event_id": self.trigger_event_id,
        }


@dataclass(frozen=True, slots=True)
class Conversion:
    """A goal event converting the customer's latest action of a rule (SPEC §5, last touch)."""

    rule_id: str
    group: str
    action_id: str
    customer_id: str
    at: float


@dataclass(slots=True)
class Step:
    state: CustomerState | None
    actions: list[Action] = field(default_factory=list)
    suppressed: list[Suppression] = field(default_factory=list)
    deferred: list[Deferral] = field(default_factory=list)
    conversions: list[Conversion] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    forget_aliases: list[str] = field(default_factory=list)
    erased: bool = False
