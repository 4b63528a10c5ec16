"""Helpers shared by the privacy integration tests: message keys, the Redis view, `/metrics`."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.config import Settings


def key_of(event: dict[str, Any]) -> bytes:
    """The key a channel app uses (SPEC §1), so one customer's events stay in order on one partition."""
    identifiers = event.get("identifiers") or {}
    ident = event.get("customer_id") or event.get("anonymous_id") or next(iter(identifiers.values()), "")
    return str(ident).encode()


async def redis_view(settings: Settings, profile: str) -> dict[str, Any] | None:
    client = aioredis.Redis.from_url(str(settings.redis_url))
    try:
        raw = await client.get(f"journey:context:{profile}")
        return orjson.loads(raw) if raw is not None else None
    finally:
        await client.aclose()


async def metrics_text(settings: Settings) -> str:
    headers = {"Authorization": f"Bearer {settings.web_token}"} if settings.web_token else {}
    url = f"http://127.0.0.1:{settings.web_port}/metrics"
    async with aiohttp.ClientSession(headers=headers) as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()


def metric_samples(text: str) -> list[Any]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]
