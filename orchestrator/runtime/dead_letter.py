"""The dead-letter record (SPEC §1): enough to find, understand and re-publish a bad message."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson


def dead_letter_record(
    original: bytes, topic: str, partition: int, offset: int, reason: str, original_size: int | None = None
) -> bytes:
    """`original_size` is set only when `original` had to be cut (the broker refused the whole record)."""
    record = {
        "original": base64.b64encode(original).decode(),
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "reason": reason,
        "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    if original_size is not None:
        record["original_truncated"] = True
        record["original_size"] = original_size
    return orjson.dumps(record)


def dead_letter_kind(reason: str) -> str:
    """A fixed vocabulary for metric labels: the reason itself is free text."""
    if reason.startswith("processing error"):
        return "processing_error"
    if "-byte (1 MiB) limit" in reason:
        return "too_large"
    if reason.startswith("not valid JSON") or reason.startswith("not a valid event"):
        return "invalid_json"
    return "invalid_event"
