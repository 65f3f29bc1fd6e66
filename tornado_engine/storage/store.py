"""The order store in Redis: each order's state hash and its stream of events.

Every frame an order produces is appended to ``{orderId}:events`` with the
entry id ``0-<seq>`` and published on the updates channel, in one script, so
a late or reconnecting client can be given exactly what it missed. The entry
id doubles as a fence: a second writer that tries to reuse a seq is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from tornado_engine.orders.frames import dumps
from tornado_engine.orders.order import Order
from tornado_engine.orders.statuses import TERMINAL_VALUES
from tornado_engine.storage.batching import CommandBatcher
from tornado_engine.storage.keys import Keys
from tornado_engine.storage.replies import Fields, fields, stream_entries

# KEYS: order hash, events stream. ARGV: seq, status, frame, channel, message,
# retention seconds (0 = keep), updatedAt, then field/value pairs for the hash.
# A new order and its first event (and its queue entry), in one step.
# KEYS: order hash, events stream, queue. ARGV: order JSON, status, frame,
# channel, message, updatedAt, enqueue (1/0), retention seconds (0 = keep), orderId.
# The event goes first: a second create of one order fails before writing anything.
_CREATE = """
redis.call('XADD', KEYS[2], '0-1', 's', ARGV[2], 'f', ARGV[3])
redis.call('HSET', KEYS[1], 'order', ARGV[1], 'status', ARGV[2], 'seq', 1, 'attempt', 0,
           'updatedAt', ARGV[6])
redis.call('PUBLISH', ARGV[4], ARGV[5])
if ARGV[7] == '1' then
  redis.call('XADD', KEYS[3], '*', 'orderId', ARGV[9], 'order', ARGV[1])
end
local retention = tonumber(ARGV[8])
if retention > 0 then
  redis.call('EXPIRE', KEYS[1], retention)
  redis.call('EXPIRE', KEYS[2], retention)
end
return 1
"""

_APPEND = """
local added = redis.pcall('XADD', KEYS[2], '0-' .. ARGV[1], 's', ARGV[2], 'f', ARGV[3])
if type(added) == 'table' and added.err then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'seq', ARGV[1], 'updatedAt', ARGV[7])
for i = 8, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
local retention = tonumber(ARGV[6])
if retention > 0 then
  redis.call('EXPIRE', KEYS[1], retention)
  redis.call('EXPIRE', KEYS[2], retention)
end
return 1
"""


@dataclass(frozen=True)
class StoredEvent:
    """A recorded frame, kept as the JSON text the client receives."""

    seq: int
    status: str
    frame: str


def _event(entry_id: str, values: Fields) -> StoredEvent:
    """An entry of an order's events stream: its id is ``0-<seq>``."""
    return StoredEvent(int(entry_id.split("-", 1)[1]), values["s"], values["f"])


def live_message(order_id: str, seq: int, status: str, frame: str) -> str:
    """What goes on the updates channel: a header so listeners skip others' orders cheaply."""
    return f"{order_id}|{seq}|{status}|{frame}"


def parse_live_message(message: str) -> tuple[str, StoredEvent]:
    order_id, seq, status, frame = message.split("|", 3)
    return order_id, StoredEvent(int(seq), status, frame)


class OrderStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        retention_seconds: int,
        batcher: CommandBatcher | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.retention_seconds = retention_seconds
        self.batcher = batcher or CommandBatcher(redis)
        self._append = self.batcher.script(_APPEND)
        self._create = self.batcher.script(_CREATE)

    async def create(self, order: Order, first_frame: dict[str, Any], queue: str | None) -> None:
        """Record a new order and its first event; enqueue it when ``queue`` is given.

        One script, batched with other orders' commands: either the order exists
        with its first event (and is queued), or nothing was written.
        """
        oid = order.order_id
        order_json = dumps(order.to_dict())
        frame = dumps(first_frame)
        status = first_frame["status"]
        retention = self.retention_seconds if status in TERMINAL_VALUES else 0
        await self._create(
            keys=[self.keys.order(oid), self.keys.events(oid), queue or self.keys.queue],
            args=[
                order_json,
                status,
                frame,
                self.keys.updates_channel,
                live_message(oid, 1, status, frame),
                str(time.time()),
                "1" if queue is not None else "0",
                retention,
                oid,
            ],
        )

    async def append(self, order_id: str, frame: dict[str, Any], state: dict[str, str] | None = None) -> bool:
        """Record and publish one event; False when its seq was already taken.

        ``state`` fields are written to the order hash in the same step, so
        what a successor worker needs to resume is never out of step with
        the events.
        """
        seq = frame["seq"]
        status = frame["status"]
        text = dumps(frame)
        retention = self.retention_seconds if status in TERMINAL_VALUES else 0
        # Batched with other orders' events: one round trip for many (see batching).
        added = await self._append(
            keys=[self.keys.order(order_id), self.keys.events(order_id)],
            args=[
                seq,
                status,
                text,
                self.keys.updates_channel,
                live_message(order_id, seq, status, text),
                retention,
                str(time.time()),
                *(item for pair in (state or {}).items() for item in pair),
            ],
        )
        return bool(added)

    async def exists(self, order_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.order(order_id)))

    async def state(self, order_id: str) -> dict[str, str] | None:
        data = await self.redis.hgetall(self.keys.order(order_id))
        return fields(data) if data else None

    async def last_event(self, order_id: str) -> StoredEvent | None:
        entries = stream_entries(await self.redis.xrevrange(self.keys.events(order_id), count=1) or ())
        return _event(*entries[0]) if entries else None

    async def history(self, order_id: str, after_seq: int = 0) -> list[StoredEvent]:
        entries = await self.redis.xrange(self.keys.events(order_id), min=f"(0-{after_seq}")
        return [_event(entry_id, values) for entry_id, values in stream_entries(entries or ())]
