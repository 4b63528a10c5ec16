"""Process-level tuning of a worker, applied by `journey worker` before Faust starts (benchmarks/RESULTS.md).

- Fetch wait: Faust hard-codes `fetch_max_wait_ms=1500` for its consumer. A broker that does not
  answer a waiting fetch as soon as data arrives (the embedded Tansu broker holds it for the whole
  wait) then stalls every hop for up to that long whenever a fetch finds its partitions empty. Measured
  on Tansu at 200 events/s (benchmarks/RESULTS.md): 1500 ms gives publish->action p50 ~0.9 s; 50 ms
  gives ~0.2 s at unchanged throughput; 5 ms gives ~0.05 s but costs ~25 % of throughput in empty
  fetches. A real Kafka broker answers as soon as data arrives, so there the wait only bounds idle
  polling.
- Garbage collector: the worker allocates many short-lived objects per event and keeps a large, stable
  heap of modules and rules; freezing the start-up heap and raising the gen-0 threshold makes each
  collection cheaper and rarer (+30 % for the pure engine; within noise for the whole worker).
"""

from __future__ import annotations

import gc
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 50
GC_GEN0_THRESHOLD = 50_000

_original_create_worker_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original_create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when its fetcher starts
    return consumer


def tune_app(app: faust.App) -> None:
    """The consumer's fetch wait; call before the app starts (it patches Faust's aiokafka driver)."""
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]


def tune_gc() -> None:
    """Freeze what start-up allocated (modules, rules, app) and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
