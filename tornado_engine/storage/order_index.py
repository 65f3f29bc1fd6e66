"""The list of orders, newest first, for ``GET /api/orders``: a sorted set by admission time.

One index for all orders and one per API key (so a key's list never scans
other keys' orders), scored by when the order was admitted (milliseconds).
Entries older than the orders' retention are trimmed as new ones arrive; an
entry whose order is gone is skipped when listed. A cursor is the last
entry a page showed (its score and id), so pages stay stable while new
orders arrive at the head.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from tornado_engine.storage.keys import Keys
from tornado_engine.storage.replies import text

CURSOR = re.compile(r"(?P<score>[0-9]{1,16})-(?P<order_id>[A-Za-z0-9_-]{1,128})")


class BadCursor(ValueError):
    """A cursor this index never gave out."""


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last entry it showed."""

    score: int
    order_id: str

    def cursor(self) -> str:
        return f"{self.score}-{self.order_id}"

    @classmethod
    def parse(cls, cursor: str) -> Position:
        match = CURSOR.fullmatch(cursor)
        if match is None:
            raise BadCursor("cursor is not one this server gave out (use nextCursor as it was returned)")
        return cls(int(match["score"]), match["order_id"])


class OrderIndex:
    def __init__(self, redis: aioredis.Redis, keys: Keys, retention_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        self.retention_ms = retention_seconds * 1000

    async def add(self, order_id: str, owner: str | None) -> None:
        """Index a newly admitted order (and trim what is past the retention)."""
        now = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self._keys(owner):
                pipe.zadd(key, {order_id: now})
                pipe.zremrangebyscore(key, "-inf", now - self.retention_ms)
                pipe.pexpire(key, self.retention_ms)
            await pipe.execute()

    async def page(self, owner: str | None, after: Position | None, count: int) -> list[Position]:
        """Up to ``count`` entries, newest first, after ``after`` (None: from the newest)."""
        key = self.keys.order_index(owner)
        top: str = "+inf" if after is None else str(after.score)
        found: list[Position] = []
        offset = 0
        while len(found) < count:
            batch = await self.redis.zrevrangebyscore(
                key, top, "-inf", start=offset, num=count + 1, withscores=True
            )
            if not batch:
                break
            offset += len(batch)
            pairs: list[tuple[bytes | str, float]] = batch  # type: ignore[assignment]  # withscores
            for member, score in pairs:
                position = Position(int(score), text(member))
                # Same score as the cursor: entries at or before it (in reverse order) were shown.
                if (
                    after is not None
                    and position.score == after.score
                    and position.order_id >= after.order_id
                ):
                    continue
                found.append(position)
        return found[:count]

    def _keys(self, owner: str | None) -> list[str]:
        return [self.keys.order_index(None)] + ([self.keys.order_index(owner)] if owner else [])
