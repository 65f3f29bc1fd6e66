"""The order sockets open in this API process, and the updates none of them could take.

One registry per Application: the socket handler registers itself while it
is open, ``/metrics`` counts from it, shutdown closes what it holds. When
the last socket of an unfinished order closes, the registry keeps listening
to that order for a while and logs each update nobody received, so an
operator can see what a client missed (it can still fetch it with lastSeq).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from tornado_engine.orders.statuses import TERMINAL_VALUES
from tornado_engine.storage.store import StoredEvent
from tornado_engine.storage.updates import UpdateHub

log = logging.getLogger(__name__)

ORPHAN_WATCH_SECONDS = 900


class OrderSocket(Protocol):
    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class Connections:
    def __init__(self, updates: UpdateHub, orphan_watch_seconds: float = ORPHAN_WATCH_SECONDS) -> None:
        self.updates = updates
        self.orphan_watch_seconds = orphan_watch_seconds
        self.sockets: dict[str, set[OrderSocket]] = {}
        self.undelivered = 0

    def add(self, order_id: str, socket: OrderSocket) -> None:
        self.sockets.setdefault(order_id, set()).add(socket)

    def remove(self, order_id: str, socket: OrderSocket) -> bool:
        """Forget a closed socket; True when no socket of its order is left open."""
        sockets = self.sockets.get(order_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.sockets[order_id]
        return order_id not in self.sockets

    @property
    def open_sockets(self) -> int:
        return sum(len(s) for s in self.sockets.values())

    def count_undelivered(self) -> None:
        """An update reached no socket (the client may fetch it later)."""
        self.undelivered += 1

    def close_all(self, code: int, reason: str) -> None:
        for sockets in list(self.sockets.values()):
            for socket in list(sockets):
                socket.close(code, reason)

    def watch_orphan(self, order_id: str) -> None:
        """Log, as warnings, the updates of an order whose client went away."""
        updates = self.updates
        loop = asyncio.get_running_loop()

        def listener(event: StoredEvent | str) -> None:
            if not isinstance(event, StoredEvent):
                return
            if order_id in self.sockets:  # a client came back: it gets the frames
                stop()
                return
            self.count_undelivered()
            log.warning(
                "undelivered update orderId=%s status=%s seq=%s: no client connected",
                order_id,
                event.status,
                event.seq,
            )
            if event.status in TERMINAL_VALUES:
                stop()

        def stop(*_: Any) -> None:
            updates.unsubscribe(order_id, listener)
            timer.cancel()

        updates.subscribe(order_id, listener)
        timer = loop.call_later(self.orphan_watch_seconds, stop)
