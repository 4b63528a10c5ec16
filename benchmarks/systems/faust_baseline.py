"""Faust baselines: an agent that does nothing, and a naive agent that keeps a JSON dict per
customer in a RocksDB-backed Table, read and written once per event (NOTES.md's two reference points).

Both join their group with the same short session timeout as the worker (on the embedded broker a
join takes about half of it), and both read an explicit topic list: Faust 0.15 accepts `pattern=`
but never subscribes to it.
"""

from __future__ import annotations

import argparse
import logging
import uuid

import faust
import orjson

from benchmarks.systems.result import Stopwatch, finish

SESSION_TIMEOUT_S = 3.0


def build(kind: str, args: argparse.Namespace) -> faust.App:
    app = faust.App(
        f"bench-{kind}-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{args.bootstrap}",
        store="rocksdb://" if kind == "naive" else "memory://",
        datadir=args.data_dir,
        topic_partitions=args.partitions,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=SESSION_TIMEOUT_S / 10,
        broker_rebalance_timeout=SESSION_TIMEOUT_S,
        recovery_consistency_check=False,
        web_enabled=False,
    )
    source = app.topic(
        *args.topics.split(","), value_type=bytes, value_serializer="raw", key_serializer="raw"
    )
    watch = Stopwatch(args.expect)

    if kind == "noop":

        @app.agent(source)
        async def noop(stream: faust.StreamT) -> None:
            async for _ in stream.events():
                if watch.tick():
                    finish(watch, "faust_noop")

    else:
        table = app.Table(
            "naive-state",
            default=None,
            partitions=args.partitions,
            key_type=bytes,
            value_type=bytes,
        )

        @app.agent(source)
        async def naive(stream: faust.StreamT) -> None:
            async for event in stream.events():
                body = orjson.loads(event.value)
                key = (body.get("customer_id") or body.get("anonymous_id") or "unknown").encode()
                raw = table.get(key)
                state = orjson.loads(raw) if raw else {"events": 0, "types": {}}
                state["events"] += 1
                kind_ = body.get("type", "?")
                state["types"][kind_] = state["types"].get(kind_, 0) + 1
                table[key] = orjson.dumps(state)
                if watch.tick():
                    finish(watch, "faust_naive")

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["noop", "naive"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topics", required=True, help="comma-separated")
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = build(args.kind, args)
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
