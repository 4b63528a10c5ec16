"""How fast compiled rule conditions evaluate, next to the CEL library doing the same work.

Conditions run for every event of every customer, so their cost is a floor under the engine's
per-event budget. CEL (`common-expression-language`, Rust) is the natural off-the-shelf choice; it is
measured two ways: with a context built per evaluation (what an engine with per-customer state has to
do) and with one context reused (its best case, only possible when the state never changes).

Run: `python -m benchmarks.bench_expr`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import cel

from orchestrator.rules.expr import compile_expression

NOW = 1_777_900_000.0
DAY_S = 86400.0
BATCH_NS = 5_000_000
BATCHES = 41

# (label, our expression, the same condition in CEL): the three conditions of the example rule file
# (/work/shared/examples/rules.yaml), its recheck, and the SPEC's sample condition.
CONDITIONS: list[tuple[str, str, str]] = [
    ("cart.total >= 20 (abandoned-cart)", "cart.total >= 20", "cart.total >= 20"),
    ("recheck len(cart.items) > 0", "len(cart.items) > 0", "size(cart.items) > 0"),
    (
        "nearby-store-offer",
        "len(recent.viewed) > 0 and (last_seen.store == null or days_since(last_seen.store) > 7)",
        "size(recent.viewed) > 0 && (!has(last_seen.store) || days_since(last_seen.store, now) > 7)",
    ),
    (
        "chatbot-to-human",
        "counters.failed_intents >= 2 or event.properties.sentiment <= -0.5",
        "counters.failed_intents >= 2 || event.properties.sentiment <= -0.5",
    ),
]

# One customer's state shaped like the engine's scope; values chosen so every sub-expression runs
# (one failed intent: both sides of the `or`; a store visit ten days ago: `days_since` is called).
SCOPE: dict[str, Any] = {
    "event": {
        "event_id": "e-1",
        "type": "chat.message",
        "channel": "chat",
        "occurred_at": "2026-05-04T13:00:00Z",
        "properties": {"text": "where is my order", "sentiment": -0.2, "intent": "order_status"},
    },
    "customer": {"id": "c-100", "traits": {"tier": "gold", "timezone": "America/Montreal"}, "consent": {}},
    "cart": {"total": 240, "items": [{"sku": "CHAIR-9", "qty": 2, "price": 120}]},
    "orders": {"count": 1, "total_spent": 99.0, "last_at": NOW - 40 * DAY_S},
    "recent": {"viewed": ["CHAIR-9", "LAMP-2"], "events": []},
    "last_seen": {"web": NOW - 600, "mobile": NOW - 3600, "store": NOW - 10 * DAY_S},
    "channels_seen": ["social", "mobile", "web", "chat"],
    "location": {"lat": 45.5017, "lon": -73.5673},
    "counters": {"failed_intents": 1},
    "now": NOW,
}


def cel_days_since(ts: float, now: float) -> float:
    return (now - ts) / DAY_S


CEL_FUNCTIONS: dict[str, Callable[..., Any]] = {"days_since": cel_days_since}


def median_us(fn: Callable[[], Any]) -> float:
    """Median over batches of the mean time of one call in a batch (~5 ms each), in microseconds."""
    calls = 0
    start = time.perf_counter_ns()
    while time.perf_counter_ns() - start < 2_000_000:
        fn()
        calls += 1
    batch = max(5, int(BATCH_NS * calls / (time.perf_counter_ns() - start)))
    per_call: list[float] = []
    for _ in range(BATCHES):
        start = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        per_call.append((time.perf_counter_ns() - start) / batch / 1000)
    return statistics.median(per_call)


def measure() -> list[tuple[str, float, float, float]]:
    rows = []
    for label, source, cel_source in CONDITIONS:
        evaluate = compile_expression(source).evaluate
        program = cel.compile(cel_source)
        reused = cel.Context(variables=SCOPE, functions=CEL_FUNCTIONS)
        ours = evaluate(SCOPE)
        theirs = program.execute(cel.Context(variables=SCOPE, functions=CEL_FUNCTIONS))
        if ours != theirs:
            raise SystemExit(f"{label}: results differ (ours {ours!r}, CEL {theirs!r})")
        rows.append(
            (
                label,
                median_us(lambda evaluate=evaluate: evaluate(SCOPE)),
                median_us(
                    lambda program=program: program.execute(
                        cel.Context(variables=SCOPE, functions=CEL_FUNCTIONS)
                    )
                ),
                median_us(lambda program=program, reused=reused: program.execute(reused)),
            )
        )
    return rows


def main() -> None:
    rows = measure()
    header = f"{'condition':<36} {'ours µs':>9} {'CEL µs':>9} {'ratio':>7} {'CEL reused µs':>14} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for label, ours, cel_fresh, cel_reused in rows:
        print(
            f"{label:<36} {ours:>9.3f} {cel_fresh:>9.3f} {cel_fresh / ours:>6.1f}x "
            f"{cel_reused:>14.3f} {cel_reused / ours:>6.1f}x"
        )
    print(
        f"\nmedian of {BATCHES} batches of ~5 ms each; ratio = CEL time / our time. "
        "'CEL' builds a context per evaluation (per-customer state); 'CEL reused' shares one context."
    )


if __name__ == "__main__":
    main()
