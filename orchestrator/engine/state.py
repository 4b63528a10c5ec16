"""Per-customer state and its compact, versioned encoding.

The state lives in a Kafka-changelogged table, so every byte counts: structs are encoded as
MessagePack arrays (no field names on the wire) behind a one-byte format version. A new field
goes at the end of its struct with a default, so older records still decode.
"""

from __future__ import annotations

from typing import Any

import msgspec

FORMAT_VERSION = 1
_PREFIX = bytes([FORMAT_VERSION])

MAX_RECENT_EVENTS = 50
MAX_RECENT_VIEWED = 20
MAX_SEEN_EVENT_IDS = 64


class CartItem(msgspec.Struct, array_like=True):
    sku: str
    qty: float
    price: float


class TriggerRef(msgspec.Struct, array_like=True):
    """What a pending wait remembers of the event that started it: enough for `event.*` in params."""

    event_id: str
    type: str
    channel: str
    at: float
    properties: dict[str, Any] = {}


class PendingWait(msgspec.Struct, array_like=True):
    rule_id: str
    due: float
    trigger: TriggerRef


class Deferred(msgspec.Struct, array_like=True):
    """A marketing action held by quiet hours; emitted (after consent and caps) at `due`."""

    rule_id: str
    due: float
    action: dict[str, Any]


class Emission(msgspec.Struct, array_like=True):
    """An emitted marketing action, kept 24 h for the contact-policy caps."""

    at: float
    channel: str


class LastAction(msgspec.Struct, array_like=True):
    """The most recent action of a rule for this customer: what a goal event can convert."""

    action_id: str
    at: float
    group: str
    converted: bool = False


class CustomerState(msgspec.Struct, omit_defaults=True):
    """Everything the engine knows about one profile; the shell treats it as opaque.

    `recent` is the last events as (index into `recent_kinds`, whole-second time): a kind is
    "type channel", stored once however often it recurs — the biggest saving in the encoding.
    `seen` holds 32-bit fingerprints of the latest event ids, for deduplication.
    """

    traits: dict[str, Any] = {}
    consent: dict[str, bool] = {}
    cart: list[CartItem] = []
    orders_count: int = 0
    orders_total: float = 0.0
    orders_last_at: float | None = None
    viewed: list[str] = []
    recent_kinds: list[str] = []
    recent: list[tuple[int, int]] = []
    last_seen: dict[str, float] = {}
    channels: list[str] = []
    location: tuple[float, float] | None = None
    context_timezone: str | None = None
    counters: dict[str, int] = {}
    waits: list[PendingWait] = []
    deferred: list[Deferred] = []
    emissions: list[Emission] = []
    rule_last_at: dict[str, float] = {}
    last_actions: dict[str, LastAction] = {}
    seen: list[int] = []
    aliases: list[str] = []
    newest_at: float | None = None
    clock: float | None = None


def recent_events(state: CustomerState) -> list[tuple[str, str, int]]:
    """The recent events as (type, channel, Unix seconds), oldest first."""
    kinds = [kind.split(" ", 1) for kind in state.recent_kinds]
    return [(kinds[k][0], kinds[k][1], at) for k, at in state.recent]


def push_recent(state: CustomerState, type_: str, channel: str, at: float) -> None:
    kind = f"{type_} {channel}"
    kinds = state.recent_kinds
    if kind in kinds:  # tested first: a miss through `index` raises, and that costs 20 times more
        index = kinds.index(kind)
    else:
        index = len(kinds)
        kinds.append(kind)
    recent = state.recent
    recent.append((index, int(at)))
    if len(recent) > MAX_RECENT_EVENTS:
        del recent[: len(recent) - MAX_RECENT_EVENTS]
        if len(kinds) > MAX_RECENT_EVENTS:
            set_recent(state, recent_events(state))


def set_recent(state: CustomerState, events: list[tuple[str, str, int]]) -> None:
    """Replace the recent events, keeping only the kinds they use."""
    kinds: dict[str, int] = {}
    state.recent = [
        (kinds.setdefault(f"{t} {c}", len(kinds)), at) for t, c, at in events[-MAX_RECENT_EVENTS:]
    ]
    state.recent_kinds = list(kinds)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(CustomerState)


def encode_state(state: CustomerState) -> bytes:
    return _PREFIX + _ENCODER.encode(state)


def decode_state(raw: bytes) -> CustomerState:
    if not raw or raw[0] != FORMAT_VERSION:
        raise ValueError(f"unknown customer state format {raw[:1]!r}")
    return _DECODER.decode(memoryview(raw)[1:])


def copy_state(state: CustomerState) -> CustomerState:
    """A deep copy, for callers that keep the state they hand to the engine."""
    return decode_state(encode_state(state))
