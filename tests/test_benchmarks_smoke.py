"""`python -m benchmarks --smoke` runs every system end to end on a tiny workload and ends with the
JSON line the full benchmark prints (every key present), so the benchmark cannot rot unnoticed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REQUIRED_KEYS = (
    "eps", "noop_eps", "naive_eps", "quix_eps", "raw_eps", "ratio_vs_noop", "ratio_vs_naive",
    "p50_ms", "p99_ms", "wait_late_p99_s", "bytes_per_customer", "rss_mb",
)  # fmt: skip


def test_smoke_run_prints_every_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    result = json.loads(last)
    missing = [key for key in REQUIRED_KEYS if key not in result]
    assert not missing, f"missing {missing} in {last}"
    for key in ("eps", "noop_eps", "naive_eps", "quix_eps", "raw_eps", "bytes_per_customer", "rss_mb"):
        assert result[key] > 0, f"{key} is {result[key]}"
    assert result["wait_late_p99_s"] < 5, "the live wait probes never fired"
