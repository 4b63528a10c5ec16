"""Worker memory with 1,000,000 customers: the RocksDB table store bounds it, RAM does not hold them.

Each configuration runs in a child process of its own (RSS is per process): it opens one RocksDB
store per partition exactly as Faust's table store does (`faust.stores.rocksdb.RocksDBOptions`),
writes one encoded state per customer — incompressible bytes of the mean size the engine's states
have on the main benchmark's workload, the worst case for cache and disk — reads a random tenth of the
customers back after every 100,000 (the hot path's gets, which fill the block cache), and reports
its RSS. The baseline is Faust's default store options (a 2 GiB block cache per partition and
table); the worker's are `orchestrator.app.store_options` from the default settings. Last, the
in-memory deadline index (`runtime/deadlines.py`) with a pending wait for every customer, the one
per-customer structure the worker keeps in RAM by design.

Run: `python -m benchmarks.bench_store [--customers N] [--partitions P]`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

CHECKPOINT = 100_000
CONFIGS = ("faust-defaults", "worker")


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def mean_state_bytes(customers: int = 2_000) -> int:
    """The mean encoded state on the main benchmark's workload (`python -m benchmarks`: the
    simulator's customers, the 50-rule set), as its `bytes_per_customer` figure measures it."""
    from benchmarks import offline, workload
    from benchmarks.bench_engine import load_rule_set
    from benchmarks.run import SEED

    messages = workload.build(SEED, customers, "touchpoints.")
    return round(offline.mean(offline.state_sizes(load_rule_set(), messages)))


def store_options(config: str) -> dict[str, int]:
    if config == "faust-defaults":
        return {}
    from orchestrator.app import store_options as worker_options
    from orchestrator.config import Settings

    return worker_options(Settings()) or {}


def child(config: str, customers: int, partitions: int, state_bytes: int, folder: Path) -> None:
    """Write and read `customers` states; one JSON line per checkpoint on stdout."""
    from faust.stores.rocksdb import RocksDBOptions

    options = RocksDBOptions(**store_options(config))
    dbs = [options.open(folder / f"profiles-{p}.db") for p in range(partitions)]
    rng = random.Random(7)
    start_rss, started = rss_mb(), time.perf_counter()
    print(json.dumps({"customers": 0, "rss_mb": start_rss}), flush=True)
    for n in range(customers):
        key = f"cust-{n:07d}".encode()
        dbs[n % partitions][key] = rng.randbytes(state_bytes)
        if (n + 1) % CHECKPOINT == 0 or n + 1 == customers:
            for i in rng.sample(range(n + 1), (n + 1) // 10):
                dbs[i % partitions][f"cust-{i:07d}".encode()]
            print(
                json.dumps({"customers": n + 1, "rss_mb": rss_mb(), "s": time.perf_counter() - started}),
                flush=True,
            )
    for db in dbs:
        db.close()


def deadline_index_mb(customers: int, partitions: int) -> float:
    """RSS growth of the deadline index holding one pending wait per customer."""
    from orchestrator.runtime.deadlines import DeadlineIndex

    before = rss_mb()
    index = DeadlineIndex()
    now = time.time()
    for n in range(customers):
        index.set(n % partitions, f"cust-{n:07d}", now + n % 86_400)
    grown = rss_mb() - before
    assert len(index) == customers
    return grown


def run_config(config: str, customers: int, partitions: int, state_bytes: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        argv = [sys.executable, "-m", "benchmarks.bench_store", "--child", config]
        argv += ["--customers", str(customers), "--partitions", str(partitions)]
        argv += ["--state-bytes", str(state_bytes), "--folder", folder]
        done = subprocess.run(argv, capture_output=True, text=True, check=True, env=os.environ.copy())
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--state-bytes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.customers, args.partitions, args.state_bytes, args.folder)
        return

    state_bytes = mean_state_bytes()
    print(f"{args.customers:,} customers, {args.partitions} partitions, {state_bytes} B per state")
    runs = {config: run_config(config, args.customers, args.partitions, state_bytes) for config in CONFIGS}
    print(f"\n{'customers':>10} " + " ".join(f"{c + ' RSS MB':>22}" for c in CONFIGS))
    for rows in zip(*runs.values(), strict=True):
        print(f"{rows[0]['customers']:>10,} " + " ".join(f"{r['rss_mb']:>22,.0f}" for r in rows))
    index_mb = deadline_index_mb(args.customers, args.partitions)
    print(f"\ndeadline index with {args.customers:,} pending waits: +{index_mb:,.0f} MB")

    def growth(rows: list[dict[str, Any]]) -> float:
        return rows[-1]["rss_mb"] - rows[0]["rss_mb"]

    def late_growth(rows: list[dict[str, Any]]) -> float:
        """Growth over the second half of the customers: ~0 once the caches are full."""
        return rows[-1]["rss_mb"] - rows[len(rows) // 2]["rss_mb"]

    result = {
        "customers": args.customers,
        "state_bytes": state_bytes,
        "data_mb": args.customers * state_bytes / 2**20,
        **{f"{c}_rss_growth_mb": growth(rows) for c, rows in runs.items()},
        **{f"{c}_second_half_growth_mb": late_growth(rows) for c, rows in runs.items()},
        "deadline_index_mb": index_mb,
    }
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
