"""The typed, validated form of a rule set: what the loader produces and the engine consumes.

Everything here is immutable and already checked: durations are seconds, percentages are
fractions, expressions are compiled. The engine never sees YAML and never re-validates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from orchestrator.rules.expr import Expression, Template

Category = Literal["marketing", "service"]
Reentry = Literal["restart", "ignore"]
QuietHoursMode = Literal["defer", "drop", "ignore"]


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local-time window `[start, end)`, in minutes since midnight; `start == end` means none."""

    start_minute: int
    end_minute: int


@dataclass(frozen=True, slots=True)
class Defaults:
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    quiet_hours: QuietHours | None = None
    profile_ttl_s: float | None = None


@dataclass(frozen=True, slots=True)
class ContactPolicy:
    """Caps over emitted marketing actions in a rolling 24 h window; `None` means no cap."""

    max_per_day: int | None = None
    channel_max_per_day: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Geofence:
    """A circle; `lat_rad` and `cos_lat` are derived once, for the distance every location update takes."""

    id: str
    lat: float
    lon: float
    radius_m: float
    lat_rad: float = field(init=False, repr=False, compare=False)
    cos_lat: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lat_rad", math.radians(self.lat))
        object.__setattr__(self, "cos_lat", math.cos(self.lat_rad))


@dataclass(frozen=True, slots=True)
class Counter:
    name: str
    on: frozenset[str]
    reset_on: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Trigger:
    event: str
    channels: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Wait:
    for_s: float
    cancel_on: frozenset[str] = frozenset()
    recheck: Expression | None = None


@dataclass(frozen=True, slots=True)
class Variant:
    id: str
    weight: float
    params: Template | None = None


@dataclass(frozen=True, slots=True)
class Goal:
    event: str
    within_s: float
    channels: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class ActionSpec:
    type: str
    category: Category
    params: Template
    context: bool = False

    @property
    def channel(self) -> str:
        return self.type.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    index: int
    version: str
    trigger: Trigger
    action: ActionSpec
    description: str = ""
    priority: int = 0
    condition: Expression | None = None
    wait: Wait | None = None
    reentry: Reentry = "restart"
    cooldown_s: float | None = None
    holdout: float = 0.0
    quiet_hours: QuietHoursMode = "defer"
    variants: tuple[Variant, ...] = ()
    goal: Goal | None = None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A whole loaded set (one file or a folder), versioned as one unit."""

    version: str
    rules: tuple[Rule, ...]
    defaults: Defaults = field(default_factory=Defaults)
    contact_policy: ContactPolicy = field(default_factory=ContactPolicy)
    geofences: tuple[Geofence, ...] = ()
    counters: tuple[Counter, ...] = ()
    sources: tuple[str, ...] = ()

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)
