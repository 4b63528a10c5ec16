"""The human notations of rule files for time: durations (`30m`, `1.5h`, `400d`) and clock times (`21:00`).

Kept apart from the YAML walk so the engine, the CLI and tests can parse and print the same
notation without a rule file around it.
"""

from __future__ import annotations

import math
import re

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_DURATION = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*([smhd])$")
_CLOCK = re.compile(r"^(\d{2}):(\d{2})$")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `30m`; raises ValueError with a message fit for the author."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"invalid duration {text!r}: expected a number and a unit s, m, h or d (e.g. 30m)")
    seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than 0")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest notation `parse_duration` reads back to the same value (largest whole unit)."""
    for unit in ("d", "h", "m"):
        size = UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_clock(text: str) -> int:
    """Minutes since midnight of a local time written `HH:MM` (00:00 to 23:59)."""
    match = _CLOCK.match(text.strip())
    if match is None:
        raise ValueError(f"invalid time {text!r}: expected HH:MM, e.g. \"21:00\"")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours > 23 or minutes > 59:
        raise ValueError(f"invalid time {text!r}: hours must be 00-23 and minutes 00-59")
    return hours * 60 + minutes
