"""Act for one partition while an agent handles a batch of messages from several partitions.

Faust routes every table access by its *current event*: a write goes to the RocksDB store and the
changelog partition of the message being processed, a read looks in that partition's store only.
`Stream.take_events` hands an agent many messages at once and sets no current event in the agent's
task, so an agent that batches messages names the partition it acts for: within `acting_for(event)`
the event is the current one, exactly as while Faust iterates that message itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import faust
from faust.streams import _current_event  # the context variable `faust.current_event()` reads


@contextmanager
def acting_for(event: faust.EventT) -> Iterator[None]:
    """Table reads and writes in the block go to `event`'s partition; the previous event is restored."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def by_partition(events: Sequence[faust.EventT]) -> dict[int, list[faust.EventT]]:
    """`events` grouped by source partition, each group in arrival (offset) order."""
    groups: dict[int, list[faust.EventT]] = {}
    for event in events:
        groups.setdefault(event.message.partition, []).append(event)
    return groups


class BatchWrites(Protocol):
    """One partition's share of a batch: the table writes it staged while deciding."""

    def write(self) -> None: ...


def write_in_partitions(runs: Sequence[tuple[faust.EventT, BatchWrites]]) -> None:
    """Each run's writes, acting for the partition of its event."""
    for event, run in runs:
        with acting_for(event):
            run.write()
