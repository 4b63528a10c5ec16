"""The event and action contract shared with channel apps and senders (SPEC §1–2)."""

from schemas.action import Action
from schemas.touchpoint import (
    MAX_EVENT_BYTES,
    InvalidEvent,
    Touchpoint,
    parse_touchpoint,
    parse_validated_touchpoint,
    touchpoint_from_dict,
)

__all__ = [
    "MAX_EVENT_BYTES",
    "Action",
    "InvalidEvent",
    "Touchpoint",
    "parse_touchpoint",
    "parse_validated_touchpoint",
    "touchpoint_from_dict",
]
