"""Prometheus metrics of a worker: the names of SPEC §6 that dashboards and alerts rely on.

Seam with the worker: import the module-level functions (`record_event`, `record_action`,
`record_suppressed`, `record_conversion`, `observe_latency`, `observe_wait_fire_delay`,
`set_pending_waits`, `rules_loaded`, `record_dead_letter`) — they write to the process-wide
`METRICS`. Tests and the standalone dashboard build their own `JourneyMetrics()` so nothing leaks
between them. `render()` is what `/metrics` serves.

Lag gauges are written only by `orchestrator.lag.LagSampler` on the one exporting worker (see there),
so Prometheus never sums two copies of the same partition.

Labels never carry personal data: rule ids, channels, action types, fixed reason vocabularies.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from orchestrator.lag import LagReport
    from schemas import Action

EventOutcome = Literal["applied", "duplicate", "dead_lettered"]
DEAD_LETTER_KINDS: Final = frozenset(
    {"invalid_json", "invalid_event", "too_large", "unknown_channel", "processing_error", "other"}
)
LATENCY_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WAIT_DELAY_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST


class JourneyMetrics:
    """Every journey metric on one registry; one instance per process in production."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter(
            "journey_events_total",
            "Touchpoints consumed, by channel and outcome.",
            ["channel", "outcome"],
            registry=r,
        )
        self.actions = Counter(
            "journey_actions_total",
            "Actions decided, by rule, action type, status and A/B variant.",
            ["rule", "type", "status", "variant"],
            registry=r,
        )
        self.suppressed = Counter(
            "journey_suppressed_total",
            "Decisions not sent (cap, cooldown, quiet hours, consent).",
            ["rule", "reason"],
            registry=r,
        )
        self.conversions = Counter(
            "journey_conversions_total",
            "Goal conversions attributed to a rule's action (last touch).",
            ["rule", "group"],
            registry=r,
        )
        self.pending_waits = Gauge("journey_pending_waits", "Waits not yet fired or cancelled.", registry=r)
        self.decision_latency = Histogram(
            "journey_decision_latency_seconds",
            "Event published to action decided.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.wait_fire_delay = Histogram(
            "journey_wait_fire_delay_seconds",
            "How late a wait fired after its end time (wall clock).",
            buckets=WAIT_DELAY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "journey_consumer_lag",
            "Messages behind the end of the log.",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.consumer_time_lag = Gauge(
            "journey_consumer_time_lag_seconds",
            "Age of the oldest unprocessed message.",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.group_status = Gauge(
            "journey_consumer_group_status",
            "1 for the group's current lag status (ok/lagging/stalled/unknown).",
            ["group", "status"],
            registry=r,
        )
        self.rules_info = Gauge(
            "journey_rules_info", "1 for the loaded rule set's version.", ["version"], registry=r
        )
        self.rules_reloads = Counter(
            "journey_rules_reloads_total", "Rule set loads, by result (ok, error).", ["result"], registry=r
        )
        self.rules_last_reload_ok = Gauge(
            "journey_rules_last_reload_success", "1 when the last rule load succeeded.", registry=r
        )
        self.rules_last_reload_time = Gauge(
            "journey_rules_last_reload_timestamp_seconds",
            "When the rule set was last (re)loaded.",
            registry=r,
        )
        self.dead_letters = Counter(
            "journey_dead_letters_total",
            "Messages sent to the dead-letter topic, by kind of reason.",
            ["reason_kind"],
            registry=r,
        )

    def record_event(self, channel: str, outcome: EventOutcome) -> None:
        self.events.labels(channel=channel, outcome=outcome).inc()

    def record_events(self, channel: str, outcome: EventOutcome, count: int) -> None:
        """`count` events at once: agents tally a batch and pay the label lookup once."""
        self.events.labels(channel=channel, outcome=outcome).inc(count)

    def record_action(self, action: Action) -> None:
        self.actions.labels(
            rule=action.rule_id, type=action.type, status=action.status, variant=action.variant or "none"
        ).inc()

    def record_suppressed(self, rule: str, reason: str) -> None:
        self.suppressed.labels(rule=rule, reason=reason).inc()

    def record_conversion(self, rule: str, group: str) -> None:
        self.conversions.labels(rule=rule, group=group).inc()

    def observe_latency(self, seconds: float) -> None:
        self.decision_latency.observe(max(seconds, 0.0))

    def observe_wait_fire_delay(self, seconds: float) -> None:
        self.wait_fire_delay.observe(max(seconds, 0.0))

    def set_pending_waits(self, count: int) -> None:
        self.pending_waits.set(count)

    def rules_loaded(self, version: str, ok: bool) -> None:
        """A refused reload keeps the running set, so the version gauge only moves on success."""
        self.rules_reloads.labels(result="ok" if ok else "error").inc()
        self.rules_last_reload_ok.set(1 if ok else 0)
        self.rules_last_reload_time.set(time.time())
        if ok:
            self.rules_info.clear()
            self.rules_info.labels(version=version).set(1)

    def record_dead_letter(self, kind: str) -> None:
        """`kind` outside the fixed vocabulary becomes `other`: reasons are free text and may hold data."""
        self.dead_letters.labels(reason_kind=kind if kind in DEAD_LETTER_KINDS else "other").inc()

    def set_lag(self, report: LagReport) -> None:
        from orchestrator.lag import STATUSES

        self.clear_lag()
        for group in report.groups:
            for status in STATUSES:
                self.group_status.labels(group=group.group, status=status).set(int(group.status == status))
            for p in group.partitions:
                labels = {"group": group.group, "topic": p.topic, "partition": str(p.partition)}
                self.consumer_lag.labels(**labels).set(p.lag)
                self.consumer_time_lag.labels(**labels).set(p.time_lag_s)

    def clear_lag(self) -> None:
        self.consumer_lag.clear()
        self.consumer_time_lag.clear()
        self.group_status.clear()

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = JourneyMetrics()

record_event = METRICS.record_event
record_events = METRICS.record_events
record_action = METRICS.record_action
record_suppressed = METRICS.record_suppressed
record_conversion = METRICS.record_conversion
observe_latency = METRICS.observe_latency
observe_wait_fire_delay = METRICS.observe_wait_fire_delay
set_pending_waits = METRICS.set_pending_waits
rules_loaded = METRICS.rules_loaded
record_dead_letter = METRICS.record_dead_letter
render = METRICS.render
