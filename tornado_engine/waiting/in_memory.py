"""The waiting store: orders accepted over HTTP whose client has not connected yet.

Orders never execute before their client is ready; an order whose client
never connects expires after the TTL and is recorded as ``expired``. Taking an
order is atomic within the process, and a second socket that arrives while
the first is handing the order to Redis waits for that hand-off instead of
being told the order is unknown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tornado_engine.orders.order import Order
from tornado_engine.waiting.base import CreateOrder
from tornado_engine.waiting.sweeper import ExpirySweeper

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    order: Order
    deadline: float


class MemoryWaitingStore:
    """In this process's memory: the POST and the WebSocket must reach the same process.

    A :class:`~tornado_engine.waiting.base.WaitingStore`; ``put``, ``peek`` and
    ``take`` are its synchronous core.
    """

    shared = False

    def __init__(
        self,
        ttl_seconds: float,
        on_expired: Callable[[Order], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_shutdown: Callable[[list[Order]], Awaitable[None]] | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._on_expired = on_expired
        self._on_shutdown = on_shutdown
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._handoffs: dict[str, asyncio.Future[bool]] = {}
        self._sweeper = ExpirySweeper(self.sweep, ttl_seconds)

    def put(self, order: Order) -> None:
        self._entries[order.order_id] = _Entry(order, self._clock() + self.ttl_seconds)

    def peek(self, order_id: str) -> Order | None:
        entry = self._entries.get(order_id)
        return entry.order if entry else None

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every waiting order (tests)."""
        self._entries.clear()

    def take(self, order_id: str) -> Order | None:
        """Remove and return the order, marking it as being handed off."""
        entry = self._entries.pop(order_id, None)
        if entry is None:
            return None
        self._handoffs[order_id] = asyncio.get_running_loop().create_future()
        return entry.order

    def handed_off(self, order_id: str, ok: bool = True) -> None:
        """The order is now in Redis (``ok``) or was put back (not ``ok``)."""
        future = self._handoffs.pop(order_id, None)
        if future is not None and not future.done():
            future.set_result(ok)

    def restore(self, order: Order) -> None:
        """Put back an order whose hand-off failed; its TTL starts again."""
        self.put(order)
        self.handed_off(order.order_id, ok=False)

    async def wait_for_handoff(self, order_id: str) -> bool | None:
        """If ``order_id`` is being handed off, wait for the outcome; else None."""
        future = self._handoffs.get(order_id)
        if future is None:
            return None
        return await asyncio.shield(future)

    # The interface every waiting store offers (waiting.base.WaitingStore).

    async def submit(self, order: Order) -> None:
        self.put(order)

    async def lookup(self, order_id: str) -> Order | None:
        return self.peek(order_id)

    async def count(self) -> int:
        return len(self)

    async def hand_off(
        self,
        order_id: str,
        first_frame: dict[str, Any],
        create: CreateOrder,
        before: Callable[[], None],
    ) -> bool:
        """Move a waiting order into Redis: ``create`` (record and enqueue), then
        ``before()`` (send the pending frame just recorded). False when the order
        was not waiting here, after any hand-off of it already under way has finished."""
        order = self.take(order_id)
        if order is None:
            await self.wait_for_handoff(order_id)
            return False
        try:
            await create(order, first_frame)
        except BaseException:
            self.restore(order)
            raise
        self.handed_off(order_id)
        # Recorded first, sent second: the client never holds a frame the record lacks.
        before()
        return True

    async def withdraw(self, order_id: str, final_frame: dict[str, Any], create: CreateOrder) -> bool:
        """Take the order (as a hand-off would, so a socket arriving meanwhile waits for the
        outcome) and record it with ``final_frame`` instead of queueing it."""
        order = self.take(order_id)
        if order is None:
            await self.wait_for_handoff(order_id)
            return False
        try:
            await create(order, final_frame)
        except BaseException:
            self.restore(order)
            raise
        self.handed_off(order_id, ok=False)
        return True

    def pop_expired(self) -> list[Order]:
        now = self._clock()
        expired = [oid for oid, entry in self._entries.items() if entry.deadline <= now]
        return [self._entries.pop(oid).order for oid in expired]

    async def sweep(self) -> int:
        """Expire every order past its deadline; returns how many.

        Until its expiry is recorded, an expiring order counts as being handed
        off, so a socket arriving meanwhile waits and then finds it ``expired``
        instead of being told the order is unknown.
        """
        expired = self.pop_expired()
        loop = asyncio.get_running_loop()
        for order in expired:
            self._handoffs[order.order_id] = loop.create_future()
        try:
            for order in expired:
                log.warning(
                    "order expired: orderId=%s no client connected within %gs",
                    order.order_id,
                    self.ttl_seconds,
                )
                try:
                    if self._on_expired is not None:
                        await self._on_expired(order)
                except Exception:
                    log.exception("could not record expiry of orderId=%s", order.order_id)
                self.handed_off(order.order_id, ok=False)
        finally:  # cancelled mid-sweep: release every waiter all the same
            for order in expired:
                self.handed_off(order.order_id, ok=False)
        return len(expired)

    def start(self, interval: float | None = None) -> None:
        self._sweeper.start(interval)

    async def stop(self) -> None:
        """Stop sweeping, and hand every order still waiting to ``on_shutdown``.

        They live only in this process, which is going away: ``on_shutdown``
        records each with a terminal status its client can read anywhere.
        """
        await self._sweeper.stop()
        left = [entry.order for entry in self._entries.values()]
        self._entries.clear()
        if not left:
            return
        if self._on_shutdown is None:
            log.error("stopping with %d orders waiting for their client; they are dropped", len(left))
            return
        try:
            await self._on_shutdown(left)
        except Exception:
            log.exception(
                "could not record %d waiting orders at shutdown: %s",
                len(left),
                ", ".join(order.order_id for order in left),
            )
