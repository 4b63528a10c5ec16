"""Confidence intervals and significance for KPI rows, for people reading them (not the hot path)."""

from __future__ import annotations

import math
from typing import Any

from scipy import stats

Z95 = float(stats.norm.ppf(0.975))


def wilson_interval(conversions: int, actions: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a conversion rate; honest with small counts, unlike the normal one."""
    if actions <= 0:
        return None
    p = conversions / actions
    denominator = 1 + z * z / actions
    centre = (p + z * z / (2 * actions)) / denominator
    half = z * math.sqrt(p * (1 - p) / actions + z * z / (4 * actions * actions)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p_value(c1: int, n1: int, c2: int, n2: int) -> float | None:
    """Two-sided p-value of a pooled two-proportion z-test (variant vs holdout)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (c1 + c2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (c1 / n1 - c2 / n2) / se
    return float(2 * stats.norm.sf(abs(z)))


def with_statistics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `ci_low`, `ci_high` and `p_value` (each group against its rule's holdout) to KPI rows."""
    holdouts = {r["rule_id"]: r for r in rows if r["group"] == "holdout"}
    out: list[dict[str, Any]] = []
    for row in rows:
        extra: dict[str, Any] = {"ci_low": None, "ci_high": None, "p_value": None}
        if row["conversions"] is not None:
            interval = wilson_interval(row["conversions"], row["actions"])
            if interval is not None:
                extra["ci_low"], extra["ci_high"] = interval
            holdout = holdouts.get(row["rule_id"])
            if holdout is not None and row["group"] != "holdout":
                extra["p_value"] = two_proportion_p_value(
                    row["conversions"], row["actions"], holdout["conversions"], holdout["actions"]
                )
        out.append({**row, **extra})
    return out
