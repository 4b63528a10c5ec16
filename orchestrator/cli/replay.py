"""`journey replay`: a dry run of rules over past events, with the same engine as production."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from orchestrator.cli.kpi_output import KpiFormat, print_kpis
from orchestrator.engine import Engine
from orchestrator.engine.kpis import kpi_rows
from orchestrator.eventfile import read_events
from orchestrator.replay import Replay
from orchestrator.rules.loader import RuleLoadError, load_rules
from schemas.touchpoint import _rfc3339


def _timestamp(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        moment: datetime = _rfc3339(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return moment.timestamp()


def replay(
    rules: Annotated[Path, typer.Argument(help="Rule file or folder.")],
    events: Annotated[Path, typer.Argument(help="Touchpoints, one JSON object per line (`-` = stdin).")],
    until: Annotated[
        str | None, typer.Option(help="Advance the clock to this RFC 3339 time at the end, firing due waits.")
    ] = None,
    explain: Annotated[
        bool, typer.Option(help="Also print suppressed and deferred decisions with their reason.")
    ] = False,
    kpis: Annotated[
        bool, typer.Option(help="Print the KPI rows of each rule and group instead of actions.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="KPI output: json (lines) or table.")] = "json",
) -> None:
    """Run the rules offline over EVENTS in file order (clock = event time); print one action per line."""
    if fmt not in ("json", "table"):
        raise typer.BadParameter("--format must be json or table")
    until_ts = _timestamp(until)
    try:
        rule_set = load_rules(rules)
    except RuleLoadError as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        raise typer.Exit(code=1) from None
    driver = Replay(Engine(rule_set))
    for step in driver.run(read_events(events), until=until_ts):
        if kpis:
            continue
        lines = [a.to_dict() for a in step.actions]
        if explain:
            lines += [s.explain() for s in step.suppressed] + [d.explain() for d in step.deferred]
            lines.sort(key=lambda line: line["decided_at"])
        for line in lines:
            print(orjson.dumps(line).decode())
    if kpis:
        fmt_checked: KpiFormat = "table" if fmt == "table" else "json"
        print_kpis(kpi_rows(rule_set, driver.kpis.counts()), fmt_checked)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
