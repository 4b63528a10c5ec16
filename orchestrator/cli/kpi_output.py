"""Printing KPI rows, shared by `journey replay --kpis` and `journey kpis`."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from rich.console import Console
from rich.table import Table

KpiFormat = Literal["json", "table"]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def print_kpis(rows: list[dict[str, Any]], fmt: KpiFormat) -> None:
    if fmt == "json":
        for row in rows:
            print(orjson.dumps(row).decode())
        return
    from orchestrator.kpi_stats import with_statistics  # scipy: costly to import, needed only here

    table = Table(title="KPIs per rule and group (Wilson 95 % interval; p-value vs holdout)")
    for column in ("rule", "group", "actions", "conversions", "rate", "95 % CI", "uplift", "p-value"):
        table.add_column(column, justify="left" if column in ("rule", "group") else "right")
    for row in with_statistics(rows):
        interval = "—" if row["ci_low"] is None else f"{_pct(row['ci_low'])} – {_pct(row['ci_high'])}"
        table.add_row(
            row["rule_id"],
            row["group"],
            str(row["actions"]),
            "—" if row["conversions"] is None else str(row["conversions"]),
            _pct(row["rate"]),
            interval,
            "—" if row["uplift"] is None else f"{row['uplift'] * 100:+.1f} pt",
            "—" if row["p_value"] is None else f"{row['p_value']:.3g}",
        )
    Console().print(table)
