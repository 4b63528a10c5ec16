"""Engine throughput on a realistic rule set, and compiled conditions next to CEL.

The three flagship rules of the worked example are scaled to 50 (varied ids, trigger types,
thresholds, waits and categories) and run over 10,000+ customers' mixed touchpoints, in one process:
once through the replay driver (identity, alias map, deadline heap — what `journey replay` does) and
once through raw `Engine.apply` (state in a dict, no identity). Events are parsed before timing:
this measures decisions, not JSON. The events/s target is the engine's (`Engine.apply`); the replay
driver's figure shows what `journey replay` adds around it.

The garbage collector is tuned as `journey worker` tunes it (`orchestrator.runtime.tuning.tune_gc`:
freeze the start-up heap, gen-0 threshold 50,000), after the events are built: untuned, every full
collection would also walk the 120,000 parsed events the benchmark holds, which a worker never
does. `--plain-gc` measures with the interpreter's defaults instead.

Run: `python -m benchmarks.bench_engine [--customers N] [--events-per-customer N] [--passes N] [--plain-gc]
[--profile]`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.bench_expr import measure as measure_conditions
from orchestrator.engine import CustomerState, Engine
from orchestrator.replay import Replay
from orchestrator.rules.loader import load_rules
from orchestrator.rules.model import RuleSet
from orchestrator.runtime.tuning import GC_GEN0_THRESHOLD, tune_gc
from schemas import Touchpoint

TARGET_EVENTS_PER_S = 50_000
TARGET_CONDITION_US = 1.0
START = datetime(2026, 5, 4, 6, 0, tzinfo=UTC).timestamp()
SPAN_S = 2 * 86400.0
HEADER = """version: 1
defaults:
  timezone: Europe/Paris
  quiet_hours: {start: "21:00", end: "08:00"}
  profile_ttl: 30d
contact_policy:
  max_per_day: 3
  channels:
    email: {max_per_day: 1}
geofences:
  - {id: montreal-downtown, lat: 45.5017, lon: -73.5673, radius_m: 400}
  - {id: paris-opera, lat: 48.8719, lon: 2.3316, radius_m: 300}
counters:
  failed_intents: {on: chat.intent_failed, reset_on: [chat.resolved]}
rules:
"""
CART_TRIGGERS = ("cart.item_added", "product.viewed", "page.viewed", "wishlist.added", "search.performed")
NEAR_TRIGGERS = ("geofence.entered", "store.checked_in", "app.opened", "beacon.seen")
CHAT_TRIGGERS = ("chat.message", "chat.intent_failed", "call.ended", "social.mentioned")
CART_CONDITIONS = (
    "cart.total >= {n}",
    "len(recent.viewed) > {k} and cart.total >= {n}",
    "orders.count == 0 or cart.total > {n}",
    "'web' in channels_seen and cart.total >= {n}",
)
NEAR_CONDITIONS = (
    "len(recent.viewed) > 0 and (last_seen.store == null or days_since(last_seen.store) > 7)",
    "orders.count >= {k} or len(recent.viewed) > {k}",
)
CHAT_CONDITIONS = (
    "counters.failed_intents >= {k} or event.properties.sentiment <= -0.5",
    "event.properties.sentiment <= -0.{k}",
)


def rule_file(count: int = 50) -> str:
    """The example's three journeys, varied into `count` rules."""
    out: list[str] = []
    for i in range(count):
        kind, k, n = i % 3, 1 + i % 4, 20 + 10 * (i % 7)
        if kind == 0:
            condition = CART_CONDITIONS[i % len(CART_CONDITIONS)].format(n=n, k=k)
            out.append(
                f"""  - id: abandoned-cart-{i:02d}
    priority: {i % 60}
    trigger: {{event: {CART_TRIGGERS[i % len(CART_TRIGGERS)]}, channel: [web, mobile]}}
    condition: "{condition}"
    wait: {{for: {15 + i}m, cancel_on: [order.completed, cart.cleared], recheck: "len(cart.items) > 0"}}
    reentry: {("restart", "ignore")[i % 2]}
    cooldown: 24h
    holdout: {i % 20}%
    goal: {{event: order.completed, within: 3d}}
    action: {{type: email.send, params: {{template: cart_{i}, total: "${{cart.total}}"}}}}
"""
            )
        elif kind == 1:
            condition = NEAR_CONDITIONS[i % len(NEAR_CONDITIONS)].format(k=k)
            out.append(
                f"""  - id: nearby-store-offer-{i:02d}
    priority: {i % 50}
    trigger: {{event: {NEAR_TRIGGERS[i % len(NEAR_TRIGGERS)]}}}
    condition: "{condition}"
    cooldown: 12h
    quiet_hours: {("defer", "drop", "ignore")[i % 3]}
    variants:
      - {{id: plain, weight: 1}}
      - {{id: bold, weight: 1, params: {{tone: bold}}}}
    action: {{type: push.send, params: {{template: nearby_{i}, store: "${{event.properties.geofence}}"}}}}
"""
            )
        else:
            condition = CHAT_CONDITIONS[i % len(CHAT_CONDITIONS)].format(k=k)
            out.append(
                f"""  - id: chatbot-to-human-{i:02d}
    priority: {100 + i}
    trigger: {{event: {CHAT_TRIGGERS[i % len(CHAT_TRIGGERS)]}}}
    condition: "{condition}"
    cooldown: 15m
    action: {{type: chat.handoff, category: service, params: {{queue: tier{k}}}, context: true}}
"""
            )
    return HEADER + "".join(out)


def load_rule_set(count: int = 50) -> RuleSet:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rules_50.yaml"
        path.write_text(rule_file(count), encoding="utf-8")
        return load_rules(path)


def _event(rng: random.Random, customer: int, serial: int, at: float) -> dict[str, Any]:
    """A touchpoint drawn from a mix weighted like a retail day: browsing first, chat and stores rarer."""
    cid = f"cust-{customer:06d}"
    base: dict[str, Any] = {
        "event_id": f"{cid}-{serial}",
        "occurred_at": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
        "customer_id": cid,
        "channel": rng.choice(("web", "mobile")),
    }
    roll = rng.random()
    sku = f"SKU-{rng.randrange(500):04d}"
    if roll < 0.22:
        return {**base, "type": "product.viewed", "properties": {"sku": sku, "price": 30}}
    if roll < 0.34:
        price = rng.choice((9, 45, 120))
        return {**base, "type": "cart.item_added", "properties": {"sku": sku, "qty": 1, "price": price}}
    if roll < 0.44:
        return {**base, "type": rng.choice(("page.viewed", "search.performed", "wishlist.added"))}
    if roll < 0.48:
        return {**base, "type": "cart.item_removed", "properties": {"sku": sku}}
    if roll < 0.52:
        return {**base, "type": "order.completed", "properties": {"order_id": f"o-{serial}", "total": 80}}
    if roll < 0.62:
        near = rng.random() < 0.5
        geo = {"lat": 45.5019, "lon": -73.5670} if near else {"lat": 45.60, "lon": -73.70}
        return {**base, "type": "location.updated", "channel": "mobile", "context": {"geo": geo}}
    if roll < 0.70:
        return {
            **base,
            "type": rng.choice(("app.opened", "beacon.seen", "store.checked_in")),
            "channel": "mobile",
        }
    if roll < 0.77:
        return {**base, "type": "chat.intent_failed", "channel": "chat", "properties": {"intent": "stock"}}
    if roll < 0.90:
        sentiment = round(rng.uniform(-1, 1), 2)
        props = {"text": "hi", "sentiment": sentiment}
        return {**base, "type": "chat.message", "channel": "chat", "properties": props}
    if roll < 0.97:
        return {**base, "type": rng.choice(("call.ended", "social.mentioned")), "channel": "chat"}
    return {**base, "type": "chat.resolved", "channel": "chat"}


def workload(customers: int, per_customer: int, seed: int = 7) -> list[Touchpoint]:
    """`customers × per_customer` touchpoints over two days, in time order (the order replay needs)."""
    rng = random.Random(seed)
    timed: list[tuple[float, int, int]] = []
    for customer in range(customers):
        for serial, offset in enumerate(sorted(rng.uniform(0, SPAN_S) for _ in range(per_customer))):
            timed.append((START + round(offset), customer, serial))
    timed.sort()
    return [Touchpoint.model_validate(_event(rng, c, s, at)) for at, c, s in timed]


def replay_rate(rules: RuleSet, events: list[Touchpoint]) -> tuple[float, int]:
    replay = Replay(Engine(rules))
    start = time.perf_counter()
    actions = sum(len(step.actions) for step in replay.run(events, until=START + SPAN_S + 86400))
    return len(events) / (time.perf_counter() - start), actions


def engine_rate(rules: RuleSet, events: list[Touchpoint]) -> tuple[float, int]:
    engine = Engine(rules)
    states: dict[str, CustomerState | None] = {}
    actions = 0
    start = time.perf_counter()
    for event in events:
        cid = event.customer_id or ""
        step = engine.apply(cid, states.get(cid), [event], event.ts)
        states[cid] = step.state
        actions += len(step.actions)
    return len(events) / (time.perf_counter() - start), actions


def passes(measure: Callable[[], tuple[float, int]], count: int) -> tuple[float, float, int]:
    """Best and median events/s of `count` passes, each from empty states, and the actions decided.

    A shared VM swings single passes by ±10 %: the best pass is the least disturbed one (as `timeit`
    reports), the median shows the spread. Every pass must decide the same actions.
    """
    results = [measure() for _ in range(count)]
    actions = {decided for _, decided in results}
    if len(actions) != 1:
        raise AssertionError(f"passes decided different numbers of actions: {sorted(actions)}")
    rates = sorted(rate for rate, _ in results)
    return rates[-1], statistics.median(rates), actions.pop()


def profile(fn: Callable[[], Any], top: int = 15) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW TARGET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events-per-customer", type=int, default=12)
    parser.add_argument("--passes", type=int, default=3, help="passes per path; the best is reported")
    parser.add_argument("--profile", action="store_true", help="cProfile the replay run (top 15 by own time)")
    parser.add_argument(
        "--plain-gc", action="store_true", help="keep the interpreter's GC defaults (no worker tuning)"
    )
    args = parser.parse_args()

    rules = load_rule_set()
    print(f"building {args.customers * args.events_per_customer:,} events for {args.customers:,} customers …")
    events = workload(args.customers, args.events_per_customer)
    if args.plain_gc:
        print("GC: interpreter defaults (--plain-gc)")
    else:
        tune_gc()
        print(
            f"GC: tuned as the worker is (gc.freeze() after start-up, gen-0 threshold {GC_GEN0_THRESHOLD:,})"
        )
    engine_eps, engine_median, engine_actions = passes(lambda: engine_rate(rules, events), args.passes)
    replay_eps, replay_median, replay_actions = passes(lambda: replay_rate(rules, events), args.passes)

    print(f"\n{len(rules.rules)} rules, {len(events):,} events, {args.customers:,} customers (one process)")
    print(f"best of {args.passes} passes (median in brackets)")
    print(f"{'path':<20} {'events/s':>19} {'actions':>9}  target ≥ {TARGET_EVENTS_PER_S:,}/s for the engine")
    engine_verdict = _verdict(engine_eps >= TARGET_EVENTS_PER_S)
    replay_note = "(the engine + alias map, deadline heap)"
    for path, best, median, actions, note in (
        ("raw Engine.apply", engine_eps, engine_median, engine_actions, engine_verdict),
        ("replay driver", replay_eps, replay_median, replay_actions, replay_note),
    ):
        print(f"{path:<20} {best:>8,.0f} ({median:>8,.0f}) {actions:>9,}  {note}")

    print(
        f"\n{'condition':<36} {'ours µs':>8} {'CEL µs':>8} {'CEL reused µs':>14}"
        f"  target ≤ {TARGET_CONDITION_US} µs"
    )
    for label, ours, fresh, reused in measure_conditions():
        verdict = _verdict(ours <= TARGET_CONDITION_US)
        print(f"{label:<36} {ours:>8.3f} {fresh:>8.3f} {reused:>14.3f}  {verdict}")
    print(
        "median µs per evaluation (benchmarks.bench_expr); CEL builds a context per call, 'reused' shares one"
    )

    if args.profile:
        print("\ncProfile of the replay run, top costs by own time:")
        print(profile(lambda: replay_rate(rules, events)))


if __name__ == "__main__":
    main()
