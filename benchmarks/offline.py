"""In-process measures that need no broker: the timer index at 1M pending waits, and state size.

`index_lateness` fills a `DeadlineIndex` with `pending` waits (most far in the future, `due_now`
of them due over the next `span_s` seconds) and runs the timer's own loop on it — every
`interval_s`: `partitions_due`, then `pop_due` per partition — noting how late each wait is popped.
It measures the index, not the engine: firing a wait also costs one `Engine.advance`, which the live
probe (benchmarks/live.py) includes.

`state_sizes` replays the benchmark's workload through `orchestrator.replay.Replay` with the same
rules and encodes every resulting customer state, as the worker's `profiles` table stores it.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass

from orchestrator.engine import Engine, encode_state
from orchestrator.replay import Replay
from orchestrator.rules.model import RuleSet
from orchestrator.runtime.deadlines import DeadlineIndex
from orchestrator.simulate.workload import Message
from schemas import parse_touchpoint

PARTITIONS = 4
LEAD_IN_S = 3.0


@dataclass
class IndexResult:
    pending: int
    fill_s: float
    rebuild_s: float
    lateness_s: list[float]


def index_lateness(
    pending: int, due_now: int, span_s: float, interval_s: float = 0.2, seed: int = 3
) -> IndexResult:
    rng = random.Random(seed)
    offsets = [
        (
            n % PARTITIONS,
            f"profile-{n}",
            LEAD_IN_S + rng.uniform(0, span_s) if n < due_now else 3600 + rng.uniform(0, 86400),
        )
        for n in range(pending)
    ]
    index = DeadlineIndex()
    began = time.perf_counter()
    for partition, profile, offset in offsets:
        index.set(partition, profile, offset)
    fill_s = time.perf_counter() - began
    # what a restart or a rebalance does, timed; the waits start falling due LEAD_IN_S after it began
    start = time.time()
    entries = [(partition, profile, start + offset) for partition, profile, offset in offsets]
    began = time.perf_counter()
    index.rebuild(entries)
    rebuild_s = time.perf_counter() - began
    lateness: list[float] = []
    stop = start + LEAD_IN_S + span_s + 2 * interval_s
    while time.time() < stop:
        now = time.time()
        for partition in index.partitions_due(now):
            for _profile, due in index.pop_due(partition, now):
                lateness.append(time.time() - due)
        time.sleep(max(0.0, interval_s - (time.time() - now)))
    return IndexResult(pending, fill_s, rebuild_s, lateness)


def state_sizes(rules: RuleSet, messages: list[Message]) -> list[int]:
    """Encoded state size of every customer after replaying `messages` (in publishing order)."""
    events = [parse_touchpoint(m.value) for m in messages]
    events.sort(key=lambda e: e.ts)  # replay needs time order; the sort is stable for equal times
    replay = Replay(Engine(rules))
    for _ in replay.run(events):
        pass
    return [len(encode_state(state)) for state in replay.states.values()]


def mean(values: list[int]) -> float:
    return statistics.fmean(values) if values else 0.0
