"""The worker's batched path decides exactly what the per-event engine decides, on the same events.

`journey replay` (orchestrator.replay.Replay) applies one event at a time. The customers agent
(agents/customers.py) instead resolves identity in arrival order, groups a batch's events per
profile, flushes a profile's queued events before a merge hands its state over, and calls
`Engine.apply` once per profile with the whole list. `batched_actions` reproduces that grouping
in-process; both must produce the same action ids for a simulator workload (with re-sent events)
under the benchmark's 50-rule set and the example rules, whatever the batch size.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import REPO_ROOT

if str(REPO_ROOT) not in sys.path:  # `benchmarks` is not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_engine import rule_file
from orchestrator.config import EXAMPLE_RULES
from orchestrator.engine import CustomerState, Engine, Step, resolve_identity
from orchestrator.replay import Replay
from orchestrator.rules.loader import load_rules
from orchestrator.simulate import generate
from schemas import InvalidEvent, Touchpoint, parse_touchpoint

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
UNTIL = START.timestamp() + 3 * 86400  # every wait and deferral of these rules has ended by then


def workload(customers: int) -> list[Touchpoint]:
    """A load-test workload (every event at one instant, as the benchmark sends it), re-sends included."""
    events = []
    for message in generate(11, customers, START, journey_scale=0, faults=True):
        try:
            events.append(parse_touchpoint(message.value))
        except InvalidEvent:
            continue  # the malformed messages the worker dead-letters
    return events


def replay_actions(engine: Engine, events: list[Touchpoint]) -> set[str]:
    return {a.action_id for step in Replay(engine).run(events, until=UNTIL) for a in step.actions}


def _chunks(events: list[Touchpoint], size: int) -> Iterable[list[Touchpoint]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def batched_actions(engine: Engine, events: list[Touchpoint], batch_size: int) -> set[str]:
    """What the customers agent decides when the events arrive in batches of `batch_size`."""
    states: dict[str, CustomerState] = {}
    aliases: dict[str, str] = {}
    actions: set[str] = set()

    def record(profile: str, step: Step) -> None:
        actions.update(a.action_id for a in step.actions)
        for alias in step.forget_aliases:
            aliases.pop(alias, None)
        if step.state is None:
            states.pop(profile, None)
        else:
            states[profile] = step.state

    for batch in _chunks(events, batch_size):
        now = max(event.ts for event in batch)
        queued: dict[str, list[Touchpoint]] = {}

        def flush(profile: str, queued: dict[str, list[Touchpoint]] = queued, now: float = now) -> None:
            pending = queued.pop(profile, [])
            if pending:
                record(profile, engine.apply(profile, states.get(profile), pending, now))

        for event in batch:
            resolution = resolve_identity(event, aliases.get)
            profile = resolution.profile_id
            for alias in resolution.links:
                aliases[alias] = profile
            if resolution.merge_from:  # Handoff: the anonymous profile's earlier events first
                flush(profile)
                for anon in resolution.merge_from:
                    flush(anon)
                    merged = engine.merge(states.get(profile), states.pop(anon, None))
                    if merged is not None:
                        states[profile] = merged
            queued.setdefault(profile, []).append(event)
        for profile in list(queued):
            flush(profile)

    # the timer: every profile with something due by UNTIL, in due order
    due = sorted((d, p) for p, s in states.items() if (d := engine.next_due(s)) is not None and d <= UNTIL)
    for _, profile in due:
        if profile in states:
            record(profile, engine.advance(profile, states[profile], UNTIL))
    return actions


@pytest.fixture(scope="module")
def events() -> list[Touchpoint]:
    return workload(250)


@pytest.fixture(scope="module", params=["bench-50-rules", "example-rules"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    if request.param == "example-rules":
        return Engine(load_rules(EXAMPLE_RULES))
    path = Path(tmp_path_factory.mktemp("rules")) / "rules_50.yaml"
    path.write_text(rule_file(50), encoding="utf-8")
    return Engine(load_rules(path))


@pytest.mark.parametrize("batch_size", [1, 7, 500, 5000])
def test_batched_path_decides_the_same_actions(
    engine: Engine, events: list[Touchpoint], batch_size: int
) -> None:
    expected = replay_actions(engine, events)
    assert expected, "the workload must trigger actions, or the comparison proves nothing"
    assert batched_actions(engine, events, batch_size) == expected


def test_workload_has_duplicates_and_merges(events: list[Touchpoint]) -> None:
    """The comparison covers re-sent events and anonymous-to-customer merges."""
    ids = [event.event_id for event in events]
    assert len(ids) > len(set(ids))
    assert any(event.type == "identify" and event.anonymous_id for event in events)
