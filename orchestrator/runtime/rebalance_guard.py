"""Two guards around Faust's rebalance handling, without which events are lost or commits stall.

Found by the scale-out test (tests/test_scale_out.py: three workers, one killed -9 under load): in
about half the runs, events published during the rebalance were never applied, or a partition's
committed offset stopped moving while its events kept being processed. Traced in Faust 0.15's
consumer bookkeeping (docs/runtime.md, "Rebalances"):

1. **Stream partitions resumed before they are sought.** When recovery completes, Faust resumes the
   stream partitions and only then awaits `perform_seek()` (a broker round trip). The flow is
   already active at that point (changelog recovery resumed it), so the fetcher delivers records
   from wherever the client's position is, before the seek resets the read offsets and the
   committed-offset bookkeeping under them. Acks recorded before the seek then no longer line up
   with the offsets after it: the commit either jumps over events that were only fetched, or waits
   forever for offsets that were dropped as already read. The guard holds stream partitions back
   until the seek of that recovery has finished, then resumes them.
2. **Skipped messages are acked.** While a rebalance suspends the flow, a stream drops ("skips")
   the messages it takes from its queue and acks them, and the revocation's commit then counts them
   as processed. The guard records acks made while the flow is suspended as done (so the rebalance
   does not wait for them) but never as committable: those offsets are fetched again by whoever
   owns the partition next. At worst an event is processed twice, which the engine's `event_id`
   deduplication and deterministic action ids absorb (SPEC §2).

`install()` patches the classes once per process; `create_app` calls it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.types.tuples import TP, ack_lock
from mode.utils.futures import notify

_ORIGINAL_RESUME = Consumer.resume_partitions
_ORIGINAL_SEEK = Consumer.perform_seek
_ORIGINAL_ACK = Consumer.ack
_ORIGINAL_COMPLETED = Recovery.on_recovery_completed
_ORIGINAL_RESUME_STREAMS = Recovery._resume_streams


class _SeekFirst:
    """Per-consumer state of guard 1: the stream partitions held back until the seek is done."""

    def __init__(self) -> None:
        self.active = False
        self.held: set[TP] = set()


def _seek_first(consumer: Any) -> _SeekFirst:
    state = consumer.__dict__.get("_journey_seek_first")
    if state is None:
        state = consumer.__dict__["_journey_seek_first"] = _SeekFirst()
    return state


def resume_partitions(self: Any, tps: Iterable[TP]) -> None:
    """Guard 1: while a recovery completes, stream partitions wait for `perform_seek`."""
    state = _seek_first(self)
    if not state.active:
        _ORIGINAL_RESUME(self, tps)
        return
    tps = set(tps)
    streams = {tp for tp in tps if not self._is_changelog_tp(tp)}
    state.held |= streams
    _ORIGINAL_RESUME(self, tps - streams)


async def perform_seek(self: Any) -> None:
    await _ORIGINAL_SEEK(self)
    state = _seek_first(self)
    if state.active:
        held, state.held, state.active = state.held, set(), False
        _ORIGINAL_RESUME(self, held)


def ack(self: Any, message: Any) -> bool:
    """Guard 2: an ack while the flow is suspended releases the message, never commits it."""
    if self.app.flow_control.is_active():
        return bool(_ORIGINAL_ACK(self, message))
    with ack_lock:
        if not message.acked:
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
    return False


def seeking_first(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Wrap a Recovery method that resumes stream partitions and then seeks them (guard 1)."""

    async def completed(self: Any, generation_id: int = 0) -> None:
        state = _seek_first(self.app.consumer)
        state.active, state.held = True, set()
        try:
            await original(self, generation_id)
        finally:
            state.active, state.held = False, set()

    return completed


def install() -> None:
    """Patch Faust's Recovery and Consumer (idempotent)."""
    Consumer.resume_partitions = resume_partitions  # type: ignore[method-assign]
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    Consumer.ack = ack  # type: ignore[method-assign]
    Recovery.on_recovery_completed = seeking_first(_ORIGINAL_COMPLETED)  # type: ignore[method-assign]
    Recovery._resume_streams = seeking_first(_ORIGINAL_RESUME_STREAMS)  # type: ignore[method-assign]
