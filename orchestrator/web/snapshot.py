"""The `/api/dashboard` document: current numbers plus a short history for the charts.

Counters only ever grow, so throughput and latency percentiles are computed between successive
scrapes kept in a small ring; the page never does arithmetic on raw counters. Scrapes happen when the
page polls (at most one per `min_interval_s`) or from `run()`, so an unwatched worker does no work.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.web.sources import MetricsSource, Scrape

if TYPE_CHECKING:
    from orchestrator.lag import LagReport


class LagSource(Protocol):
    """What the dashboard needs from a lag sampler (`orchestrator.lag.LagSampler` fits)."""

    last_error: str | None

    def report(self) -> LagReport | None: ...


@dataclass(frozen=True, slots=True)
class Point:
    at: float
    events: dict[str, float]
    actions: float
    dead_letters: float
    buckets: dict[float, float]


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' interpolation over cumulative buckets; None when nothing was observed."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            width = count - below
            return lower + (bound - lower) * ((rank - below) / width if width else 0.0)
        lower, below = bound, count
    return lower


def _by(scrape: Scrape, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in scrape.select(name):
        out[labels.get(label, "")] = out.get(labels.get(label, ""), 0.0) + value
    return out


def _point(scrape: Scrape, at: float) -> Point:
    buckets = {
        float(labels["le"]): value
        for labels, value in scrape.select("journey_decision_latency_seconds_bucket")
    }
    return Point(
        at=at,
        events=_by(scrape, "journey_events_total", "channel"),
        actions=sum(_by(scrape, "journey_actions_total", "rule").values()),
        dead_letters=sum(_by(scrape, "journey_dead_letters_total", "reason_kind").values()),
        buckets=buckets,
    )


def _rate(new: float, old: float, seconds: float) -> float:
    return max(new - old, 0.0) / seconds if seconds > 0 else 0.0


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


class DashboardState:
    def __init__(
        self,
        metrics: MetricsSource,
        lag_source: LagSource | None,
        *,
        history_points: int = 150,
        min_interval_s: float = 1.0,
    ) -> None:
        self.metrics = metrics
        self.lag_source = lag_source
        self.min_interval_s = min_interval_s
        self._points: deque[Point] = deque(maxlen=history_points)
        self._last: Scrape | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> Scrape:
        async with self._lock:
            now = time.time()
            if self._last is None or not self._points or now - self._points[-1].at >= self.min_interval_s:
                self._last = await self.metrics.scrape()
                self._points.append(_point(self._last, now))
            return self._last

    async def run(self, interval_s: float = 2.0) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(interval_s)

    def _series(self) -> dict[str, Any]:
        points = list(self._points)
        pairs = list(pairwise(points))
        channels = sorted({c for p in points for c in p.events})
        t = [round(b.at, 3) for _a, b in pairs]
        throughput = {
            c: [round(_rate(b.events.get(c, 0.0), a.events.get(c, 0.0), b.at - a.at), 3) for a, b in pairs]
            for c in channels
        }
        p50: list[float | None] = []
        p99: list[float | None] = []
        for a, b in pairs:
            delta = {le: b.buckets[le] - a.buckets.get(le, 0.0) for le in b.buckets}
            p50.append(_round(histogram_quantile(0.5, delta)))
            p99.append(_round(histogram_quantile(0.99, delta)))
        return {
            "t": t,
            "channels": channels,
            "throughput": throughput,
            "actions_rate": [round(_rate(b.actions, a.actions, b.at - a.at), 3) for a, b in pairs],
            "dead_letter_rate": [
                round(_rate(b.dead_letters, a.dead_letters, b.at - a.at), 3) for a, b in pairs
            ],
            "latency_p50": p50,
            "latency_p99": p99,
        }

    async def document(self) -> dict[str, Any]:
        scrape = await self.refresh()
        series = self._series()
        buckets = self._points[-1].buckets if self._points else {}
        report = self.lag_source.report() if self.lag_source else None
        versions = [labels["version"] for labels, value in scrape.select("journey_rules_info") if value >= 1]
        last_ok = scrape.select("journey_rules_last_reload_success")
        events: dict[str, dict[str, float]] = {}
        for labels, value in scrape.select("journey_events_total"):
            events.setdefault(labels["channel"], {})[labels["outcome"]] = value
        return {
            "at": time.time(),
            "sources": scrape.sources,
            "lag": report.as_dict(with_history=True) if report else None,
            "lag_error": (self.lag_source.last_error if self.lag_source else "no lag source configured"),
            "series": series,
            "events": events,
            "throughput_now": {c: (v[-1] if v else 0.0) for c, v in series["throughput"].items()},
            "actions": sorted(
                ({**labels, "total": value} for labels, value in scrape.select("journey_actions_total")),
                key=lambda row: (row["rule"], row["status"], row["variant"]),
            ),
            "suppressed": sorted(
                ({**labels, "total": value} for labels, value in scrape.select("journey_suppressed_total")),
                key=lambda row: (row["rule"], row["reason"]),
            ),
            "latency": {
                "p50": _round(histogram_quantile(0.5, buckets)),
                "p99": _round(histogram_quantile(0.99, buckets)),
                "count": sum(v for _l, v in scrape.select("journey_decision_latency_seconds_count")),
            },
            "dead_letters": _by(scrape, "journey_dead_letters_total", "reason_kind"),
            "pending_waits": sum(v for _l, v in scrape.select("journey_pending_waits")),
            "rules": {
                "versions": sorted(versions),
                "last_reload_ok": (min(v for _l, v in last_ok) >= 1) if last_ok else None,
                "reloads": _by(scrape, "journey_rules_reloads_total", "result"),
            },
        }
