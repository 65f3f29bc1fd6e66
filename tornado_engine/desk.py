"""The order desk: what the API half does with orders, one operation per client request.

``admit`` takes an accepted order into the waiting store (``POST``);
``watch`` starts a client's order, handing it from the waiting store to the
store and the queue, and follows its events (``GET /ws``); ``lookup`` reads
an order wherever it is (``GET /api/orders/{id}``). The web layer speaks HTTP
and WebSocket around these; the engine builds the desk from its parts.

Ownership is checked here and nowhere else: with keys on, every operation
takes the request's :class:`Caller`, ``admit`` records its name on the order,
and an order another key submitted is, to a non-admin caller, an order that
does not exist (so ids cannot be probed). With keys off the caller is None and
every order is visible, as in the original service. Any new operation on an
order by id (cancel, list) asks :meth:`OrderDesk.may_access` or
:meth:`OrderDesk.visible` first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tornado_engine.auth import Caller
from tornado_engine.orders.frames import dumps, order_frame
from tornado_engine.orders.order import Order
from tornado_engine.orders.statuses import TERMINAL_VALUES, Status
from tornado_engine.storage.epoch import DataSetWatch
from tornado_engine.storage.order_index import OrderIndex, Position
from tornado_engine.storage.queue import OrderQueue
from tornado_engine.storage.replies import text
from tornado_engine.storage.store import IncompleteRecord, OrderStore, StoredEvent
from tornado_engine.storage.updates import Interruption, OrderFeed, UpdateHub
from tornado_engine.timeouts import within
from tornado_engine.waiting.base import WaitingStore

log = logging.getLogger(__name__)

HANDOFF_TIMEOUT_S = 10
LOOKUP_TIMEOUT_S = 10
# "Starting execution" first: the original service's clients (and its integration test) match it.
PENDING_MESSAGE = "Starting execution: order received; execution starting soon"
CANCEL_MESSAGE = "Cancelled by its client before it began to execute; nothing was traded"
OWNER_CACHE_SIZE = 4096  # order ids whose owner this process has read (an owner never changes)
LIST_SCAN_LIMIT = 2000  # index entries one GET /api/orders page may read to fill a status filter


class OrderWatch:
    """One client's view of one order: its events after the client's last seq, in order."""

    def __init__(self, feed: OrderFeed, read_history: bool) -> None:
        self._feed = feed
        self._read_history = read_history

    def events(self) -> AsyncIterator[StoredEvent | Interruption]:
        """Each event in seq order, until terminal; OUTAGE once when live updates are
        interrupted; DATA_LOST, then nothing, when Redis lost its data."""
        return self._feed.events(self._read_history)

    def stop(self) -> None:
        self._feed.stop()


class OrderDesk:
    def __init__(
        self,
        waiting: WaitingStore,
        store: OrderStore,
        queue: OrderQueue,
        updates: UpdateHub,
        data_set: DataSetWatch | None = None,
        index: OrderIndex | None = None,
    ) -> None:
        self.waiting = waiting
        self.index = index
        self.store = store
        self.queue = queue
        self.updates = updates
        self.data_set = data_set
        self._owners: OrderedDict[str, str | None] = OrderedDict()

    def loss_note(self) -> str:
        """What to add when an order is not found after Redis lost its data: it may be why."""
        loss = self.data_set.last_loss if self.data_set is not None else None
        if loss is None:
            return ""
        return (
            f" (Redis lost its data at {loss.to_dict()['detectedAt']}: an order accepted before may be gone)"
        )

    @property
    def available(self) -> bool:
        """False while the updates channel (Redis) is down: accepted orders could not be followed."""
        return self.updates.healthy

    async def admit(self, order: Order, caller: Caller | None = None) -> Order:
        """Keep a validated order until its client connects (or it expires); the caller owns it."""
        if caller is not None:
            order = dataclasses.replace(order, owner=caller.name)
        if self.index is None:
            await self.waiting.submit(order)
        else:
            await asyncio.gather(self.waiting.submit(order), self.index.add(order.order_id, order.owner))
        return order

    async def owner_of(self, order_id: str) -> tuple[bool, str | None]:
        """(whether the order exists, the key name that submitted it); cached once known."""
        if order_id in self._owners:
            return True, self._owners[order_id]
        waiting = await within(LOOKUP_TIMEOUT_S, self.waiting.lookup(order_id))
        if waiting is not None:
            return True, waiting.owner
        state = await within(LOOKUP_TIMEOUT_S, self.store.state(order_id))
        if state is None or "order" not in state:
            return False, None
        owner = Order.from_dict(json.loads(state["order"])).owner
        self._owners[order_id] = owner
        while len(self._owners) > OWNER_CACHE_SIZE:
            self._owners.popitem(last=False)
        return True, owner

    async def may_access(self, order_id: str, caller: Caller | None) -> bool:
        """Whether ``caller`` may see or act on the order (False also when there is no such order)."""
        exists, owner = await self.owner_of(order_id)
        return exists and (caller is None or caller.may_see(owner))

    async def visible(self, order_ids: list[str], caller: Caller | None) -> list[str]:
        """The ids among ``order_ids`` that ``caller`` may see, in their order."""
        if caller is None or caller.is_admin:
            return list(order_ids)
        allowed = await asyncio.gather(*(self.may_access(order_id, caller) for order_id in order_ids))
        return [order_id for order_id, ok in zip(order_ids, allowed, strict=True) if ok]

    async def is_waiting(self, order_id: str) -> bool:
        """Whether the order still waits for its client's socket (the limits' waiting quota)."""
        return await within(LOOKUP_TIMEOUT_S, self.waiting.lookup(order_id)) is not None

    async def is_in_flight(self, order_id: str) -> bool:
        """Whether the order exists and has not finished (the limits' in-flight quota)."""
        if await self.is_waiting(order_id):
            return True
        state = await within(LOOKUP_TIMEOUT_S, self.store.state(order_id))
        return state is not None and state.get("status") not in TERMINAL_VALUES

    async def list_orders(
        self, caller: Caller | None, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of orders, newest first (``GET /api/orders``): the caller's own, or all for
        an admin key or with keys off; with ``status``, only orders now in it.

        Returns the page and the cursor of the next one (None at the end). A
        status filter reads at most ``LIST_SCAN_LIMIT`` entries per page: a
        short page with a cursor means "more may follow".
        """
        if self.index is None:
            return [], None
        owner = None if caller is None or caller.is_admin else caller.name
        after = Position.parse(cursor) if cursor else None
        found: list[dict[str, Any]] = []
        scanned = 0
        while len(found) < limit and scanned < LIST_SCAN_LIMIT:
            batch = await within(LOOKUP_TIMEOUT_S, self.index.page(owner, after, limit))
            summaries = await within(LOOKUP_TIMEOUT_S, self._summaries([p.order_id for p in batch]))
            for position, summary in zip(batch, summaries, strict=True):
                after = position
                scanned += 1
                if summary is not None and (status is None or summary["status"] == status):
                    found.append(summary)
                    if len(found) == limit:
                        break
            if len(batch) < limit and (not batch or after == batch[-1]):
                return found, None  # the index has nothing older
        return found, after.cursor() if after is not None else None

    async def _summaries(self, order_ids: list[str]) -> list[dict[str, Any] | None]:
        """Each order's id, status and summary, in one round trip (None: it is gone)."""
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for order_id in order_ids:
                pipe.hmget(self.store.keys.order(order_id), ["status", "order"])
            replies = await pipe.execute()
        out: list[dict[str, Any] | None] = []
        for order_id, (status, raw) in zip(order_ids, replies, strict=True):
            if status is not None and raw is not None:
                order = Order.from_dict(json.loads(raw))
                out.append({"orderId": order_id, "status": text(status), "order": order.summary()})
                continue
            waiting = await self.waiting.lookup(order_id)
            summary = waiting.summary() if waiting is not None else None
            out.append(
                None if summary is None else {"orderId": order_id, "status": "pending", "order": summary}
            )
        return out

    async def waiting_count(self) -> int:
        return await self.waiting.count()

    async def lookup(self, order_id: str, caller: Caller | None = None) -> dict[str, Any] | None:
        """The order as ``GET /api/orders/{id}`` reports it: status and every event so far.

        None for an order that does not exist or that ``caller`` may not see.
        Raises :class:`IncompleteRecord` for a hash Redis lost part of.
        """
        waiting = await within(LOOKUP_TIMEOUT_S, self.waiting.lookup(order_id))
        if waiting is not None:
            if caller is not None and not caller.may_see(waiting.owner):
                return None
            return {"orderId": order_id, "status": "pending", "order": waiting.summary(), "events": []}
        state, events = await within(
            LOOKUP_TIMEOUT_S, asyncio.gather(self.store.state(order_id), self.store.history(order_id))
        )
        if state is None:
            return None
        for field in ("order", "status"):
            if field not in state:  # written by a worker after Redis lost the order's record
                raise IncompleteRecord(order_id, field)
        order = Order.from_dict(json.loads(state["order"]))
        if caller is not None and not caller.may_see(order.owner):
            return None
        return {
            "orderId": order_id,
            "status": state["status"],
            "order": order.summary(),
            "events": [json.loads(e.frame) for e in events],
        }

    async def watch(
        self,
        order_id: str,
        after_seq: int,
        send_first: Callable[[StoredEvent], object],
        caller: Caller | None = None,
    ) -> OrderWatch | None:
        """Follow an order for a client that has seen its events up to ``after_seq``.

        A waiting order starts now: ``send_first`` gets its pending frame
        (unless the client has it), then the order is recorded and queued.
        None when there is no such order, waiting or recorded, or ``caller``
        may not see it (it is not started then).
        """
        if caller is not None and not caller.is_admin and not await self.may_access(order_id, caller):
            return None
        first = order_frame(order_id, Status.PENDING, 1, message=PENDING_MESSAGE)

        def send_pending() -> None:
            if after_seq < 1:
                send_first(StoredEvent(1, Status.PENDING.value, dumps(first)))

        # Listening before the hand-off: every event after it arrives live, so a
        # fresh order needs no history read (one Redis round trip saved per order).
        feed = OrderFeed(self.updates, self.store, order_id, after_seq)
        feed.start()
        try:
            handed_off = await within(
                HANDOFF_TIMEOUT_S, self.waiting.hand_off(order_id, first, self._create, send_pending)
            )
            if handed_off:
                feed.last_seq = max(after_seq, 1)
                log.info("orderId=%s moved from the waiting store to the queue", order_id)
            elif not await self.store.exists(order_id):
                feed.stop()
                return None
        except BaseException:
            feed.stop()
            raise
        return OrderWatch(feed, read_history=not handed_off)

    async def cancel(self, order_id: str, caller: Caller | None = None) -> tuple[str, str]:
        """Cancel an order that has not begun to execute (``DELETE /api/orders/{id}``).

        Waiting for its client, it is withdrawn from the waiting store and
        recorded ``cancelled`` (a socket opening meanwhile gets that frame);
        recorded and still ``pending`` or ``waiting``, the store's script
        cancels it and fences out any worker holding it. Returns what
        :meth:`OrderStore.cancel` returns; ``("missing", "")`` also for an
        order ``caller`` may not see.
        """
        if not await self.may_access(order_id, caller):
            return "missing", ""
        frame = order_frame(order_id, Status.CANCELLED, 1, message=CANCEL_MESSAGE)
        if await within(HANDOFF_TIMEOUT_S, self.waiting.withdraw(order_id, frame, self._record_final)):
            return "cancelled", "1"
        return await within(LOOKUP_TIMEOUT_S, self.store.cancel(order_id, frame))

    def _record_final(self, order: Order, final_frame: dict[str, Any]) -> Awaitable[None]:
        """Record an order that ends without executing (cancelled while waiting); not queued."""
        return self.store.create(order, final_frame, None)

    def _create(self, order: Order, first_frame: dict[str, Any]) -> Awaitable[None]:
        """Record the order with its first frame and queue it, in one step."""
        return self.store.create(order, first_frame, self.queue.name)
