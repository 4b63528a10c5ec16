"""The decided action (SPEC §2): what senders consume from `actions.<channel>`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

ActionStatus = Literal["emitted", "held_out"]


class Action(BaseModel):
    """One next-best action; `action_id` is the senders' idempotency key."""

    model_config = ConfigDict(frozen=True, title="Action")

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
