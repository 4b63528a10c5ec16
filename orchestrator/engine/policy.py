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
    trait = state.traits.get("timezone")
    if isinstance(trait, str) and (tz := zone(trait)) is not None:
        return tz
    context = state.context_timezone
    if isinstance(context, str) and (tz := zone(context)) is not None:
        return tz
    return default


def quiet_until(at: float, tz: ZoneInfo, quiet: QuietHours | None) -> float | None:
    """When the quiet hours covering `at` end, or None if `at` is outside them.

    The answer depends only on the local date and minute of `at`, so it is cached per UTC minute
    wherever that minute is one local minute (the offset is whole minutes and does not change
    within it): a timezone conversion per marketing decision was a measurable share of the engine.
    """
    if quiet is None:
        return None
    start, end = quiet.start_minute, quiet.end_minute
    if start == end:
        return None
    # Under 1 µs short of the next second, `datetime` rounds `at` into it: those go the exact way.
    if at >= 0:
        whole = int(at)
        if at - whole < _LAST_SAFE_FRACTION:
            cached = _quiet_until_in_minute(whole // 60, tz, start, end)  # ints: cheap to hash
            if cached is not _NOT_ONE_MINUTE:
                return cached  # type: ignore[return-value]
    return _quiet_until(at, tz, start, end)


_LAST_SAFE_FRACTION = 0.999999
_NOT_ONE_MINUTE = object()


@lru_cache(maxsize=8192)
def _quiet_until_in_minute(utc_minute: int, tz: ZoneInfo, start: int, end: int) -> float | object | None:
    """`quiet_until` for any instant of the UTC minute, or `_NOT_ONE_MINUTE` if that is not one answer."""
    moment = utc_minute * 60
    offset = datetime.fromtimestamp(moment, tz).utcoffset()
    if (
        offset is None
        or offset.total_seconds() % 60
        or datetime.fromtimestamp(moment + 59, tz).utcoffset() != offset
    ):
        return _NOT_ONE_MINUTE
    return _quiet_until(moment, tz, start, end)


def _quiet_until(at: float, tz: ZoneInfo, start: int, end: int) -> float | None:
    local = datetime.fromtimestamp(at, tz)
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    end_day = local.date() if minute < end else local.date() + timedelta(days=1)
    naive_end = datetime(end_day.year, end_day.month, end_day.day, end // 60, end % 60)
    return naive_end.replace(tzinfo=tz).timestamp()


def cap_reached(state: CustomerState, policy: ContactPolicy, channel: str, at: float) -> bool:
    """True when one more marketing action on `channel` would exceed a rolling-24 h cap."""
    window_start = at - DAY_S
    total = on_channel = 0
    for emission in state.emissions:
        if window_start < emission.at <= at:
            total += 1
            if emission.channel == channel:
                on_channel += 1
    if policy.max_per_day is not None and total >= policy.max_per_day:
        return True
    channel_cap = policy.channel_max_per_day.get(channel)
    return channel_cap is not None and on_channel >= channel_cap


def prune_emissions(state: CustomerState, now: float) -> None:
    """Emissions older than a day can never count against a cap again."""
    if state.emissions and state.emissions[0].at <= now - DAY_S:
        state.emissions = [e for e in state.emissions if e.at > now - DAY_S]


def consent_refused(state: CustomerState, channel: str) -> bool:
    """Only an explicit opt-out refuses; unknown consent allows (SPEC §3)."""
    return state.consent.get(channel) is False
