"""Live updates for the API side: one pub/sub connection per process, fanned out.

Workers publish every event on one channel; each API process listens once
and hands each event to the local subscribers of that order. A subscriber
first reads the order's recorded history, then the live events, and fills
any gap from the history, so a client gets every frame exactly once and in
order: after a late connect, a reconnect, or a pub/sub reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tornado_engine.orders.statuses import TERMINAL_VALUES
from tornado_engine.storage.keys import Keys
from tornado_engine.storage.store import OrderStore, StoredEvent, parse_live_message

log = logging.getLogger(__name__)

OUTAGE = "outage"
RESYNC = "resync"
DATA_LOST = "data-lost"
Listener = Callable[[StoredEvent | str], None]
"""Called with each live event, or with OUTAGE when the channel is lost,
RESYNC when it is back (events may have been missed meanwhile), and
DATA_LOST when Redis lost its data (``storage.epoch``)."""

Interruption = str
"""OUTAGE or DATA_LOST, as an order feed yields them between events."""

Watcher = Callable[[str, StoredEvent], None]
"""Called with every order's live events (the live page's activity log)."""


class UpdateHub:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._watchers: set[Watcher] = set()
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()
        self.healthy = False  # False while the updates channel is down

    def subscribe(self, order_id: str, listener: Listener) -> None:
        self._listeners[order_id].add(listener)

    def unsubscribe(self, order_id: str, listener: Listener) -> None:
        listeners = self._listeners.get(order_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[order_id]

    def watch(self, watcher: Watcher) -> None:
        """Receive every order's live events, best effort: missed ones are not replayed."""
        self._watchers.add(watcher)

    def subscribers(self, order_id: str) -> int:
        return len(self._listeners.get(order_id, ()))

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="update-hub")
        await self.connected.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _dispatch(self, message: str) -> None:
        order_id = message.split("|", 1)[0]
        listeners = self._listeners.get(order_id)
        if not listeners and not self._watchers:
            return
        _, event = parse_live_message(message)
        for watcher in list(self._watchers):
            watcher(order_id, event)
        for listener in list(listeners or ()):
            listener(event)

    def data_lost(self) -> None:
        """Tell every listener that Redis lost its data: their orders' records may be gone."""
        self._signal_all(DATA_LOST)

    def _signal_all(self, signal: str) -> None:
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                listener(signal)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.keys.updates_channel)
                # Wait for the server's confirmation: from here on nothing is missed.
                while True:
                    confirmation = await pubsub.get_message(timeout=5.0)
                    if confirmation is not None and confirmation["type"] == "subscribe":
                        break
                if self.connected.is_set():
                    log.warning("updates channel re-subscribed; resyncing open sockets from history")
                    self._signal_all(RESYNC)
                self.connected.set()
                self.healthy = True
                delay = 0.1
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    while message is not None:
                        if message["type"] == "message":
                            self._dispatch(message["data"])
                        # Drain what already arrived before yielding to the loop again.
                        message = await pubsub.get_message(timeout=0)
            except (RedisError, OSError) as exc:
                if self.healthy:
                    self.healthy = False
                    self._signal_all(OUTAGE)
                log.error("updates channel lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(RedisError, OSError):  # already broken
                    await pubsub.aclose()


class OrderFeed:
    """Every event of one order after ``after_seq``, history first, then live.

    Subscribes before reading history, so an event produced in between is
    either in the history or arrives live; seq numbers drop duplicates and
    reveal gaps, which are filled from the history. A feed started before its
    order was handed to the queue has no history to read: everything after
    the hand-off arrives live (``events(read_history=False)``).
    """

    def __init__(self, hub: UpdateHub, store: OrderStore, order_id: str, after_seq: int = 0) -> None:
        self.hub = hub
        self.store = store
        self.order_id = order_id
        self.last_seq = after_seq
        self._inbox: asyncio.Queue[StoredEvent | str] = asyncio.Queue()
        self._subscribed = False

    def _on_event(self, event: StoredEvent | str) -> None:
        self._inbox.put_nowait(event)

    def start(self) -> None:
        """Listen from now on (idempotent)."""
        if not self._subscribed:
            self.hub.subscribe(self.order_id, self._on_event)
            self._subscribed = True

    def stop(self) -> None:
        if self._subscribed:
            self.hub.unsubscribe(self.order_id, self._on_event)
            self._subscribed = False

    async def events(self, read_history: bool = True) -> AsyncIterator[StoredEvent | Interruption]:
        """Yields each event in seq order; OUTAGE once when live updates are interrupted;
        DATA_LOST, and then nothing, when Redis lost its data.

        Ends after the terminal event, or at once when the order finished at or
        before ``after_seq`` (the client already has every frame).
        """
        self.start()
        try:
            pending: list[StoredEvent] = (
                await self.store.history(self.order_id, self.last_seq) if read_history else []
            )
            if read_history and not pending and await self._finished_already():
                return
            from_history = read_history
            while True:
                for event in pending:
                    if event.seq <= self.last_seq:
                        continue  # already delivered
                    if event.seq != self.last_seq + 1 and not from_history:
                        # A gap: fetch what is missing from the record, then go on.
                        pending = await self.store.history(self.order_id, self.last_seq)
                        from_history = True
                        break
                    self.last_seq = event.seq
                    yield event
                    if event.status in TERMINAL_VALUES:
                        return
                else:
                    item = await self._inbox.get()
                    from_history = item == RESYNC
                    if isinstance(item, StoredEvent):
                        pending = [item]
                    elif item == DATA_LOST:
                        yield DATA_LOST
                        return
                    elif item == OUTAGE:
                        pending = []
                        yield OUTAGE
                    else:  # RESYNC
                        pending = await self.store.history(self.order_id, self.last_seq)
        finally:
            self.stop()

    async def _finished_already(self) -> bool:
        """The order's last recorded event is terminal and the client has seen it."""
        last = await self.store.last_event(self.order_id)
        return last is not None and last.status in TERMINAL_VALUES and last.seq <= self.last_seq
