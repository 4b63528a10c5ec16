"""The decided action (SPEC §2): what senders consume from `actions.<channel>`.

A msgspec Struct rather than a pydantic model: the engine builds one per decision on the hot
path, and nothing here needs validating — the engine is its only author. JSON Schema for
senders comes from `msgspec.json.schema` (see `schemas.export`).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

ActionStatus = Literal["emitted", "held_out"]

_ENCODER = msgspec.json.Encoder()


class Action(msgspec.Struct, frozen=True, kw_only=True):
    """One next-best action; `action_id` is the senders' idempotency key."""

    action_id: str
    rule_id: str
    rule_version: str
    customer_id: str
    type: str
    channel: str
    category: Literal["marketing", "service"]
    params: dict[str, Any]
    context: dict[str, Any] | None = None
    trigger_event_id: str
    decided_at: str
    status: ActionStatus
    variant: str | None = None

    @property
    def topic_suffix(self) -> str:
        """Held-out actions are recorded on `actions.holdout`, never sent."""
        return "holdout" if self.status == "held_out" else self.channel

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)

    def to_json(self) -> bytes:
        return _ENCODER.encode(self)
