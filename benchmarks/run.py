"""`python -m benchmarks`: this project's worker next to its peers, in one run, on one embedded stack.

The run starts the embedded Kafka (Tansu) and Redis, pre-produces a deterministic simulator
workload, then runs each system alone over the same topics (raw aiokafka, the no-op and naive Faust
agents, a Quix Streams pipeline, `journey worker` with the 50-rule set), each timed from its first to
its last event so start-up and group joins are not counted. With the worker still up it measures
publish->action latency at half the worker's measured rate and live wait lateness; then the timer
index with 1M pending waits and the encoded state size, in-process. Full mode also compares one and
two workers on 8 partitions. A table is printed, then, last, one JSON line.

Sizes: `--smoke` (tiny, for the test suite), `--quick` (< 3 min), default full.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import live, offline, report, workload
from benchmarks.bench_engine import rule_file
from benchmarks.systems import journey_worker
from orchestrator.config import Settings
from orchestrator.embedded import EmbeddedStack, ManagedProcess, free_port
from orchestrator.logging import get_logger
from orchestrator.rules.loader import load_rules
from orchestrator.simulate.workload import Message

log = get_logger(__name__)

BIN = Path(sys.executable).parent
SEED = 2026
SESSION_TIMEOUT_S = 3.0
# A second, light probe: the half-max one saturates this 2-core machine once the load generator,
# the broker and the worker share it, and then measures the queue (benchmarks/RESULTS.md).
LIGHT_RATE = 500.0
PROFILE_FORMATS = {".txt": "raw", ".json": "speedscope"}


@dataclass(frozen=True)
class Size:
    customers: int
    latency_s: float
    wait_probes: int
    index_pending: int
    index_due: int
    index_span_s: float
    scale_customers: int = 0  # > 0: also compare one and two workers on 8 partitions


SIZES = {
    "smoke": Size(
        customers=300, latency_s=2.0, wait_probes=10, index_pending=10_000, index_due=500, index_span_s=1.0
    ),
    "quick": Size(
        customers=10_000,
        latency_s=5.0,
        wait_probes=100,
        index_pending=1_000_000,
        index_due=10_000,
        index_span_s=3.0,
    ),
    "full": Size(
        customers=20_000,
        latency_s=15.0,
        wait_probes=300,
        index_pending=1_000_000,
        index_due=50_000,
        index_span_s=10.0,
        scale_customers=10_000,
    ),
}


def _result_line(process: ManagedProcess) -> dict[str, Any] | None:
    import json

    for line in process.log_path.read_bytes().splitlines():
        at = line.find(b'{"system"')  # Faust sends stdout through its logging, behind a prefix
        if at >= 0:
            return dict(json.loads(line[at:]))
    return None


def run_baseline(name: str, argv: list[str], log_dir: Path, timeout_s: float) -> float:
    """Run one baseline module until it prints its result line; its events/s."""
    process = ManagedProcess(
        name, argv, log_path=log_dir / f"{name}.log", cwd=Path(__file__).resolve().parent.parent
    )
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = _result_line(process)
            if line is not None:
                print(
                    f"  {name}: {line['eps']:,.0f} events/s ({line['count']:,} in {line['seconds']:.1f} s)",
                    flush=True,
                )
                return float(line["eps"])
            if not process.running and _result_line(process) is None:
                raise RuntimeError(f"{name} exited without a result:\n{process.tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"{name} gave no result within {timeout_s:.0f} s:\n{process.tail()}")
    finally:
        process.stop(grace_s=2.0)


def baselines(
    bootstrap: str, topics: list[str], expect: int, work: Path, partitions: int
) -> dict[str, float]:
    py = [sys.executable, "-m"]
    common = ["--bootstrap", bootstrap, "--topics", ",".join(topics), "--expect", str(expect)]
    timeout = 90 + expect / 1000
    faust_args = ["--partitions", str(partitions)]
    return {
        "raw_eps": run_baseline(
            "raw_aiokafka", [*py, "benchmarks.systems.raw_aiokafka", *common], work, timeout
        ),
        "noop_eps": run_baseline(
            "faust_noop",
            [
                *py,
                "benchmarks.systems.faust_baseline",
                "noop",
                *common,
                *faust_args,
                "--data-dir",
                str(work / "noop"),
            ],
            work,
            timeout,
        ),
        "naive_eps": run_baseline(
            "faust_naive",
            [
                *py,
                "benchmarks.systems.faust_baseline",
                "naive",
                *common,
                *faust_args,
                "--data-dir",
                str(work / "naive"),
            ],
            work,
            timeout,
        ),
        "quix_eps": run_baseline(
            "quix_stateful",
            [*py, "benchmarks.systems.quix_stateful", *common, "--state-dir", str(work / "quix")],
            work,
            timeout,
        ),
    }


def worker_settings(
    bootstrap: str, redis_url: str, work: Path, name: str, rules: Path, partitions: int, prefix: str
) -> Settings:
    return Settings(
        kafka_bootstrap=bootstrap,
        redis_url=redis_url,
        rules=rules,
        app_id=f"bench-{name}",
        data_dir=work / f"data-{name}",
        web_port=free_port(),
        kafka_session_timeout_s=SESSION_TIMEOUT_S,
        partitions=partitions,
        touchpoints_prefix=f"{prefix}touchpoints.",
        dlq_topic=f"{prefix}touchpoints.dlq",
        actions_prefix=f"{prefix}{name}.actions.",
        internal_prefix=f"{prefix}{name}.journey.",
    )


@contextmanager
def profiler(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy on the worker while the block runs, when asked for.

    The format follows the file's suffix: `.txt` collapsed stacks (greppable, `--format raw`),
    `.json` speedscope, anything else a flame graph SVG.
    """
    if out is None:
        yield
        return
    spy_format = PROFILE_FORMATS.get(out.suffix, "flamegraph")
    spy = subprocess.Popen(
        [
            str(BIN / "py-spy"),
            "record",
            "--nonblocking",
            "--rate",
            "1000",
            "--format",
            spy_format,
            "-o",
            str(out),
            "--pid",
            str(pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def measure_worker(
    settings: Settings, expect: int, count: int, work: Path, *, profile: Path | None = None
) -> tuple[journey_worker.WorkerRun, list[ManagedProcess]]:
    """Start `count` workers, time them over the pre-produced workload; they stay up for the caller."""
    processes = journey_worker.start_workers(
        BIN / "journey", settings, count, work, extra_env=dict(os.environ)
    )
    ports = [settings.web_port + n for n in range(count)]
    try:
        with profiler(processes[0].pid, profile):
            run = journey_worker.measure(processes, ports, expect, timeout_s=120 + expect / 100)
    except BaseException:
        for process in processes:
            process.stop(grace_s=5.0)
        raise
    return run, processes


def scale(bootstrap: str, redis_url: str, work: Path, rules: Path, customers: int) -> dict[str, float]:
    """One worker, then two, over the same workload on 8-partition topics (a fresh group each)."""
    base = worker_settings(bootstrap, redis_url, work, "p8", rules, 8, "p8.")
    messages = workload.build(SEED + 1, customers, base.touchpoints_prefix)
    asyncio.run(workload.produce(base, messages))
    rates: dict[str, float] = {}
    for count, key in ((1, "scale_one_eps"), (2, "scale_two_eps")):
        settings = worker_settings(bootstrap, redis_url, work, f"p8x{count}", rules, 8, "p8.")
        run, processes = measure_worker(settings, len(messages), count, work)
        for process in processes:
            process.stop(grace_s=5.0)
        rates[key] = run.eps
        print(f"  8 partitions, {count} worker(s): {run.eps:,.0f} events/s", flush=True)
    rates["scale_two_vs_one"] = (
        rates["scale_two_eps"] / rates["scale_one_eps"] if rates["scale_one_eps"] else 0.0
    )
    return rates


def run(mode: str, plot: Path | None, profile: Path | None) -> dict[str, Any]:
    size = SIZES[mode]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="journey-bench-") as tmp, EmbeddedStack() as stack:
        work = Path(tmp)
        rules = work / "rules_50.yaml"
        rules.write_text(rule_file(50) + live.WAIT_RULE, encoding="utf-8")
        settings = worker_settings(stack.bootstrap, stack.url, work, "one", rules, 4, "")

        messages: list[Message] = workload.build(SEED, size.customers, settings.touchpoints_prefix)
        asyncio.run(workload.produce(settings, messages))
        topics = sorted({m.topic for m in messages})
        expect = len(messages)
        print(f"{mode}: {expect:,} events of {size.customers:,} customers on {', '.join(topics)}", flush=True)

        summary: dict[str, Any] = {"mode": mode, "customers": size.customers, "events": expect}
        summary.update(baselines(stack.bootstrap, topics, expect, work, settings.partitions))

        run_, processes = measure_worker(settings, expect, 1, work, profile=profile)
        try:
            print(
                f"  journey worker: {run_.eps:,.0f} events/s ({run_.count:,} in {run_.seconds:.1f} s)",
                flush=True,
            )
            rate = max(50.0, run_.eps / 2)
            light_rate = min(LIGHT_RATE, rate)

            def probe_at(events_per_s: float, seed: int) -> live.LiveResult:
                return asyncio.run(
                    live.probe(
                        stack.bootstrap,
                        settings.touchpoints_prefix,
                        settings.actions_prefix,
                        events_per_s,
                        size.latency_s,
                        size.wait_probes,
                        seed,
                    )
                )

            journey_worker.wait_idle(processes)
            # light load first: the half-max probe may leave a queue behind on a saturated machine
            light = probe_at(light_rate, SEED + 1)
            probe = probe_at(rate, SEED)
            rss_after = journey_worker.rss_mb(processes)
        finally:
            for process in processes:
                process.stop(grace_s=5.0)

        first_rss = run_.rss_first_mb
        summary.update(
            eps=round(run_.eps, 1),
            ratio_vs_noop=round(run_.eps / summary["noop_eps"], 3) if summary["noop_eps"] else 0.0,
            cpu_us_per_event=round(run_.cpu_s / run_.count * 1e6, 1) if run_.count else 0.0,
            ratio_vs_naive=round(run_.eps / summary["naive_eps"], 3) if summary["naive_eps"] else 0.0,
            latency_rate=round(rate, 1),
            latency_samples=len(probe.latencies_s),
            p50_ms=round(report.percentile(probe.latencies_s, 50) * 1000, 2),
            p95_ms=round(report.percentile(probe.latencies_s, 95) * 1000, 2),
            p99_ms=round(report.percentile(probe.latencies_s, 99) * 1000, 2),
            wait_samples=len(probe.lateness_s),
            wait_probes=probe.wait_probes,
            wait_late_p50_s=round(report.percentile(probe.lateness_s, 50), 3),
            wait_late_p99_s=round(report.percentile(probe.lateness_s, 99), 3),
            light_rate=round(light_rate, 1),
            light_p50_ms=round(report.percentile(light.latencies_s, 50) * 1000, 2),
            light_p99_ms=round(report.percentile(light.latencies_s, 99) * 1000, 2),
            light_wait_late_p99_s=round(report.percentile(light.lateness_s, 99), 3),
            rss_mb=round(max(run_.rss_peak_mb, rss_after), 1),
            rss_per_100k_customers_mb=round(
                max(0.0, run_.rss_end_mb - first_rss) / size.customers * 100_000, 1
            ),
        )

        index = offline.index_lateness(size.index_pending, size.index_due, size.index_span_s)
        summary.update(
            index_pending=index.pending,
            index_late_p99_s=round(report.percentile(index.lateness_s, 99), 3),
            index_fill_s=round(index.fill_s, 2),
            index_rebuild_s=round(index.rebuild_s, 2),
        )
        sizes = offline.state_sizes(load_rules(rules), messages)
        summary.update(bytes_per_customer=round(offline.mean(sizes), 1), state_customers=len(sizes))

        if size.scale_customers:
            summary.update(
                {
                    k: round(v, 3)
                    for k, v in scale(stack.bootstrap, stack.url, work, rules, size.scale_customers).items()
                }
            )
        summary["wall_s"] = round(time.monotonic() - started, 1)

    print()
    print(report.table(summary))
    if plot is not None:
        report.plot(summary, plot)
        print(f"plot: {plot}")
    print(report.json_line(summary), flush=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_const", dest="mode", const="quick", help="under 3 minutes")
    group.add_argument("--smoke", action="store_const", dest="mode", const="smoke", help="tiny, for tests")
    parser.add_argument("--plot", type=Path, help="write the throughput/latency PNG here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy profile of the worker's throughput phase: .svg flame graph, .txt raw, .json speedscope",
    )
    args = parser.parse_args(argv)
    run(args.mode or "full", args.plot, args.profile)
