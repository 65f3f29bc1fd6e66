"""How many orders a client has in flight, or waiting for their socket, counted from the orders.

A quota is a sorted set per client of order ids, scored by when an entry
stops counting whatever happens (a safety bound). A counter would leak: an
order that ends without its API process hearing of it (a crash, Redis losing
its data, an expiry swept by another process) would hold its slot forever.
Here a full set is checked against the truth instead: members whose order is
no longer in the state the quota counts are removed, then the reservation is
tried again. The common case (not full) is one script call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from tornado_engine.storage.replies import text

# KEYS[1]: the client's set. ARGV: order id, limit, lifetime (ms). 1 reserved, 0 full.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

StillCounts = Callable[[str], Awaitable[bool]]


class Quota:
    """Orders of one kind per client, at most ``limit`` at a time."""

    def __init__(self, redis: aioredis.Redis, still_counts: StillCounts, lifetime_seconds: float) -> None:
        self.redis = redis
        self.still_counts = still_counts
        self.lifetime_ms = int(lifetime_seconds * 1000)
        self._reserve = redis.register_script(_RESERVE)

    async def reserve(self, key: str, order_id: str, limit: int) -> bool:
        """Whether ``order_id`` took a place (False: the client is at ``limit``)."""
        if await self._try(key, order_id, limit):
            return True
        members: list[str] = [text(member) for member in await self.redis.zrange(key, 0, -1)]  # type: ignore[arg-type]
        stale = [member for member in members if not await self.still_counts(member)]
        if not stale:
            return False
        await self.redis.zrem(key, *stale)
        return await self._try(key, order_id, limit)

    async def release(self, key: str, order_id: str) -> None:
        """Give a place back at once (an order that was not admitted after all)."""
        await self.redis.zrem(key, order_id)

    async def _try(self, key: str, order_id: str, limit: int) -> bool:
        return bool(int(await self._reserve(keys=[key], args=[order_id, limit, self.lifetime_ms])))
