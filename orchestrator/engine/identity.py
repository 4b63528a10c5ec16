"""Who an event belongs to: alias keys, resolution through the alias map, and merges (SPEC §1, §3).

An alias key is the id an anonymous profile would have (`anon:<anonymous_id>`,
`anon:<name>:<value>`), so an alias that nobody claimed yet is its own profile, and linking
it to a customer is one map entry. The map itself lives with the caller (a dict in replay, a
changelogged table in the worker); this module only decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from schemas import Touchpoint

IDENTIFY = "identify"


@dataclass(frozen=True, slots=True)
class Resolution:
    profile_id: str
    links: list[str] = field(default_factory=list)
    merge_from: list[str] = field(default_factory=list)


def anonymous_profile_id(anonymous_id: str) -> str:
    return f"anon:{anonymous_id}"


def alias_keys(event: Touchpoint) -> list[str]:
    """The aliases an event carries: its anonymous id first, then identifiers in name order."""
    keys: list[str] = []
    if event.anonymous_id:
        keys.append(anonymous_profile_id(event.anonymous_id))
    if event.identifiers:
        keys.extend(f"anon:{name}:{event.identifiers[name]}" for name in sorted(event.identifiers))
    return keys


def direct_profile(event: Touchpoint) -> str | None:
    """The customer id of an event that needs no alias lookup, link or merge; else None.

    Only `identify` links aliases: other events that carry a customer id belong to it without
    claiming their anonymous ids, as SPEC §1 says. Most events are such, so callers try this
    before `resolve_identity` and its alias keys.
    """
    customer = event.customer_id
    return customer if customer and event.type != IDENTIFY else None


def resolve_identity(event: Touchpoint, lookup: Callable[[str], str | None]) -> Resolution:
    """Decide the profile of `event`; an `identify` with a customer id also links and merges."""
    customer = direct_profile(event)
    if customer is not None:
        return Resolution(customer)
    keys = alias_keys(event)
    if event.customer_id:
        customer = event.customer_id
        if not keys:
            return Resolution(customer)
        links = [key for key in keys if lookup(key) != customer]
        merge_from = [key for key in keys if lookup(key) is None]
        return Resolution(customer, links=links, merge_from=merge_from)
    for key in keys:
        known = lookup(key)
        if known is not None:
            return Resolution(known)
    return Resolution(keys[0])
