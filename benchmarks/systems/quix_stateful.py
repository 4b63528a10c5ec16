"""The peer a Python user would pick instead: a Quix Streams pipeline doing the naive agent's work
(JSON decode, per-customer state read and write in its RocksDB store)."""

from __future__ import annotations

import argparse
import logging
import uuid
from typing import Any

from quixstreams import Application, State

from benchmarks.systems.result import Stopwatch, finish


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topics", required=True, help="comma-separated")
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel=logging.WARNING,
        use_changelog_topics=True,
        # librdkafka's default 45 s session makes a group join on the embedded broker take ~24 s
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 600},
    )
    watch = Stopwatch(args.expect)

    def update(value: dict[str, Any], state: State) -> None:
        current = state.get("state") or {"events": 0, "types": {}}
        current["events"] += 1
        current["types"][value.get("type", "?")] = current["types"].get(value.get("type", "?"), 0) + 1
        state.set("state", current)
        if watch.tick():
            finish(watch, "quix_stateful")

    for name in args.topics.split(","):
        sdf = app.dataframe(app.topic(name, value_deserializer="json"))
        sdf.update(update, stateful=True)
    app.run()


if __name__ == "__main__":
    main()
