"""Compact msgpack codec of the internal batch messages (`journey.identity`, `journey.customers`).

One Kafka message carries many events so that Faust's per-message cost is paid once per batch.
Events travel as their original JSON bytes (already validated at ingest) with the metadata the
later hops need; commands are a tagged union so one batch can mix them in order.
"""

from __future__ import annotations

import msgspec


class Item(msgspec.Struct, array_like=True, frozen=True):
    """One validated touchpoint as it travels between hops."""

    raw: bytes
    channel: str
    published: float  # timestamp of the source message, seconds (decision latency)


class Route(msgspec.Struct, tag="route", array_like=True):
    """An event on its way through the identity partitions of its alias keys.

    `keys` are the event's alias keys in lookup order; `known` holds what the partitions visited
    so far answered for theirs ("" = unknown alias), so the event never asks twice. `profile` is set
    by ingest when the event needs no lookup, link or merge at all (`direct_profile`: most events of
    known customers): identity then forwards it without parsing it again.
    """

    item: Item
    keys: list[str]
    known: dict[str, str] = {}
    profile: str = ""


class Link(msgspec.Struct, tag="link", array_like=True):
    """Point `alias` at `profile` in the identity partition that owns the alias."""

    alias: str
    profile: str


class Forget(msgspec.Struct, tag="forget", array_like=True):
    """Delete `alias` from the alias map (erasure) if it still points at the erased `profile`.

    An alias re-linked to another customer since belongs to that customer now: erasing the first
    must not cut the second's link.
    """

    alias: str
    profile: str


IdentityCommand = Route | Link | Forget


class Deliver(msgspec.Struct, tag="deliver", array_like=True):
    """Apply `item` to `profile`; `expect` lists anonymous profiles to merge in first."""

    profile: str
    item: Item
    expect: list[str] = []


class Handoff(msgspec.Struct, tag="handoff", array_like=True):
    """Ask the owner of anonymous profile `anon` to send its state to `into` and delete it."""

    anon: str
    into: str


class MergeIn(msgspec.Struct, tag="merge_in", array_like=True):
    """The state of anonymous profile `source`, handed over to `into` (None: it had none)."""

    source: str
    into: str
    state: bytes | None


class Tick(msgspec.Struct, tag="tick", array_like=True):
    """Fire the due waits of the receiving partition (sent by the timer with an explicit partition)."""


CustomerCommand = Deliver | Handoff | MergeIn | Tick


class IdentityBatch(msgspec.Struct, array_like=True):
    commands: list[IdentityCommand]


class CustomerBatch(msgspec.Struct, array_like=True):
    commands: list[CustomerCommand]


class PendingMerge(msgspec.Struct, array_like=True):
    """A profile waiting for merge_in answers; events received meanwhile are buffered in order.

    `arrived` records answers that overtook the event announcing them (they travel on different
    partitions), so the announcement does not wait for them forever.
    """

    expected: list[str] = []
    arrived: list[str] = []
    buffered: list[Item] = []


_encoder = msgspec.msgpack.Encoder()
_identity_decoder = msgspec.msgpack.Decoder(IdentityBatch)
_customer_decoder = msgspec.msgpack.Decoder(CustomerBatch)
_pending_decoder = msgspec.msgpack.Decoder(PendingMerge)


def encode(batch: IdentityBatch | CustomerBatch | PendingMerge) -> bytes:
    return _encoder.encode(batch)


def decode_identity(raw: bytes) -> IdentityBatch:
    return _identity_decoder.decode(raw)


def decode_customers(raw: bytes) -> CustomerBatch:
    return _customer_decoder.decode(raw)


def decode_pending(raw: bytes) -> PendingMerge:
    return _pending_decoder.decode(raw)
