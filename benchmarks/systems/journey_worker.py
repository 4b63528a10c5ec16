"""This project's worker as a benchmark system: `journey worker` subprocesses, timed through /metrics.

The worker cannot print a result line like the baselines, so the driver polls each worker's
`journey_events_total` (counted when the customers agent has applied an event) and times from the
moment the first worker logged `touchpoints_assigned` — its touchpoint consumer starts on the
pre-produced backlog then, as a baseline does at its first event; nothing reads the backlog before —
to the poll that sees every event (a wait for Faust's own group to join falls inside). The first event
only reaches the customers agent after it went through ingest and identity, so starting the clock
there would leave out the work done meanwhile. RSS and CPU time are sampled at every poll.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from orchestrator.config import Settings
from orchestrator.embedded import ManagedProcess

POLL_S = 0.1
READY_LOG = b'"touchpoints_assigned"'
_EVENTS = re.compile(rb"^journey_events_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


def settings_env(settings: Settings) -> dict[str, str]:
    """The JOURNEY_* variables that make `journey worker` see `settings`."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[f"JOURNEY_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def events_processed(port: int) -> int:
    """The worker's `journey_events_total`, 0 while its web server is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            body = response.read()
    except OSError:
        return 0
    return int(sum(float(value) for value in _EVENTS.findall(body)))


def rss_mb(processes: Sequence[ManagedProcess]) -> float:
    return sum(psutil.Process(p.pid).memory_info().rss for p in processes) / 2**20


def cpu_seconds(processes: Sequence[ManagedProcess]) -> float:
    return sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in processes)


@dataclass
class WorkerRun:
    """Throughput and memory of one or more workers sharing a consumer group."""

    count: int = 0
    seconds: float = 0.0
    rss_first_mb: float = 0.0  # when consumption started: the baseline of growth per customer
    rss_peak_mb: float = 0.0
    rss_end_mb: float = 0.0
    cpu_s: float = 0.0  # CPU time the workers used between the first and the last poll
    samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def eps(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def wait_idle(processes: Sequence[ManagedProcess], busy_below: float = 0.1, timeout_s: float = 30.0) -> None:
    """Until the workers use less than `busy_below` of a core over half a second.

    All events counted is not all work done: the last batch's table writes, changelogs and context
    views follow its count. A latency probe started then measures that tail, not the worker.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = cpu_seconds(processes)
        time.sleep(0.5)
        if cpu_seconds(processes) - before < busy_below * 0.5:
            return


def start_workers(
    journey_bin: Path, settings: Settings, count: int, log_dir: Path, *, extra_env: dict[str, str]
) -> list[ManagedProcess]:
    """`count` workers of one app, each with its own web port and data directory."""
    processes = []
    for n in range(count):
        own = settings.model_copy(
            update={"web_port": settings.web_port + n, "data_dir": Path(settings.data_dir) / f"w{n}"}
        )
        Path(own.data_dir).mkdir(parents=True, exist_ok=True)
        env = {**extra_env, **settings_env(own)}
        processes.append(
            ManagedProcess(
                f"worker{n}", [str(journey_bin), "worker"], env=env, log_path=log_dir / f"worker{n}.log"
            )
        )
    return processes


def measure(
    processes: Sequence[ManagedProcess], ports: Sequence[int], expect: int, timeout_s: float
) -> WorkerRun:
    """Poll until the workers together processed `expect` events; time first-seen to all-seen."""
    run = WorkerRun()
    started: float | None = None
    first_cpu = 0.0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in processes:
            if not process.running:
                raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        if started is None:
            if not any(READY_LOG in process.log_path.read_bytes() for process in processes):
                time.sleep(POLL_S / 2)
                continue
            started = time.perf_counter()
            first_cpu = cpu_seconds(processes)
            run.rss_first_mb = rss_mb(processes)
        total = sum(events_processed(port) for port in ports)
        at = time.perf_counter()
        rss = rss_mb(processes)
        run.rss_peak_mb = max(run.rss_peak_mb, rss)
        run.samples.append((at - started, total))
        if total >= expect:
            run.count, run.seconds = total, at - started
            run.rss_end_mb = rss
            run.cpu_s = cpu_seconds(processes) - first_cpu
            return run
        time.sleep(POLL_S)
    raise RuntimeError(f"workers processed {run.samples[-1][1] if run.samples else 0} of {expect} in time")
