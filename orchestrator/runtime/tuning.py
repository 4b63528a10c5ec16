"""Process-level tuning of a worker, applied by `journey worker` before Faust starts (benchmarks/RESULTS.md).

- Fetch wait: Faust hard-codes `fetch_max_wait_ms=1500` for its consumer. A broker that does not
  answer a waiting fetch as soon as data arrives (the embedded Tansu broker holds it for the whole
  wait) then stalls a hop for up to 1.5 s whenever one fetch finds its partitions empty — and with
  three hops on one consumer, that happens all the time. A short wait costs a few idle fetches per
  second on any broker and removes the stalls (at 200 events/s on Tansu, publish->action p50
  went from ~0.9 s to ~40 ms).
- Garbage collector: the worker allocates many short-lived objects per event and keeps a large, stable
  heap of modules and rules; freezing the start-up heap and raising the gen-0 threshold makes each
  collection cheaper and rarer.
"""

from __future__ import annotations

import gc
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 5
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
