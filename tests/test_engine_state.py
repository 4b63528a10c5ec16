"""The customer state's encoding: lossless round-trip for any state, and small for a typical customer."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import at, ev, load
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.engine import CustomerState, Engine, decode_state, encode_state
from orchestrator.engine.state import (
    CartItem,
    Deferred,
    Emission,
    LastAction,
    PendingWait,
    TriggerRef,
)

TYPICAL_MAX_BYTES = 1024

text = st.text(max_size=12)
names = st.from_regex(r"[a-z][a-z0-9_.-]{0,15}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
moments = st.floats(min_value=0, max_value=4e9, allow_nan=False)
json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | text
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
trigger = st.builds(TriggerRef, names, names, names, moments, st.dictionaries(text, json_value, max_size=3))

states = st.builds(
    CustomerState,
    traits=st.dictionaries(text, json_value, max_size=4),
    consent=st.dictionaries(names, st.booleans(), max_size=3),
    cart=st.lists(st.builds(CartItem, names, finite, finite), max_size=4),
    orders_count=st.integers(0, 10**6),
    orders_total=finite,
    orders_last_at=st.none() | moments,
    viewed=st.lists(names, max_size=20),
    recent_kinds=st.lists(names, max_size=5, unique=True),
    recent=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4 * 10**9)), max_size=50),
    last_seen=st.dictionaries(names, moments, max_size=4),
    channels=st.lists(names, max_size=4, unique=True),
    location=st.none() | st.tuples(st.floats(-90, 90), st.floats(-180, 180)),
    context_timezone=st.none() | st.sampled_from(["Europe/Paris", "UTC", "Asia/Tokyo"]),
    counters=st.dictionaries(names, st.integers(0, 10**6), max_size=3),
    waits=st.lists(st.builds(PendingWait, names, moments, trigger), max_size=3),
    deferred=st.lists(
        st.builds(Deferred, names, moments, st.dictionaries(text, json_value, max_size=4)), max_size=2
    ),
    emissions=st.lists(st.builds(Emission, moments, names), max_size=5),
    rule_last_at=st.dictionaries(names, moments, max_size=3),
    last_actions=st.dictionaries(
        names, st.builds(LastAction, text, moments, names, st.booleans()), max_size=3
    ),
    seen=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=128),
    aliases=st.lists(text, max_size=3),
    newest_at=st.none() | moments,
    clock=st.none() | moments,
)


@settings(max_examples=150, deadline=None)
@given(states)
def test_encoding_round_trips(state: CustomerState) -> None:
    raw = encode_state(state)
    assert decode_state(raw) == state
    assert encode_state(decode_state(raw)) == raw


def test_unknown_format_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown customer state format"):
        decode_state(b"\x09" + encode_state(CustomerState())[1:])
    with pytest.raises(ValueError):
        decode_state(b"")


def typical_state(tmp_path: Path) -> CustomerState:
    """Built by the engine itself: traits, consent, 3 cart items, 20 recent events, 1 pending wait."""
    rules = load(
        tmp_path,
        """
        - id: cart
          trigger: {event: cart.item_added}
          wait: {for: 30m}
          action: {type: email.send, params: {}}
        """,
    )
    events = [
        ev(
            "identify",
            0,
            cid="cust-000123",
            anon="anon-8f2c1d",
            traits={"tier": "gold", "timezone": "Europe/Paris"},
        ),
        ev("consent.updated", 10, cid="cust-000123", properties={"channel": "email", "granted": True}),
    ]
    events += [
        ev("product.viewed", 20 + i, cid="cust-000123", channel=("web", "mobile")[i % 2], sku=f"SKU-{i:05d}")
        for i in range(15)
    ]
    events += [
        ev("cart.item_added", 60 + i, cid="cust-000123", sku=f"SKU-{i:05d}", qty=1, price=19.99 + i)
        for i in range(3)
    ]
    step = Engine(rules).apply("cust-000123", None, events, at(100))
    assert step.state is not None
    return step.state


def test_typical_customer_fits_in_a_kilobyte(tmp_path: Path) -> None:
    state = typical_state(tmp_path)
    assert (len(state.cart), len(state.recent), len(state.waits)) == (3, 20, 1)
    size = len(encode_state(state))
    print(f"typical customer state: {size} bytes")
    assert size <= TYPICAL_MAX_BYTES
