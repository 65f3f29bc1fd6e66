"""The shared waiting store, in Redis: the POST and the WebSocket may reach
different API processes (a load balancer without sticky sessions).

An order waits as ``{orderId}:waiting`` with its deadline in one sorted set.
Taking it is atomic, whoever takes it: a socket's hand-off (which records and
enqueues the order in the same script) or an expiry sweep on any process, so
an order is handed off or expired exactly once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from tornado_engine.orders.frames import dumps
from tornado_engine.orders.order import Order
from tornado_engine.orders.statuses import TERMINAL_VALUES
from tornado_engine.storage.keys import Keys
from tornado_engine.storage.replies import texts
from tornado_engine.storage.store import finished_feed_lua, live_message
from tornado_engine.waiting.base import CreateOrder
from tornado_engine.waiting.sweeper import ExpirySweeper

log = logging.getLogger(__name__)

# Keys outlive their deadline so a sweep that runs late still finds them.
KEY_GRACE_SECONDS = 3600

# Take a waiting order and record its first event in one step: handed off
# (pending, and queued) or expired (terminal, kept for the retention), never both.
# KEYS: waiting, deadlines, order hash, events, queue, and the finished feed when expired.
# ARGV: orderId, first frame, channel, live message, now, status, enqueue (1/0),
# retention seconds (0 = keep).
_MOVE = (
    """
local order = redis.call('GET', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if not order then return false end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[3], 'order', order, 'status', ARGV[6], 'seq', 1, 'attempt', 0,
           'updatedAt', ARGV[5])
redis.call('XADD', KEYS[4], '0-1', 's', ARGV[6], 'f', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
if ARGV[7] == '1' then
  redis.call('XADD', KEYS[5], '*', 'orderId', ARGV[1], 'order', order)
end
local retention = tonumber(ARGV[8])
if retention > 0 then
  redis.call('EXPIRE', KEYS[3], retention)
  redis.call('EXPIRE', KEYS[4], retention)
end
"""
    + finished_feed_lua(6, "ARGV[1]", "ARGV[6]")
    + "return order\n"
)


class RedisWaitingStore:
    """A :class:`~tornado_engine.waiting.base.WaitingStore` every API process shares."""

    shared = True

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        ttl_seconds: float,
        expired_frame: Callable[[str], dict[str, Any]],
        retention_seconds: int,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self._expired_frame = expired_frame
        self._retention_seconds = retention_seconds
        self._move = redis.register_script(_MOVE)
        self._sweeper = ExpirySweeper(self.sweep, ttl_seconds)

    async def submit(self, order: Order) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(
                self.keys.waiting(order.order_id),
                dumps(order.to_dict()),
                ex=int(self.ttl_seconds) + KEY_GRACE_SECONDS,
            )
            pipe.zadd(self.keys.waiting_deadlines, {order.order_id: time.time() + self.ttl_seconds})
            await pipe.execute()

    async def lookup(self, order_id: str) -> Order | None:
        raw = await self.redis.get(self.keys.waiting(order_id))
        return Order.from_dict(json.loads(raw)) if raw else None

    async def count(self) -> int:
        return await self.redis.zcard(self.keys.waiting_deadlines)

    async def hand_off(
        self,
        order_id: str,
        first_frame: dict[str, Any],
        create: CreateOrder,
        before: Callable[[], None],
    ) -> bool:
        """Take, record and enqueue in one script; then ``before()`` sends the pending
        frame (nothing can reach the socket ahead of it: the socket's feed starts later)."""
        if not await self._take(order_id, first_frame, enqueue=True, retention=0):
            return False
        before()
        return True

    async def withdraw(self, order_id: str, final_frame: dict[str, Any], create: CreateOrder) -> bool:
        """Take and record with ``final_frame`` in one script, as an expiry is: never also handed off."""
        return bool(await self._take(order_id, final_frame, enqueue=False, retention=self._retention_seconds))

    async def _take(self, order_id: str, frame: dict[str, Any], enqueue: bool, retention: int) -> str | None:
        text = dumps(frame)
        status = frame["status"]
        return await self._move(
            keys=[
                self.keys.waiting(order_id),
                self.keys.waiting_deadlines,
                self.keys.order(order_id),
                self.keys.events(order_id),
                self.keys.queue,
                *([self.keys.finished] if status in TERMINAL_VALUES else []),
            ],
            args=[
                order_id,
                text,
                self.keys.updates_channel,
                live_message(order_id, 1, status, text),
                str(time.time()),
                status,
                "1" if enqueue else "0",
                retention,
            ],
        )

    async def sweep(self) -> int:
        """Expire every order past its deadline; any API process may run this."""
        due = await self.redis.zrangebyscore(self.keys.waiting_deadlines, 0, time.time(), start=0, num=100)
        expired = 0
        for order_id in texts(due):
            frame = self._expired_frame(order_id)
            if not await self._take(order_id, frame, enqueue=False, retention=self._retention_seconds):
                continue  # handed off (or expired) by someone else first
            expired += 1
            log.warning(
                "order expired: orderId=%s no client connected within %gs", order_id, self.ttl_seconds
            )
        return expired

    def start(self, interval: float | None = None) -> None:
        self._sweeper.start(interval)

    async def stop(self) -> None:
        await self._sweeper.stop()
