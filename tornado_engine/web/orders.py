"""The order endpoints: intake (``POST /api/orders/execute``) and lookup (``GET /api/orders/{id}``).

Both ask the order desk for one operation; here is only HTTP: the body, its
validation, and the status codes.
"""

from __future__ import annotations

import asyncio
import json
import logging

import tornado.web
from redis.exceptions import RedisError

from tornado_engine.orders.order import OrderValidationError, validate_order
from tornado_engine.storage.store import IncompleteRecord
from tornado_engine.timeouts import within
from tornado_engine.web.base import ApiError, JsonHandler

log = logging.getLogger(__name__)

QUEUE_UNAVAILABLE = "the order queue (Redis) is unreachable; try again shortly"


@tornado.web.stream_request_body
class ExecuteOrderHandler(JsonHandler):
    """``POST /api/orders/execute``: validate, stamp an id, park in the waiting store."""

    def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._limit = self.engine.config.server.max_body_bytes
        if self.request.method != "POST":
            return
        self.body_pending = True  # until post() runs: a refusal before then closes the connection
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise ApiError(415, "Content-Type must be application/json")
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self._limit:
            raise ApiError(413, f"the body is larger than {self._limit} bytes")

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._size += len(chunk)
        if self._size > self._limit:
            # Tornado does not route exceptions raised here to write_error (a chunked
            # body has no Content-Length for prepare to check): answer 413 ourselves.
            self._chunks.clear()
            error = ApiError(413, f"the body is larger than {self._limit} bytes")
            self.send_error(413, exc_info=(ApiError, error, None))
            return
        self._chunks.append(chunk)

    async def post(self) -> None:
        if self._finished:  # answered 413 while the body was streaming in
            return
        self.body_pending = False
        if not self.engine.desk.available:
            raise ApiError(503, QUEUE_UNAVAILABLE)
        raw = b"".join(self._chunks)
        if not raw.strip():
            raise ApiError(400, "the body is empty; send a JSON object")
        try:
            # JSON between systems is UTF-8 (RFC 8259); json.loads(bytes) would accept UTF-16/32.
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApiError(400, "the body is not valid JSON: not UTF-8 text") from None
        try:
            body = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, f"the body is not valid JSON: {_json_problem(exc)}") from None
        try:
            order = validate_order(body, self.engine.rules)
        except OrderValidationError as exc:
            raise ApiError(400, str(exc), exc.field) from None
        try:
            await within(10, self.engine.desk.admit(order))
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.error("POST: shared waiting store unavailable: %s", exc)
            raise ApiError(503, QUEUE_UNAVAILABLE) from None
        log.info(
            "order accepted orderId=%s %s %s->%s amount=%s",
            order.order_id,
            order.order_type,
            order.from_token,
            order.to_token,
            order.amount,
        )
        self.write_json({"orderId": order.order_id, "status": "pending"})


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


class OrderHandler(JsonHandler):
    """``GET /api/orders/{orderId}``: current status and full event history."""

    async def get(self, order_id: str) -> None:
        try:
            order = await self.engine.desk.lookup(order_id)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.error("GET order orderId=%s: Redis unavailable: %s", order_id, exc)
            raise ApiError(503, "order storage is unavailable; try again shortly") from None
        except IncompleteRecord as exc:
            log.error("GET order orderId=%s: %s", order_id, exc)
            raise ApiError(
                503,
                f"the record of order {order_id!r} is incomplete: Redis lost data; "
                "the worker executing it writes it again, try again shortly",
                "orderId",
            ) from None
        if order is None:
            raise ApiError(404, f"no order with id {order_id!r}{self.engine.desk.loss_note()}", "orderId")
        self.write_json(order)
