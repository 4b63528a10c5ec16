"""Builders shared by the engine and replay tests: small rule files, compact events, one-call replays.

Each test writes the few rules it needs (YAML, through the real loader) and a handful of events, so a
failure points at one rule feature and one sentence of the spec.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.engine import Deferral, Engine, Step, Suppression
from orchestrator.engine.kpis import kpi_rows
from orchestrator.replay import Replay
from orchestrator.rules.loader import load_rules
from orchestrator.rules.model import RuleSet
from schemas import Action, Touchpoint

BASE = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
"""A Monday, 11:00 in Paris: outside the example quiet hours, so tests opt into them explicitly."""

_counter = itertools.count()


def ts(offset: str | float = 0, base: datetime = BASE) -> str:
    """RFC 3339 at `base` + offset; the offset is seconds or `<n>s|m|h|d` (e.g. "30m")."""
    return iso(at(offset, base))


def at(offset: str | float = 0, base: datetime = BASE) -> float:
    """Unix seconds at `base` + offset (same offset syntax as `ts`)."""
    if isinstance(offset, str):
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        seconds = float(offset[:-1]) * units[offset[-1]]
    else:
        seconds = float(offset)
    return (base + timedelta(seconds=seconds)).timestamp()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def ev(
    type_: str,
    when: str | float = 0,
    *,
    cid: str | None = "c1",
    anon: str | None = None,
    ids: dict[str, str] | None = None,
    channel: str = "web",
    eid: str | None = None,
    context: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    **props: Any,
) -> Touchpoint:
    """One touchpoint; `when` is an offset from BASE (or an RFC 3339 string with a `T`).

    Properties come as keyword arguments, or in `properties` for names that clash (e.g. `channel`).
    """
    occurred = when if isinstance(when, str) and "T" in when else ts(when)
    data: dict[str, Any] = {
        "event_id": eid or f"e{next(_counter)}",
        "type": type_,
        "channel": channel,
        "occurred_at": occurred,
        "properties": {**(properties or {}), **props},
    }
    if cid is not None:
        data["customer_id"] = cid
    if anon is not None:
        data["anonymous_id"] = anon
    if ids is not None:
        data["identifiers"] = ids
    if context is not None:
        data["context"] = context
    return Touchpoint.model_validate(data)


def rules_yaml(rules: str, *, header: str = "") -> str:
    """A complete rule file: `version: 1`, an optional header (defaults, caps, …), then `rules:`."""
    head = textwrap.dedent(header).strip("\n")
    body = textwrap.indent(textwrap.dedent(rules).strip("\n"), "  ")
    return f"version: 1\n{head}\nrules:\n{body}\n"


def load(tmp_path: Path, rules: str, *, header: str = "", name: str = "rules.yaml") -> RuleSet:
    path = tmp_path / name
    path.write_text(rules_yaml(rules, header=header), encoding="utf-8")
    return load_rules(path)


@dataclass
class Outcome:
    """What a replay decided, flattened in decision order."""

    replay: Replay
    steps: list[Step] = field(default_factory=list)

    @property
    def actions(self) -> list[Action]:
        return [a for s in self.steps for a in s.actions]

    @property
    def suppressed(self) -> list[Suppression]:
        return [x for s in self.steps for x in s.suppressed]

    @property
    def deferred(self) -> list[Deferral]:
        return [x for s in self.steps for x in s.deferred]

    @property
    def conversions(self) -> list[Any]:
        return [x for s in self.steps for x in s.conversions]

    def of(self, rule_id: str) -> list[Action]:
        return [a for a in self.actions if a.rule_id == rule_id]

    def decided(self) -> list[tuple[str, str, str]]:
        """(rule, customer, decided_at) per action: the short form most assertions need."""
        return [(a.rule_id, a.customer_id, a.decided_at) for a in self.actions]

    def kpis(self) -> list[dict[str, Any]]:
        return kpi_rows(self.replay.engine.rules, self.replay.kpis.counts())


def run(rules: RuleSet, events: Iterable[Touchpoint], until: str | float | None = None) -> Outcome:
    """Replay `events` in order; `until` is an offset from BASE (or RFC 3339) to advance to at the end."""
    replay = Replay(Engine(rules))
    until_ts: float | None = None
    if until is not None:
        until_ts = (
            datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp()
            if isinstance(until, str) and "T" in until
            else at(until)
        )
    outcome = Outcome(replay)
    outcome.steps.extend(replay.run(events, until=until_ts))
    return outcome


def action_lines(steps: Sequence[Step]) -> list[dict[str, Any]]:
    return [a.to_dict() for s in steps for a in s.actions]
