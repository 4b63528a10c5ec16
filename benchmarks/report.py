"""The benchmark's outputs: a table for people, one JSON line for machines (printed last), a PNG plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Every key the JSON line must carry (tests/test_benchmarks_smoke.py checks them).
REQUIRED_KEYS = (
    "eps",
    "noop_eps",
    "naive_eps",
    "quix_eps",
    "raw_eps",
    "ratio_vs_noop",
    "ratio_vs_naive",
    "p50_ms",
    "p99_ms",
    "wait_late_p99_s",
    "bytes_per_customer",
    "rss_mb",
)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def table(summary: dict[str, Any]) -> str:
    s = summary
    rows = [
        ("system", "events/s", "vs journey worker"),
        ("journey worker (this project)", f"{s['eps']:,.0f}", "1.00x"),
    ]
    for label, key in (
        ("Faust no-op agent", "noop_eps"),
        ("Faust naive Table agent", "naive_eps"),
        ("Quix Streams stateful", "quix_eps"),
        ("raw aiokafka getmany", "raw_eps"),
    ):
        other = s[key]
        rows.append((label, f"{other:,.0f}", f"{s['eps'] / other:.2f}x" if other else "-"))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{width[0]}}  {r[1]:>{width[1]}}  {r[2]:>{width[2]}}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines += [
        "",
        f"targets: >= 0.5x no-op Faust (got {s['ratio_vs_noop']:.2f}x), "
        f">= 2x naive Faust (got {s['ratio_vs_naive']:.2f}x)",
        f"worker CPU: {s['cpu_us_per_event']:.0f} us per event",
        f"publish->action at {s['latency_rate']:,.0f}/s (half the max): p50 {s['p50_ms']:.1f} ms, "
        f"p95 {s['p95_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms over {s['latency_samples']} actions "
        "(target p99 < 50 ms)",
        f"wait lateness live: p50 {s['wait_late_p50_s']:.3f} s, p99 {s['wait_late_p99_s']:.3f} s over "
        f"{s['wait_samples']} of {s['wait_probes']} waits (target <= 1 s)",
        f"light load, {s['light_rate']:,.0f}/s: publish->action p50 {s['light_p50_ms']:.1f} ms, "
        f"p99 {s['light_p99_ms']:.1f} ms; wait lateness p99 {s['light_wait_late_p99_s']:.3f} s",
        f"timer index with {s['index_pending']:,} pending waits: pop lateness p99 "
        f"{s['index_late_p99_s']:.3f} s, fill {s['index_fill_s']:.2f} s, "
        f"rebuild {s['index_rebuild_s']:.2f} s",
        f"state: {s['bytes_per_customer']:.0f} B per customer "
        f"(mean of {s['state_customers']:,}; target <= 1 KB)",
        f"worker RSS: peak {s['rss_mb']:.0f} MB, "
        f"growth {s['rss_per_100k_customers_mb']:.0f} MB per 100k customers",
    ]
    if s.get("scale_two_vs_one"):
        lines.append(
            f"8 partitions: one worker {s['scale_one_eps']:,.0f}/s, two workers {s['scale_two_eps']:,.0f}/s "
            f"= {s['scale_two_vs_one']:.2f}x (target >= 1.6x where the cores exist)"
        )
    return "\n".join(lines)


def json_line(summary: dict[str, Any]) -> str:
    missing = [key for key in REQUIRED_KEYS if key not in summary]
    if missing:
        raise KeyError(f"summary lacks {missing}")
    return json.dumps(summary, separators=(",", ":"))


def plot(summary: dict[str, Any], path: Path) -> None:
    """Throughput per system and latency percentiles, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.4, 1]})
    systems = ["journey\nworker", "Faust\nno-op", "Faust\nnaive Table", "Quix\nstateful"]
    rates = [s["eps"], s["noop_eps"], s["naive_eps"], s["quix_eps"]]
    colours = ["#2b6cb0", "#a0aec0", "#a0aec0", "#a0aec0"]
    bars = left.bar(systems, rates, color=colours)
    left.bar_label(bars, labels=[f"{r:,.0f}" for r in rates], fontsize=8)
    left.set_ylabel("events/s (one process)")
    left.set_title(
        f"Throughput, {s['events']:,} events, {s['customers']:,} customers\n"
        f"(raw aiokafka getmany: {s['raw_eps']:,.0f}/s, off the chart)",
        fontsize=9,
    )
    labels = ["p50", "p95", "p99", f"p50\n{s['light_rate']:,.0f}/s", f"p99\n{s['light_rate']:,.0f}/s"]
    values = [s["p50_ms"], s["p95_ms"], s["p99_ms"], s["light_p50_ms"], s["light_p99_ms"]]
    bars = right.bar(labels, values, color=["#2b6cb0"] * 3 + ["#63b3ed"] * 2)
    right.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8)
    right.axhline(50, color="#c53030", linestyle="--", linewidth=1)
    right.text(4.4, 50, "p99 target", color="#c53030", fontsize=8, va="bottom", ha="right")
    right.set_yscale("log")
    right.set_ylabel("ms (log scale)")
    right.set_title(
        f"publish->action at {s['latency_rate']:,.0f} events/s (half the max) and {s['light_rate']:,.0f}/s",
        fontsize=9,
    )
    fig.suptitle(
        f"benchmarks ({s['mode']} run, 2-core VM, embedded Tansu broker on the same cores)", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
