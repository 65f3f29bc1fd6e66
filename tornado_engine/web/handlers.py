"""HTTP handlers: order intake, order lookup, health.

Every error leaves as ``{"error": "...", "field": "..."}`` with a 4xx or 503
status; internals go to the log, never into a response.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import tornado.web
from redis.exceptions import RedisError

from tornado_engine.engine import Engine
from tornado_engine.orders.frames import dumps
from tornado_engine.orders.order import Order, OrderValidationError, validate_order
from tornado_engine.timeouts import within

log = logging.getLogger(__name__)


class ApiError(tornado.web.HTTPError):
    """An error the client caused or must hear about, with a sentence for them."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(status, log_message=message.replace("%", "%%"))
        self.message = message
        self.field = field


class JsonHandler(tornado.web.RequestHandler):
    def initialize(self, engine: Engine) -> None:
        self.engine = engine

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        body: dict[str, Any]
        if isinstance(exc, ApiError):
            body = {"error": exc.message}
            if exc.field:
                body["field"] = exc.field
        elif status_code == 404:
            body = {"error": f"no such endpoint: {self.request.method} {self.request.path}"}
        elif status_code == 405:
            body = {"error": f"{self.request.method} is not allowed on {self.request.path}"}
        elif status_code < 500:
            body = {"error": self._reason or "bad request"}
        else:
            body = {"error": "internal error; the server log has the details"}
        self.finish(dumps(body))


class NotFoundHandler(JsonHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


@tornado.web.stream_request_body
class ExecuteOrderHandler(JsonHandler):
    """``POST /api/orders/execute``: validate, stamp an id, park in the waiting store."""

    def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._limit = self.engine.config.server.max_body_bytes
        if self.request.method != "POST":
            return
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
        hub = self.engine.hub
        if hub is not None and not hub.healthy:
            raise ApiError(503, "the order queue (Redis) is unreachable; try again shortly")
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
            await within(10, self.engine.waiting.submit(order))
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.error("POST: shared waiting store unavailable: %s", exc)
            raise ApiError(503, "the order queue (Redis) is unreachable; try again shortly") from None
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
        store = self.engine.store
        assert store is not None
        try:
            waiting = await asyncio.wait_for(self.engine.waiting.lookup(order_id), 10)
            if waiting is not None:
                self.write_json(
                    {"orderId": order_id, "status": "pending", "order": waiting.summary(), "events": []}
                )
                return
            state, events = await asyncio.wait_for(
                asyncio.gather(store.state(order_id), store.history(order_id)), 10
            )
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.error("GET order orderId=%s: Redis unavailable: %s", order_id, exc)
            raise ApiError(503, "order storage is unavailable; try again shortly") from None
        if state is None:
            raise ApiError(404, f"no order with id {order_id!r}", "orderId")
        order = Order.from_dict(json.loads(state["order"]))
        self.write_json(
            {
                "orderId": order_id,
                "status": state["status"],
                "order": order.summary(),
                "events": [json.loads(e.frame) for e in events],
            }
        )


class HealthHandler(JsonHandler):
    """``GET /health``: 200 when Redis answers, 503 when it does not."""

    async def get(self) -> None:
        assert self.engine.redis is not None
        try:
            await asyncio.wait_for(self.engine.redis.ping(), 2)
            redis_state = "ok"
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            redis_state = f"unreachable: {type(exc).__name__}"
        ok = redis_state == "ok"
        body: dict[str, Any] = {
            "status": "ok" if ok else "degraded",
            "redis": redis_state,
            "role": self.engine.role,
            "venues": sorted(self.engine.venues),
            "waitingOrders": await self.engine.waiting.count() if ok else None,
        }
        if self.engine.worker is not None:
            body["ordersInFlight"] = self.engine.worker.in_flight
        self.write_json(body, 200 if ok else 503)
