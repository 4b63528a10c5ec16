"""In-memory index of the next deadline of every profile this worker owns.

The timer must find due waits without scanning the state table: one min-heap per partition of
`(due, profile)`, with lazy deletion (an entry counts only while it matches `due_of`). The
index is rebuilt from the small `deadlines` table after every rebalance, so a restart or a
partition move never decodes customer states.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class DeadlineIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[float, str]]] = {}
        self._due_of: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._due_of)

    def due_of(self, profile: str) -> float | None:
        return self._due_of.get(profile)

    def set(self, partition: int, profile: str, due: float | None) -> None:
        """Record a profile's new next deadline (None: nothing pending)."""
        if due is None:
            self._due_of.pop(profile, None)
            return
        if self._due_of.get(profile) == due:
            return
        self._due_of[profile] = due
        heapq.heappush(self._heaps.setdefault(partition, []), (due, profile))

    def rebuild(self, entries: Iterable[tuple[int, str, float]]) -> None:
        """Replace everything with `(partition, profile, due)` entries."""
        self._heaps.clear()
        self._due_of.clear()
        for partition, profile, due in entries:
            self._due_of[profile] = due
            self._heaps.setdefault(partition, []).append((due, profile))
        for heap in self._heaps.values():
            heapq.heapify(heap)

    def clear(self) -> None:
        self._heaps.clear()
        self._due_of.clear()

    def _drop_stale(self, heap: list[tuple[float, str]]) -> None:
        while heap and self._due_of.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)

    def next_due(self, partition: int) -> float | None:
        heap = self._heaps.get(partition)
        if not heap:
            return None
        self._drop_stale(heap)
        return heap[0][0] if heap else None

    def partitions_due(self, now: float) -> list[int]:
        return [p for p in list(self._heaps) if (due := self.next_due(p)) is not None and due <= now]

    def pop_due(self, partition: int, now: float) -> list[tuple[str, float]]:
        """`(profile, due)` of `partition` due at or before `now`, removed from the index.

        The caller writes each profile back after advancing it, which re-indexes its next deadline.
        """
        heap = self._heaps.get(partition, [])
        due_profiles: list[tuple[str, float]] = []
        while True:
            self._drop_stale(heap)
            if not heap or heap[0][0] > now:
                return due_profiles
            due, profile = heapq.heappop(heap)
            del self._due_of[profile]
            due_profiles.append((profile, due))
