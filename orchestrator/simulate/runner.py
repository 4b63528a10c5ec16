"""The live publishing loop: plays plans on Kafka in real time, stamping each event as it is sent.

Two knobs shape the pace, independently: `journey_scale` stretches or compresses the time between a
persona's events (0 = no gaps at all), and `rate` caps how many messages per second go out (0 = no
cap). With both at 0 the simulator publishes as fast as the broker takes it, for load tests.
With a `duration`, new rounds of customers keep arriving until it has elapsed; without one, the
planned customers play once.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from orchestrator.config import Settings
from orchestrator.logging import get_logger
from orchestrator.publish import Publisher
from orchestrator.simulate.workload import PlannedMessage, plan

log = get_logger(__name__)

Progress = Callable[["SimulationReport"], None]


@dataclass
class SimulationReport:
    """What was sent; `planned` is the size of the current round (for a progress bar)."""

    seed: int
    sent: int = 0
    malformed: int = 0
    resent: int = 0
    rounds: int = 0
    planned: int = 0
    elapsed_s: float = 0.0
    by_topic: Counter[str] = field(default_factory=Counter)
    by_persona: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Pacer:
    """Waits until a message is due by its plan offset and, with a rate cap, by its rate slot.

    The rate slot is virtual time that advances 1/rate per message, so many small sleeps are avoided:
    the loop sleeps only when it is ahead of both clocks.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1 / rate if rate > 0 else 0.0
        self.slot = 0.0

    def due(self, planned_at: float) -> float:
        self.slot = max(self.slot + self.interval, planned_at)
        return self.slot


async def simulate(
    bootstrap: str | None = None,
    seed: int = 0,
    customers: int = 100,
    rate: float = 0.0,
    duration: float | None = None,
    journey_scale: float = 1.0,
    *,
    settings: Settings | None = None,
    faults: bool = True,
    personas: list[str] | None = None,
    on_progress: Progress | None = None,
) -> SimulationReport:
    """Publish simulated journeys live; returns when the plan (or `duration`) is done, or on cancel.

    Events are stamped `occurred_at` = the wall clock when sent; a re-sent event keeps the stamp and
    bytes of its first sending. Topics follow `settings.touchpoints_prefix`.
    """
    settings = settings or Settings()
    report = SimulationReport(seed=seed)
    deadline = math.inf if duration is None else duration
    pacer = _Pacer(rate)
    started = time.monotonic()
    async with Publisher(bootstrap, settings=settings) as publisher:
        for round_no in itertools.count():
            round_start = time.monotonic() - started
            messages = plan(
                seed,
                customers,
                journey_scale=journey_scale,
                round_no=round_no,
                faults=faults,
                personas=personas,
                topic_prefix=settings.touchpoints_prefix,
            )
            report.rounds, report.planned = round_no + 1, len(messages)
            finished = await _play(
                publisher, messages, round_start, started, deadline, pacer, report, on_progress
            )
            if not finished or duration is None or time.monotonic() - started >= deadline:
                break
            if not messages:
                await asyncio.sleep(min(1.0, deadline - (time.monotonic() - started)))
        await publisher.flush()
    report.elapsed_s = time.monotonic() - started
    log.info(
        "simulate.done",
        seed=seed,
        sent=report.sent,
        rounds=report.rounds,
        elapsed_s=round(report.elapsed_s, 2),
    )
    return report


async def _play(
    publisher: Publisher,
    messages: list[PlannedMessage],
    round_start: float,
    started: float,
    deadline: float,
    pacer: _Pacer,
    report: SimulationReport,
    on_progress: Progress | None,
) -> bool:
    """Send one round; False when the deadline cut it short."""
    resent_ids = {m.resend_of for m in messages if m.resend_of is not None}
    stamps: dict[str, bytes] = {}
    for index, message in enumerate(messages):
        due = pacer.due(round_start + message.offset_s)
        if due >= deadline:
            return False
        ahead = due - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)
        elif index % 500 == 0:
            await asyncio.sleep(0)  # let the producer's sender task run during a burst
        if message.resend_of is not None and message.resend_of in stamps:
            value = stamps[message.resend_of]
            report.resent += 1
        else:
            value = message.render(datetime.now(UTC))
            if message.event_id in resent_ids:
                stamps[message.event_id] = value
        await publisher.send_raw(message.topic, value, message.key)
        report.sent += 1
        report.malformed += not message.valid
        report.by_topic[message.topic] += 1
        report.by_persona[message.persona] += 1
        if on_progress is not None:
            report.elapsed_s = time.monotonic() - started
            on_progress(report)
    return True
