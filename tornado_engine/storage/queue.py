"""The durable order queue: a Redis stream read by a consumer group.

The blocking read runs on its own connection so it never holds up the
producer's commands. An entry is acknowledged (and deleted) only when its
order reached a terminal status; an entry left pending by a worker that died
is claimed by another after the visibility timeout. Consumers that left (a
stopped worker, or a dead one whose entries were taken over) are removed from
the group once they hold nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from tornado_engine.storage.batching import CommandBatcher
from tornado_engine.storage.keys import Keys
from tornado_engine.storage.replies import Fields, read_entries, stream_entries, text

# Remove a consumer from the group only while it holds nothing: DELCONSUMER drops
# the consumer's pending entries, which would then never be taken over.
# KEYS: queue. ARGV: group, consumer. Returns 1 when removed.
_LEAVE = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class QueueEntry:
    """``order`` is the order as submitted; ``fresh`` entries are delivered for the
    first time, so the order is known to be at seq 1, ``pending``."""

    entry_id: str
    order_id: str
    order: str | None = field(default=None, compare=False)
    fresh: bool = field(default=False, compare=False)


def _entries(entries: list[tuple[str, Fields]], fresh: bool = False) -> list[QueueEntry]:
    return [
        QueueEntry(entry_id, fields.get("orderId", ""), fields.get("order"), fresh)
        for entry_id, fields in entries
    ]


class OrderQueue:
    def __init__(
        self,
        redis: aioredis.Redis,
        blocking_redis: aioredis.Redis,
        keys: Keys,
        batcher: CommandBatcher | None = None,
    ) -> None:
        self.redis = redis
        self.blocking_redis = blocking_redis
        self.keys = keys
        self.batcher = batcher
        self._leave = redis.register_script(_LEAVE)

    @property
    def name(self) -> str:
        return self.keys.queue

    async def ensure_group(self) -> None:
        try:
            # From id 0: orders enqueued before any worker ever started are not lost.
            await self.redis.xgroup_create(self.name, self.keys.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(self, order_id: str) -> str:
        return text(await self.redis.xadd(self.name, {"orderId": order_id}))

    async def read(self, consumer: str, count: int, block_ms: int) -> list[QueueEntry]:
        reply = await self.blocking_redis.xreadgroup(
            self.keys.group, consumer, {self.name: ">"}, count=count, block=block_ms
        )
        return _entries(read_entries(reply), fresh=True)

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int) -> list[QueueEntry]:
        """Take over up to ``count`` entries another consumer has held longer than ``min_idle_ms``.

        XAUTOCLAIM looks at only about ``count`` pending entries per call, so one
        call would miss a dead worker's entry behind entries live workers hold:
        follow the cursor through the whole pending list.
        """
        claimed: list[QueueEntry] = []
        cursor = "0-0"
        while len(claimed) < count:
            reply = await self.redis.xautoclaim(
                self.name,
                self.keys.group,
                consumer,
                min_idle_time=min_idle_ms,
                start_id=cursor,
                count=count - len(claimed),
            )
            # Redis 6.2 replies [cursor, entries]; 7.x adds a list of deleted ids.
            claimed += _entries(stream_entries(reply[1]))
            cursor = text(reply[0])
            if cursor == "0-0":
                break
        return claimed

    async def touch(self, consumer: str, entry_ids: list[str]) -> None:
        """Reset the idle time of entries still being worked on (a heartbeat)."""
        if entry_ids:
            await self.redis.xclaim(
                self.name, self.keys.group, consumer, min_idle_time=0, message_ids=[*entry_ids], justid=True
            )

    async def hand_back(self, consumer: str, entry_ids: list[str], visibility_timeout_s: float) -> None:
        """Mark entries idle for a whole visibility timeout, so any worker claims them now."""
        await self.redis.xclaim(
            self.name,
            self.keys.group,
            consumer,
            min_idle_time=0,
            message_ids=[*entry_ids],
            idle=int(visibility_timeout_s * 1000) + 1,
            justid=True,
        )

    async def ack(self, entry_id: str) -> None:
        """Done with an entry: acknowledge and delete it (batched with other orders' acks)."""
        if self.batcher is None:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xack(self.name, self.keys.group, entry_id)
                pipe.xdel(self.name, entry_id)
                await pipe.execute()
            return
        acked = self.batcher.call("XACK", self.name, self.keys.group, entry_id)
        deleted = self.batcher.call("XDEL", self.name, entry_id)
        await asyncio.gather(acked, deleted)

    async def leave(self, consumer: str) -> bool:
        """Remove ``consumer`` from the group if it holds no entry; True when removed."""
        return bool(await self._leave(keys=[self.name], args=[self.keys.group, consumer]))

    async def remove_departed(self, min_idle_ms: int, keep: str) -> list[str]:
        """Remove consumers idle over ``min_idle_ms`` that hold nothing (workers that died
        and whose entries were taken over); ``keep`` is the caller. Returns their names.

        A live worker removed by mistake loses nothing: it holds nothing, and its next
        read adds it back.
        """
        removed = []
        for consumer in await self.redis.xinfo_consumers(self.name, self.keys.group):
            name = text(consumer["name"])
            if name == keep or consumer["pending"] or consumer["idle"] < min_idle_ms:
                continue
            if await self.leave(name):
                removed.append(name)
        return removed

    async def depth(self) -> int:
        return await self.redis.xlen(self.name)
