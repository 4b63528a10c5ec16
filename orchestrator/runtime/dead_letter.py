"""The dead-letter record (SPEC §1): enough to find, understand and re-publish a bad message."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import orjson

# The validator's messages that quote the offending value (`'…' is not an IANA timezone`), and dict
# keys that pydantic puts in the field path (`identifiers.<key>.[key]`): both come from the sender
# and may be personal data, so a dead-letter reason names the field and describes the problem only.
_QUOTED_VALUE = re.compile(
    r"""(?P<q>['"])(?:\\.|(?!(?P=q)).)*(?P=q) is not """
    r"(?=an RFC 3339|a valid date and time|an IANA timezone)",
    re.DOTALL,
)
_KEY_IN_PATH = re.compile(r"`(?P<field>[a-z_]+)\..*?\.\[key\]`", re.DOTALL)


def redact_reason(reason: str) -> str:
    """`reason` without the input values it quotes, e.g. "`occurred_at`: the value is not an RFC 3339 …"."""
    reason = _QUOTED_VALUE.sub("the value is not ", reason)
    return _KEY_IN_PATH.sub(r"`\g<field>.[key]`", reason)


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
