"""Stable hashes: action ids, holdout membership, variant choice, event-id fingerprints.

All of them must give the same answer on every machine, process and Python version (so no
`hash()`), and the holdout and variant draws must be independent of each other: each hashes
its own salt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

_TWO_64 = float(2**64)


@lru_cache(maxsize=4096)
def _salted(salt: str, rule_id: str) -> Any:
    """The hash state after the salt and the rule id: each draw copies it and adds the customer id."""
    return hashlib.blake2b(f"{salt}\x1f{rule_id}\x1f".encode(), digest_size=8)


def unit_draw(salt: str, rule_id: str, customer_id: str) -> float:
    """A uniform number in [0, 1) fixed for (salt, rule, customer): their blake2b, joined by U+001F."""
    draw = _salted(salt, rule_id).copy()
    draw.update(customer_id.encode())
    return int.from_bytes(draw.digest(), "big") / _TWO_64


def action_id(rule_id: str, customer_id: str, trigger_event_id: str) -> str:
    """The senders' idempotency key: the same rule, customer and trigger always give the same id."""
    digest = hashlib.sha256(f"{rule_id}\x1f{customer_id}\x1f{trigger_event_id}".encode()).hexdigest()
    return digest[:32]


def in_holdout(rule_id: str, customer_id: str, fraction: float) -> bool:
    return fraction > 0 and unit_draw("holdout", rule_id, customer_id) < fraction


def choose_variant(rule_id: str, customer_id: str, weights: Sequence[float]) -> int:
    """Index of the customer's variant, drawn in proportion to `weights`."""
    point = unit_draw("variant", rule_id, customer_id) * sum(weights)
    for index, weight in enumerate(weights):
        point -= weight
        if point < 0:
            return index
    return len(weights) - 1


def event_fingerprint(event_id: str) -> int:
    """A 32-bit fingerprint of an event id: 5 bytes in the state instead of the whole id.

    With 64 remembered per customer, a new event is mistaken for a re-sent one with odds of
    about 1 in 67 million: the price of a state that fits in a kilobyte.
    """
    fingerprint = _FINGERPRINT.copy()
    fingerprint.update(event_id.encode())
    return int.from_bytes(fingerprint.digest(), "big")


# An empty 4-byte blake2b to copy: a third cheaper than building one (keyword parsing, parameter
# block) for every event, with the very same digest.
_FINGERPRINT = hashlib.blake2b(digest_size=4)
