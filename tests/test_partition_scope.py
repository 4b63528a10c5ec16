"""`acting_for` makes Faust route table access to the named event's partition, and only in its block."""

from __future__ import annotations

import asyncio

import faust
from runtime_support import FakeEvent, FakeMessage

from orchestrator.runtime.partition_scope import acting_for, by_partition


def event(partition: int, offset: int) -> FakeEvent:
    return FakeEvent(FakeMessage(partition, offset))


def test_acting_for_sets_the_current_event_and_restores_the_previous_one() -> None:
    first, second = event(0, 1), event(3, 7)
    assert faust.current_event() is None
    with acting_for(first):  # type: ignore[arg-type]
        assert faust.current_event() is first
        with acting_for(second):  # type: ignore[arg-type]
            assert faust.current_event() is second
        assert faust.current_event() is first
    assert faust.current_event() is None


def test_acting_for_restores_on_error() -> None:
    try:
        with acting_for(event(2, 0)):  # type: ignore[arg-type]
            raise RuntimeError("engine bug")
    except RuntimeError:
        pass
    assert faust.current_event() is None


def test_acting_for_stays_in_its_own_task() -> None:
    """Agents run concurrently on one loop: one agent's partition must not leak into another's."""

    async def main() -> list[object]:
        seen: list[object] = []
        started = asyncio.Event()

        async def agent() -> None:
            with acting_for(event(1, 0)):  # type: ignore[arg-type]
                started.set()
                await asyncio.sleep(0.01)

        async def other() -> None:
            await started.wait()
            seen.append(faust.current_event())

        await asyncio.gather(agent(), other())
        return seen

    assert asyncio.run(main()) == [None]


def test_by_partition_keeps_offset_order_within_each_partition() -> None:
    events = [event(1, 10), event(0, 5), event(1, 11), event(2, 1), event(0, 6)]
    groups = by_partition(events)  # type: ignore[arg-type]
    assert {p: [e.message.offset for e in group] for p, group in groups.items()} == {
        1: [10, 11],
        0: [5, 6],
        2: [1],
    }
