"""Contact policy at the moment of emission: timezone, quiet hours, caps, consent (SPEC §3).

These apply to marketing actions only; a rule's own cooldown (in `core`) applies to every category.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.engine.state import CustomerState
from orchestrator.rules.model import ContactPolicy, QuietHours

DAY_S = 24 * 3600.0


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def customer_timezone(state: CustomerState, default: ZoneInfo) -> ZoneInfo:
    """`traits.timezone`, else the last `context.timezone`, else the rule file's default."""
    for name in (state.traits.get("timezone"), state.context_timezone):
        if isinstance(name, str) and (tz := zone(name)) is not None:
            return tz
    return default


def quiet_until(at: float, tz: ZoneInfo, quiet: QuietHours | None) -> float | None:
    """When the quiet hours covering `at` end, or None if `at` is outside them."""
    if quiet is None or quiet.start_minute == quiet.end_minute:
        return None
    local = datetime.fromtimestamp(at, tz)
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    start, end = quiet.start_minute, quiet.end_minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    end_day = local.date() if minute < end else local.date() + timedelta(days=1)
    naive_end = datetime(end_day.year, end_day.month, end_day.day, end // 60, end % 60)
    return naive_end.replace(tzinfo=tz).timestamp()


def cap_reached(state: CustomerState, policy: ContactPolicy, channel: str, at: float) -> bool:
    """True when one more marketing action on `channel` would exceed a rolling-24 h cap."""
    window_start = at - DAY_S
    recent = [e for e in state.emissions if window_start < e.at <= at]
    if policy.max_per_day is not None and len(recent) >= policy.max_per_day:
        return True
    channel_cap = policy.channel_max_per_day.get(channel)
    return channel_cap is not None and sum(e.channel == channel for e in recent) >= channel_cap


def prune_emissions(state: CustomerState, now: float) -> None:
    """Emissions older than a day can never count against a cap again."""
    if state.emissions and state.emissions[0].at <= now - DAY_S:
        state.emissions = [e for e in state.emissions if e.at > now - DAY_S]


def consent_refused(state: CustomerState, channel: str) -> bool:
    """Only an explicit opt-out refuses; unknown consent allows (SPEC §3)."""
    return state.consent.get(channel) is False
