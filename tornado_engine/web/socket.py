"""``GET /ws?orderId=<id>[&lastSeq=N]``: the order's frames, live, until terminal.

On a waiting order the socket first gets the ``pending`` frame, then the order
moves from the waiting store into Redis and the queue. On an order already in
Redis it gets every recorded frame after ``lastSeq`` and then the live ones.
Every outbound frame is logged; every frame that could not be delivered is
logged as a warning with orderId and status.

The order desk does the storage work (hand-off, history, live feed); this
module speaks WebSocket: frames, buffering, close codes and their logs.

With keys on, the handshake carries a ``read`` (or ``trade``) key in
``Authorization: Bearer`` or, as browsers cannot set that header, in
``?token=``; a key that may not see the order gets 4404, as for an unknown id.
"""

from __future__ import annotations

import asyncio
import logging

import tornado.iostream
import tornado.web
import tornado.websocket
from redis.exceptions import RedisError

from tornado_engine.auth import READ, Caller
from tornado_engine.auth.keyring import KeyRing
from tornado_engine.config import ServerConfig
from tornado_engine.desk import OrderDesk, OrderWatch
from tornado_engine.orders.frames import dumps, error_frame
from tornado_engine.orders.statuses import TERMINAL_VALUES
from tornado_engine.storage.store import StoredEvent
from tornado_engine.storage.updates import DATA_LOST
from tornado_engine.web.base import JsonErrors
from tornado_engine.web.callers import identify
from tornado_engine.web.connections import Connections
from tornado_engine.web.handshake import refuse_bad_handshake

log = logging.getLogger("tornado_engine.web.socket")

CLOSE_BAD_REQUEST = 4400
CLOSE_UNKNOWN_ORDER = 4404
CLOSE_UNAVAILABLE = 1011
CLOSE_NORMAL = 1000
CLOSE_TOO_SLOW = 1008
CLOSE_DATA_LOST = 4410
DATA_LOST_REASON = "Redis lost its data: reconnect with lastSeq; 4404 then means this order's record is gone"


class OrderSocketHandler(JsonErrors, tornado.websocket.WebSocketHandler):
    scope = READ  # with keys on: the key that submitted the order (trade covers read), or an admin key

    def initialize(
        self,
        server: ServerConfig,
        desk: OrderDesk,
        connections: Connections,
        keyring: KeyRing | None = None,
        keys_required: bool = False,
    ) -> None:
        self.server = server
        self.desk = desk
        self.connections = connections
        self.keyring = keyring
        self.keys_required = keys_required
        self.caller: Caller | None = None
        self.order_id: str | None = None
        self.last_seq = 0
        self.last_status: str | None = None
        self._feed_task: asyncio.Task | None = None
        self._watch: OrderWatch | None = None
        self._unsent = 0  # bytes handed to write_message that the socket has not taken yet

    def check_origin(self, origin: str) -> bool:
        allowed = self.server.allowed_origins
        if "*" in allowed or origin in allowed:
            return True
        return super().check_origin(origin)

    async def prepare(self) -> None:
        refuse_bad_handshake(self.request, self.check_origin)
        self.caller = await identify(
            self.keyring, self.keys_required, self.request, self.scope, allow_query=True
        )

    async def open(self) -> None:
        # Frames are small and each one matters now: without this, Nagle's algorithm
        # holds a frame back until the client acknowledges the previous one (40 ms
        # with delayed ACKs), which was the whole p99 of delivery lag under load.
        self.set_nodelay(True)
        try:
            order_id = (self.get_query_argument("orderId", "") or "").strip()
            raw_last = self.get_query_argument("lastSeq", "0") or "0"
        except tornado.web.HTTPError:  # percent-escapes that are not UTF-8
            self._refuse(None, CLOSE_BAD_REQUEST, "orderId and lastSeq must be UTF-8 text")
            return
        if not order_id:
            self._refuse(None, CLOSE_BAD_REQUEST, "orderId query parameter is required")
            return
        self.order_id = order_id
        if not (raw_last.isascii() and raw_last.isdigit()) or len(raw_last) > 9:
            self._refuse(order_id, CLOSE_BAD_REQUEST, "lastSeq must be a whole number >= 0")
            return
        self.last_seq = int(raw_last)
        self.connections.add(order_id, self)
        try:
            watch = await self.desk.watch(order_id, self.last_seq, self._send_event, self.caller)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.error("ws orderId=%s: Redis unavailable during handshake: %s", order_id, exc)
            self._refuse(order_id, CLOSE_UNAVAILABLE, "order storage is unavailable; reconnect shortly")
            return
        if watch is None:
            self._refuse(
                order_id, CLOSE_UNKNOWN_ORDER, f"unknown orderId {order_id!r}{self.desk.loss_note()}"
            )
            return
        self._watch = watch
        self._feed_task = asyncio.get_running_loop().create_task(self._stream(order_id, watch))

    async def _stream(self, order_id: str, watch: OrderWatch) -> None:
        try:
            async for event in watch.events():
                if event == DATA_LOST:
                    log.error("ws orderId=%s: Redis lost its data; closing the socket (4410)", order_id)
                    self._refuse(order_id, CLOSE_DATA_LOST, DATA_LOST_REASON)
                    return
                if not isinstance(event, StoredEvent):  # OUTAGE
                    message = "live updates interrupted: Redis is unreachable; they resume when it is back"
                    self._send(dumps(error_frame(order_id, message)), "error", None)
                    continue
                if not await self._deliver(event):
                    return  # closed under us (too slow, or gone): on_close takes over
            if self.ws_connection is not None:
                self.close(CLOSE_NORMAL, "order finished")
        except (RedisError, OSError) as exc:
            log.error("ws orderId=%s: lost order updates: %s", order_id, exc)
            self._refuse(order_id, CLOSE_UNAVAILABLE, "order updates are unavailable; reconnect with lastSeq")

    async def _deliver(self, event: StoredEvent) -> bool:
        """Send one frame; past the buffer limit, wait for the client to catch up.

        A reader that stalls must not grow our memory: one that has not taken
        its backlog within ``websocket_stall_seconds`` is dropped (it can
        reconnect with lastSeq). False when the socket is gone.
        """
        written = self._send(event.frame, event.status, event.seq)
        if written is None:
            return False
        server = self.server
        if self._unsent <= server.websocket_max_buffer_bytes:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(written), server.websocket_stall_seconds)
            return True
        except asyncio.TimeoutError:
            pass
        except tornado.iostream.StreamClosedError:
            return False
        log.warning(
            "client of orderId=%s reads too slowly (%d bytes unsent for %gs, limit %d); closing its socket",
            self.order_id,
            self._unsent,
            server.websocket_stall_seconds,
            server.websocket_max_buffer_bytes,
        )
        self.close(CLOSE_TOO_SLOW, "client reads too slowly; reconnect with lastSeq")
        return False

    def _send_event(self, event: StoredEvent) -> None:
        """What the desk calls with the pending frame, before the order is queued."""
        self._send(event.frame, event.status, event.seq)

    def _send(self, text: str, status: str, seq: int | None) -> asyncio.Future | None:
        if seq is not None:
            self.last_seq = seq
            self.last_status = status
        try:
            written = self.write_message(text)
        except tornado.websocket.WebSocketClosedError:
            log.warning(
                "undelivered update orderId=%s status=%s seq=%s: client socket is closed",
                self.order_id,
                status,
                seq,
            )
            self.connections.count_undelivered()
            return None
        size = len(text)
        self._unsent += size
        written.add_done_callback(lambda _: self._written(size))
        log.info("ws -> orderId=%s status=%s seq=%s", self.order_id, status, seq)
        return written

    def _written(self, size: int) -> None:
        """The kernel took a frame: it no longer counts against the buffer limit."""
        self._unsent -= size

    def _refuse(self, order_id: str | None, code: int, reason: str) -> None:
        self._send(dumps(error_frame(order_id, reason)), "error", None)
        self.close(code, close_reason(reason))

    def on_message(self, message: str | bytes) -> None:
        """Clients have nothing to say; messages are ignored (some send keep-alives)."""

    def on_close(self) -> None:
        if self._feed_task is not None:
            self._feed_task.cancel()
        if self._watch is not None:
            self._watch.stop()  # also when the task is cancelled before it ever ran
        order_id = self.order_id
        if order_id is None:
            return
        last_one = self.connections.remove(order_id, self)
        finished = self.last_status in TERMINAL_VALUES
        if self._feed_task is not None and not finished and last_one:
            log.warning(
                "client of orderId=%s disconnected at status=%s seq=%s (code %s); "
                "further updates are undelivered until it reconnects",
                order_id,
                self.last_status,
                self.last_seq,
                self.close_code,
            )
            self.connections.watch_orphan(order_id)


def close_reason(text: str, limit: int = 123) -> str:
    """A close frame's reason is at most 123 bytes of UTF-8; the error frame has it whole."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "..."
