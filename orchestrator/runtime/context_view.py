"""Writes the per-customer context view to Redis without ever holding decisions up.

The customers agent only records "profile X now looks like this" (latest wins); a background
task flushes them in a few requests (a script call per chunk of views, one DEL). When Redis is
unreachable the records stay queued and are retried (bounded: the oldest are dropped past
`max_pending`, and those profiles catch up on their next change), and the outage is logged once
rather than per write.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orchestrator.logging import get_logger

log = get_logger(__name__)

KEY_PREFIX = "journey:context:"
# Views are written by one script call per chunk instead of one SET per profile: redis-py's cost per
# command (packing, a reply parsed under its own timeout) was ~6 % of the worker's CPU
# (benchmarks/RESULTS.md). KEYS are the views' keys, ARGV[1] the TTL, ARGV[i + 1] the i-th view.
# A chunk is small enough that one script never holds Redis up for long.
SET_VIEWS = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1])
end
return #KEYS
"""
VIEWS_PER_CALL = 500


def context_key(profile: str) -> str:
    return f"{KEY_PREFIX}{profile}"


class ContextViewWriter:
    def __init__(self, redis_url: str, ttl_s: int, max_pending: int = 100_000) -> None:
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._ttl_s = ttl_s
        self._max_pending = max_pending
        self._pending: OrderedDict[str, bytes | None] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._down = False
        self._set_views = self._redis.register_script(SET_VIEWS)

    def put(self, profile: str, view: dict[str, Any]) -> None:
        self._record(profile, orjson.dumps(view))

    def delete(self, profile: str) -> None:
        self._record(profile, None)

    def _record(self, profile: str, value: bytes | None) -> None:
        self._pending.pop(profile, None)
        self._pending[profile] = value
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)
        self._wakeup.set()

    async def run(self, interval_s: float = 0.05, retry_s: float = 1.0) -> None:
        """Flush forever; meant to be a background task of the app."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not await self.flush():
                await asyncio.sleep(retry_s)
                self._wakeup.set()
            else:
                await asyncio.sleep(interval_s)

    async def flush(self) -> bool:
        """Write everything pending; False (and keep it) when Redis is unreachable."""
        if not self._pending:
            return True
        batch = list(self._pending.items())
        views = [(context_key(profile), value) for profile, value in batch if value is not None]
        gone = [context_key(profile) for profile, value in batch if value is None]
        try:
            for start in range(0, len(views), VIEWS_PER_CALL):
                chunk = views[start : start + VIEWS_PER_CALL]
                keys = [key for key, _ in chunk]
                args = [self._ttl_s, *(value for _, value in chunk)]
                await self._set_views(keys=keys, args=args, client=self._redis)
            if gone:
                await self._redis.delete(*gone)
        except (RedisError, OSError) as exc:
            if not self._down:
                log.warning("context_view_redis_down", error=str(exc), pending=len(self._pending))
                self._down = True
            return False
        if self._down:
            log.info("context_view_redis_back", pending=len(self._pending))
            self._down = False
        for profile, value in batch:
            if self._pending.get(profile, b"") is value:
                del self._pending[profile]
        return True

    async def read(self, profile: str) -> dict[str, Any] | None:
        """The view as Redis holds it now (pending writes not included), for data-access requests."""
        raw = await self._redis.get(context_key(profile))
        return orjson.loads(raw) if raw is not None else None

    async def close(self) -> None:
        await self._redis.aclose()
