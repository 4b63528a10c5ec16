"""`journey demo`: the whole idea in a minute, on the embedded defaults, with nothing configured.

It starts the embedded broker and Redis, one worker (a subprocess, exactly as `journey worker`
runs in production) with the demo rules, and the customer simulator; then it prints every action
the worker decides as it lands on the `actions.*` topics. Everything it started is stopped on
Ctrl-C, on `--duration`, or on error — the process group of each child included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator.config import EXAMPLE_RULES, Settings
from orchestrator.embedded import EmbeddedStack, ManagedProcess, free_port
from orchestrator.logging import get_logger
from orchestrator.rules.loader import load_rules
from orchestrator.simulate import simulate
from orchestrator.topics import ensure_topics, runtime_repartition_topics

log = get_logger(__name__)

DEMO_JOURNEY_SCALE = 0.03  # a persona plays out in about 20 s instead of ten minutes
WORKER_STOP_GRACE_S = 12.0
DEMO_SESSION_TIMEOUT_S = 4.0  # the embedded broker assigns a new group's partitions after about half of it
ACTIONS_POLL_MS = 500

ActionPrinter = Callable[[dict[str, object]], None]


@dataclass(frozen=True)
class DemoOptions:
    duration_s: float | None
    seed: int
    customers: int
    rate: float
    rules: Path = EXAMPLE_RULES


def worker_command(rules: Path, web_port: int, data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "worker",
        "--rules",
        str(rules),
        "--web-port",
        str(web_port),
        "--data-dir",
        str(data_dir),
    ]


async def _wait_ready(web_url: str, worker: ManagedProcess, timeout_s: float = 120.0) -> None:
    """The worker is ready once its partitions are assigned and tables recovered (`/readyz`)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not worker.running:
                raise RuntimeError(f"the worker exited during start-up:\n{worker.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{web_url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.5)
    raise TimeoutError(f"the worker was not ready within {timeout_s:.0f} s:\n{worker.tail()}")


async def watch_actions(bootstrap: str, settings: Settings, on_action: ActionPrinter) -> None:
    """Print every action as it lands; group-less, so no consumer-group join delays the first one."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    assigned: set[TopicPartition] = set()
    try:
        while True:
            topics = [t for t in await consumer.topics() if t.startswith(settings.actions_prefix)]
            wanted = {TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()}
            if wanted - assigned:
                consumer.assign(sorted(wanted, key=lambda tp: (tp.topic, tp.partition)))
                await consumer.seek_to_beginning(*(wanted - assigned))
                assigned = wanted
            batches = await consumer.getmany(timeout_ms=ACTIONS_POLL_MS)
            for records in batches.values():
                for record in records:
                    on_action(orjson.loads(record.value))
    finally:
        await consumer.stop()


async def run_demo(options: DemoOptions, on_action: ActionPrinter, say: Callable[[str], None]) -> None:
    rule_set = load_rules(options.rules)
    with EmbeddedStack() as stack, tempfile.TemporaryDirectory(prefix="journey-demo-") as data_dir:
        settings = Settings(kafka_bootstrap=stack.bootstrap, redis_url=stack.url, rules=options.rules)
        await ensure_topics(settings, repartition=runtime_repartition_topics(settings))
        web_port = free_port()
        web_url = f"http://127.0.0.1:{web_port}"
        env = {
            **_environ(),
            "JOURNEY_KAFKA_BOOTSTRAP": stack.bootstrap,
            "JOURNEY_REDIS_URL": stack.url,
            "JOURNEY_LOG_FORMAT": "json",
            "JOURNEY_KAFKA_SESSION_TIMEOUT_S": str(DEMO_SESSION_TIMEOUT_S),
            "JOURNEY_KAFKA_SINGLE_RECORD_BATCHES": "true",
        }
        worker = ManagedProcess("worker", worker_command(options.rules, web_port, Path(data_dir)), env=env)
        say(f"embedded Kafka at {stack.bootstrap}, Redis at {stack.url}")
        say(f"rules {rule_set.version} from {options.rules}: {', '.join(r.id for r in rule_set.rules)}")
        say(f"worker dashboard: {web_url}/dashboard   metrics: {web_url}/metrics")
        say(f"simulating customers (seed {options.seed}); actions appear below as the worker decides them")
        tasks = [
            asyncio.create_task(
                simulate(
                    stack.bootstrap,
                    seed=options.seed,
                    customers=options.customers,
                    rate=options.rate,
                    duration=options.duration_s or float("inf"),
                    journey_scale=DEMO_JOURNEY_SCALE,
                    settings=settings,
                ),
                name="simulator",
            ),
            asyncio.create_task(watch_actions(stack.bootstrap, settings, on_action), name="actions"),
            asyncio.create_task(_wait_ready(web_url, worker), name="readiness"),
        ]
        started = time.monotonic()
        tasks[-1].add_done_callback(
            lambda task: (
                task.cancelled()
                or task.exception()
                or say(
                    f"worker ready after {time.monotonic() - started:.0f} s (consumer-group join included)"
                )
            )
        )
        try:
            await _until_done(tasks, options.duration_s, worker)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            say("stopping the worker and the embedded servers")
            worker.stop(grace_s=WORKER_STOP_GRACE_S)


async def _until_done(
    tasks: list[asyncio.Task[object]], duration_s: float | None, worker: ManagedProcess
) -> None:
    """Run until the duration elapses, Ctrl-C/SIGTERM arrives, or a part fails."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    try:
        while not stop.is_set():
            if duration_s is not None and time.monotonic() - started >= duration_s:
                return
            if not worker.running:
                raise RuntimeError(f"the worker stopped unexpectedly:\n{worker.tail()}")
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise RuntimeError(f"{task.get_name()} failed: {task.exception()!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _environ() -> dict[str, str]:
    """The parent's environment without JOURNEY_* settings: the demo decides those itself."""
    return {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
