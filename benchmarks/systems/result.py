"""The one JSON line a benchmark system prints when it has consumed everything."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field


@dataclass
class Stopwatch:
    """Counts messages; the clock starts at the first one, so start-up and joins are excluded."""

    expect: int
    count: int = 0
    first: float | None = None
    last: float = field(default=0.0)

    def start(self) -> None:
        self.first = time.perf_counter()

    def tick(self, n: int = 1) -> bool:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.count += n
        self.last = now
        return self.count >= self.expect

    def report(self, system: str) -> None:
        seconds = max(self.last - (self.first or self.last), 1e-9)
        line = {
            "system": system,
            "count": self.count,
            "seconds": round(seconds, 4),
            "eps": round(self.count / seconds, 1),
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def finish(watch: Stopwatch, system: str) -> None:
    """Report and leave at once: the baselines have no state worth a graceful shutdown."""
    watch.report(system)
    os._exit(0)
