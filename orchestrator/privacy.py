"""Data-subject requests (SPEC §7): ask for an erasure, and gather what the system holds on a profile.

An erasure is an ordinary touchpoint (`privacy.erasure_requested`) so it is ordered with the
customer's other events and erases whatever the profile holds when it is applied, on every worker
and after every restart, with no side channel to keep consistent. A data-access answer asks every
worker: only the one owning the profile's partition of `journey.customers` can read its state,
while every worker can read the Redis context view.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from orchestrator.config import Settings
from orchestrator.engine.identity import anonymous_profile_id
from orchestrator.publish import Publisher

ERASURE_TYPE = "privacy.erasure_requested"
DEFAULT_CHANNEL = "call_center"
WORKER_TIMEOUT_S = 10.0


def profile_id(ident: str, *, anonymous: bool) -> str:
    """The profile an id names: a customer id as is, an anonymous id as `anon:<id>`."""
    return anonymous_profile_id(ident) if anonymous else ident


def erasure_event(ident: str, *, anonymous: bool, channel: str = DEFAULT_CHANNEL) -> dict[str, Any]:
    """A fresh erasure request: a unique event id (never deduplicated away) and the wall clock."""
    occurred_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event: dict[str, Any] = {
        "event_id": f"erasure-{uuid.uuid4()}",
        "type": ERASURE_TYPE,
        "channel": channel,
        "occurred_at": occurred_at,
    }
    event["anonymous_id" if anonymous else "customer_id"] = ident
    return event


async def request_erasure(
    ident: str,
    *,
    anonymous: bool,
    channel: str = DEFAULT_CHANNEL,
    settings: Settings | None = None,
    bootstrap: str | None = None,
) -> dict[str, Any]:
    """Publish the erasure request (acks=all) and return the event that was sent."""
    event = erasure_event(ident, anonymous=anonymous, channel=channel)
    async with Publisher(bootstrap, settings=settings, client_id="journey-customers") as publisher:
        await publisher.send(event)
    return event


@dataclass(frozen=True, slots=True)
class WorkerAnswer:
    """One worker's `/api/customers/{profile}` answer, or why there is none."""

    url: str
    record: dict[str, Any] | None = None
    error: str | None = None


async def _ask(session: aiohttp.ClientSession, url: str, profile: str) -> WorkerAnswer:
    endpoint = f"{url.rstrip('/')}/api/customers/{quote(profile, safe='')}"
    try:
        async with session.get(endpoint) as response:
            if response.status != 200:
                return WorkerAnswer(url, error=f"HTTP {response.status}")
            return WorkerAnswer(url, record=await response.json())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return WorkerAnswer(url, error=f"{type(exc).__name__}: {exc}".rstrip(": "))


async def ask_workers(urls: list[str], profile: str, token: str | None = None) -> list[WorkerAnswer]:
    """Every worker's answer, concurrently; the bearer token is sent when the web port requires one."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=WORKER_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        return list(await asyncio.gather(*(_ask(session, url, profile) for url in urls)))


def holdings(profile: str, answers: list[WorkerAnswer]) -> dict[str, Any]:
    """What the system holds on `profile`: the owner's state and the context view, with provenance.

    `state_known` is false when no worker that answered owns the profile's partition: then `state`
    is null because nobody could read it, not because there is none.
    """
    owner = next((a for a in answers if a.record and a.record.get("owned_here")), None)
    view = next(
        (a.record["context_view"] for a in answers if a.record and a.record.get("context_view")), None
    )
    partition = next((a.record.get("partition") for a in answers if a.record), None)
    return {
        "profile": profile,
        "partition": partition,
        "state_known": owner is not None,
        "state": owner.record.get("state") if owner and owner.record else None,
        "state_from": owner.url if owner else None,
        "context_view": view,
        "workers": [
            {"url": a.url, "owned_here": bool(a.record.get("owned_here"))}
            if a.record
            else {"url": a.url, "error": a.error}
            for a in answers
        ],
    }
