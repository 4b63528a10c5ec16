"""Consumer lag of the orchestrator's groups, with a Burrow-style status (SPEC §6).

Seam with the worker and the dashboard:

- `LagMonitor(bootstrap, ...)` reads offsets with its own admin client and group-less consumer, so it
  works with no worker running and never joins (or disturbs) the groups it watches.
  `await monitor.sample()` takes one sample; `monitor.report()` evaluates the sliding window.
- `LagSampler(monitor, interval_s, metrics=..., should_export=...)` samples in a loop. Every worker may
  run one (its dashboard shows lag), but only one per cluster may *export* the lag gauges or Prometheus
  would sum duplicates: `should_export` returns True only on the worker that owns partition 0 of the
  worker's own first source topic (see `owns_partition_zero`); the others clear their lag series.
  `journey dashboard` runs its own sampler and never exports.
- `evaluate_status(samples)` is the pure status rule, unit-tested on its own.

Partitions of a watched topic with no committed offset yet count from the log start (Faust resets to
`earliest`), with `committed` reported as null.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from orchestrator.logging import get_logger

if TYPE_CHECKING:
    from orchestrator.config import Settings
    from orchestrator.metrics import JourneyMetrics

Status = Literal["ok", "lagging", "stalled", "unknown"]
STATUS_SEVERITY: dict[Status, int] = {"ok": 0, "unknown": 1, "lagging": 2, "stalled": 3}
STATUSES: tuple[Status, ...] = ("ok", "lagging", "stalled", "unknown")

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class OffsetSample:
    """One look at a partition: when, where the group stands, where the log ends."""

    at: float
    committed: int | None
    end: int
    lag: int
    time_lag_s: float


def evaluate_status(samples: Sequence[OffsetSample]) -> Status:
    """Burrow's evaluation over a window, oldest sample first.

    A zero lag anywhere in the window means the group kept up (an idle, caught-up partition is never
    late just because nothing arrived); otherwise an unmoved committed offset is a stall, and a moving
    one is lagging only when the lag grew across the window without ever shrinking, so one slow
    commit interval does not raise a false alarm.
    """
    if len(samples) < 2:
        return "unknown"
    if any(s.lag == 0 for s in samples):
        return "ok"
    first, last = samples[0], samples[-1]
    if first.committed == last.committed:
        return "stalled"
    lags = [s.lag for s in samples]
    never_shrank = all(b >= a for a, b in pairwise(lags))
    if last.lag > first.lag and never_shrank:
        return "lagging"
    return "ok"


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=STATUS_SEVERITY.__getitem__, default="unknown")


def owns_partition_zero(assignment: Iterable[TopicPartition], topic: str) -> bool:
    """The export rule for lag gauges: exactly one live member of a group holds partition 0 of a topic."""
    return any(tp.topic == topic and tp.partition == 0 for tp in assignment)


@dataclass(slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    time_lag_s: float
    status: Status
    history: list[tuple[float, int, float]] = field(default_factory=list)

    def as_dict(self, *, with_history: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end": self.end,
            "lag": self.lag,
            "time_lag_s": round(self.time_lag_s, 3),
            "status": self.status,
        }
        if with_history:
            out["history"] = [[round(t, 3), lag, round(tl, 3)] for t, lag, tl in self.history]
        return out


@dataclass(slots=True)
class GroupLag:
    group: str
    partitions: list[PartitionLag]

    @property
    def status(self) -> Status:
        return worst(p.status for p in self.partitions)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def time_lag_s(self) -> float:
        return max((p.time_lag_s for p in self.partitions), default=0.0)

    def as_dict(self, *, with_history: bool = False) -> dict[str, Any]:
        return {
            "group": self.group,
            "status": self.status,
            "lag": self.lag,
            "time_lag_s": round(self.time_lag_s, 3),
            "partitions": [p.as_dict(with_history=with_history) for p in self.partitions],
        }


@dataclass(slots=True)
class LagReport:
    at: float
    groups: list[GroupLag]

    @property
    def all_ok(self) -> bool:
        return bool(self.groups) and all(g.status == "ok" for g in self.groups)

    def as_dict(self, *, with_history: bool = False) -> dict[str, Any]:
        """Exactly the `journey lag --json` shape of SPEC §6 (plus `history` for the dashboard only)."""
        return {
            "at": datetime.fromtimestamp(self.at, UTC).isoformat().replace("+00:00", "Z"),
            "groups": [g.as_dict(with_history=with_history) for g in self.groups],
        }


def kafka_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection options shared by every client the lag monitor opens."""
    kwargs: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism:
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = settings.kafka_sasl_password
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        kwargs["ssl_context"] = create_ssl_context(cafile=cafile)
    return kwargs


class LagMonitor:
    """Samples committed and end offsets of the app's groups and keeps a sliding window per partition."""

    def __init__(
        self,
        bootstrap: str,
        *,
        group_prefix: str = "journey",
        groups: Sequence[str] | None = None,
        window_s: float = 60.0,
        history_points: int = 120,
        fetch_timeout_s: float = 2.0,
        client_kwargs: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bootstrap = bootstrap
        self.group_prefix = group_prefix
        self.groups = list(groups) if groups else None
        self.window_s = window_s
        self.fetch_timeout_s = fetch_timeout_s
        self._client_kwargs = client_kwargs or {}
        self._clock = clock
        self._window: dict[tuple[str, TopicPartition], deque[OffsetSample]] = {}
        self._history: dict[tuple[str, TopicPartition], deque[tuple[float, int, float]]] = {}
        self._history_points = history_points
        self._timestamps: dict[tuple[TopicPartition, int], float] = {}
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self.last_sample_at: float | None = None

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self._client_kwargs)
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=64 * 1024,
            **self._client_kwargs,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None

    async def __aenter__(self) -> LagMonitor:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def watched_groups(self) -> list[str]:
        assert self._admin is not None, "LagMonitor.start() first"
        if self.groups is not None:
            return sorted(self.groups)
        listed = await self._admin.list_consumer_groups()
        return sorted({g[0] for g in listed if str(g[0]).startswith(self.group_prefix)})

    async def _all_partitions(self) -> list[TopicPartition]:
        """Every partition of every user topic: OffsetFetch for "all" is not supported by every broker."""
        assert self._admin is not None and self._consumer is not None
        topics = [t for t in await self._admin.list_topics() if not t.startswith("__")]
        if not topics:
            return []
        described = await self._admin.describe_topics(topics)
        return [
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if not t["error_code"]
            for p in t["partitions"]
        ]

    async def sample(self) -> None:
        """Take one sample of every watched group; the window keeps what is younger than `window_s`."""
        async with self._lock:
            assert self._admin is not None and self._consumer is not None, "LagMonitor.start() first"
            groups = await self.watched_groups()
            partitions = await self._all_partitions()
            committed: dict[str, dict[TopicPartition, int | None]] = {}
            for group in groups:
                offsets = await self._admin.list_consumer_group_offsets(group, partitions=partitions)
                topics = {tp.topic for tp, om in offsets.items() if om.offset >= 0}
                committed[group] = {
                    tp: (om.offset if om.offset >= 0 else None)
                    for tp, om in offsets.items()
                    if tp.topic in topics
                }
            wanted = sorted({tp for per in committed.values() for tp in per})
            ends = await self._consumer.end_offsets(wanted) if wanted else {}
            starts = await self._consumer.beginning_offsets(wanted) if wanted else {}
            now = self._clock()
            positions: dict[tuple[str, TopicPartition], tuple[int | None, int, int]] = {}
            for group, per in committed.items():
                for tp, offset in per.items():
                    positions[(group, tp)] = (offset, ends[tp], starts[tp] if offset is None else offset)
            stamps = await self._oldest_timestamps(
                {(tp, pos) for (_g, tp), (_c, end, pos) in positions.items() if end > pos}
            )
            for key, (offset, end, position) in positions.items():
                lag = max(end - position, 0)
                stamp = stamps.get((key[1], position))
                time_lag = max(now - stamp, 0.0) if lag > 0 and stamp is not None else 0.0
                sample = OffsetSample(at=now, committed=offset, end=end, lag=lag, time_lag_s=time_lag)
                window = self._window.setdefault(key, deque())
                window.append(sample)
                while len(window) > 2 and now - window[1].at >= self.window_s:
                    window.popleft()
                self._history.setdefault(key, deque(maxlen=self._history_points)).append((now, lag, time_lag))
            for gone in set(self._window) - set(positions):
                del self._window[gone]
                self._history.pop(gone, None)
            self.last_sample_at = now

    async def _oldest_timestamps(
        self, wanted: set[tuple[TopicPartition, int]]
    ) -> dict[tuple[TopicPartition, int], float]:
        """Timestamp of the record at each position; a record never changes, so each is fetched once.

        Groups at different positions of one partition need one seek each, so positions are fetched
        in rounds of at most one per partition.
        """
        assert self._consumer is not None
        found = {key: self._timestamps[key] for key in wanted if key in self._timestamps}
        remaining = sorted(wanted - set(found))
        while remaining:
            batch_round: dict[TopicPartition, int] = {}
            for tp, pos in remaining:
                batch_round.setdefault(tp, pos)
            remaining = [(tp, pos) for tp, pos in remaining if batch_round[tp] != pos]
            found.update(await self._fetch_round(batch_round))
        if len(self._timestamps) > 10_000:
            self._timestamps.clear()
        return found

    async def _fetch_round(
        self, positions: dict[TopicPartition, int]
    ) -> dict[tuple[TopicPartition, int], float]:
        assert self._consumer is not None
        consumer = self._consumer
        consumer.assign(list(positions))
        for tp, pos in positions.items():
            consumer.seek(tp, pos)
        found: dict[tuple[TopicPartition, int], float] = {}
        pending = dict(positions)
        deadline = time.monotonic() + self.fetch_timeout_s
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(*pending, timeout_ms=200, max_records=len(pending) * 4)
            for tp, records in batch.items():
                if tp in pending and records:
                    key = (tp, pending.pop(tp))
                    found[key] = self._timestamps[key] = records[0].timestamp / 1000.0
                    consumer.pause(tp)
        consumer.assign([])
        return found

    def report(self) -> LagReport:
        by_group: dict[str, list[PartitionLag]] = {}
        for (group, tp), window in sorted(self._window.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            last = window[-1]
            by_group.setdefault(group, []).append(
                PartitionLag(
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=last.committed,
                    end=last.end,
                    lag=last.lag,
                    time_lag_s=last.time_lag_s,
                    status=evaluate_status(list(window)),
                    history=list(self._history.get((group, tp), ())),
                )
            )
        return LagReport(
            at=self.last_sample_at or self._clock(),
            groups=[GroupLag(group=g, partitions=parts) for g, parts in by_group.items()],
        )


class LagSampler:
    """Runs a monitor on an interval and, on the one exporting process, mirrors it into the gauges."""

    def __init__(
        self,
        monitor: LagMonitor,
        *,
        interval_s: float = 5.0,
        metrics: JourneyMetrics | None = None,
        should_export: Callable[[], bool] = lambda: False,
    ) -> None:
        self.monitor = monitor
        self.interval_s = interval_s
        self.metrics = metrics
        self.should_export = should_export
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def report(self) -> LagReport | None:
        return self.monitor.report() if self.monitor.last_sample_at is not None else None

    async def tick(self) -> None:
        try:
            await self.monitor.sample()
            self.last_error = None
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("lag_sample_failed", error=self.last_error)
            return
        if self.metrics is not None:
            if self.should_export():
                self.metrics.set_lag(self.monitor.report())
            else:
                self.metrics.clear_lag()

    async def run(self) -> None:
        await self.monitor.start()
        try:
            while True:
                await self.tick()
                await asyncio.sleep(self.interval_s)
        finally:
            await self.monitor.stop()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="journey-lag-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
