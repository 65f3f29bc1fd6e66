"""The order endpoints: intake (``POST /api/orders/execute``) and lookup (``GET /api/orders/{id}``).

Both ask the order desk for one operation; here is only HTTP: the body, its
validation, the ``Idempotency-Key`` (storage.idempotency keeps the keys), the
socket URL to watch the order on, and the status codes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import tornado.httputil
import tornado.web
from redis.exceptions import RedisError

from tornado_engine.auth import READ, TRADE
from tornado_engine.limits.intake import policy_for
from tornado_engine.limits.rate import retry_after
from tornado_engine.orders.order import Order, OrderValidationError, validate_order
from tornado_engine.orders.statuses import Status
from tornado_engine.storage.idempotency import (
    IdempotencyConflict,
    IdempotencyKeys,
    body_fingerprint,
    key_problem,
)
from tornado_engine.storage.order_index import BadCursor
from tornado_engine.storage.store import IncompleteRecord
from tornado_engine.timeouts import within
from tornado_engine.web.base import ApiError, JsonHandler

log = logging.getLogger(__name__)

QUEUE_UNAVAILABLE = "the order queue (Redis) is unreachable; try again shortly"
IDEMPOTENCY_HEADER = "Idempotency-Key"
STATUS_VALUES = frozenset(status.value for status in Status)
DEFAULT_PAGE, MAX_PAGE = 50, 200  # orders per GET /api/orders page
T = TypeVar("T")
SETTLE_TIMEOUT_S = 10  # how long a duplicate waits for the request that claimed its key


@tornado.web.stream_request_body
class ExecuteOrderHandler(JsonHandler):
    """``POST /api/orders/execute``: validate, stamp an id, park in the waiting store."""

    scope = TRADE

    async def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._limit = self.engine.config.server.max_body_bytes
        if self.request.method != "POST":
            return
        self.body_pending = True  # until post() runs: a refusal before then closes the connection
        await self.authorize()
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
        key = self._idempotency_key()
        if key is None:
            order = self._validate(body)
            await self._admit(order)
            self._accepted(order.order_id)
            return
        if self.caller is not None:  # each key has its own Idempotency-Keys: no one replays another's
            key = f"{self.caller.name}:{key}"
        await self._submit_once(key, body)

    def _idempotency_key(self) -> str | None:
        """The request's ``Idempotency-Key``, None without one; 400 for one that cannot be a key."""
        key = self.request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return None
        problem = key_problem(key)
        if problem is not None:
            raise ApiError(400, problem, IDEMPOTENCY_HEADER)
        return key

    def _validate(self, body: Any) -> Order:
        try:
            return validate_order(body, self.engine.rules)
        except OrderValidationError as exc:
            raise ApiError(400, str(exc), exc.field) from None

    async def _within_limits(self, order: Order) -> None:
        """429 with ``Retry-After`` when the client is over a limit (limits.intake says which)."""
        limits = self.engine.limits
        policy = policy_for(self.engine.config.limits, self.caller, peer_address(self.request))
        if limits is None or policy is None:
            return
        refusal = await self._redis(limits.admit(policy, order.order_id))
        if refusal is None:
            return
        self.engine.metrics.orders_limited.labels(limit=refusal.limit).inc()
        log.warning("POST refused by the %s limit for %s", refusal.limit, policy.client)
        raise ApiError(
            429, refusal.message, headers={"Retry-After": retry_after(refusal.retry_after_seconds)}
        )

    async def _admit(self, order: Order) -> None:
        await self._within_limits(order)
        try:
            await within(10, self.engine.desk.admit(order, self.caller))
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

    async def _submit_once(self, key: str, body: Any) -> None:
        """One order per key: a retry gets the order the key names, another body a 422."""
        keys = self.engine.idempotency
        if keys is None:
            raise ApiError(503, QUEUE_UNAVAILABLE)
        fingerprint = body_fingerprint(body)
        # A claim released by a failed admission is claimed again; thrice failing is a 503.
        for _ in range(3):
            earlier = await self._replay(keys, key, fingerprint)
            if earlier is not None:
                log.info("POST replayed orderId=%s for a repeated Idempotency-Key", earlier)
                self.set_header("Idempotent-Replayed", "true")
                self._accepted(earlier)
                return
            order = self._validate(body)
            if not await self._redis(keys.claim(key, fingerprint, order.order_id)):
                continue  # a concurrent request with this key won: answer with its order
            try:
                await self._admit(order)
            except BaseException:
                await self._redis(keys.release(key, fingerprint, order.order_id))
                raise
            await self._redis(keys.confirm(key, fingerprint, order.order_id))
            self._accepted(order.order_id)
            return
        raise ApiError(503, "the order for this Idempotency-Key could not be admitted; try again shortly")

    async def _replay(self, keys: IdempotencyKeys, key: str, fingerprint: str) -> str | None:
        try:
            return await within(SETTLE_TIMEOUT_S, keys.replay(key, fingerprint))
        except asyncio.TimeoutError:
            log.warning("POST: the request that claimed an Idempotency-Key has not settled")
            raise ApiError(
                503,
                "an earlier request with this Idempotency-Key is still being accepted; try again shortly",
                IDEMPOTENCY_HEADER,
            ) from None
        except (RedisError, OSError) as exc:
            log.error("POST: idempotency keys (Redis) unavailable: %s", exc)
            raise ApiError(503, QUEUE_UNAVAILABLE) from None
        except IdempotencyConflict as exc:
            raise ApiError(
                422,
                f"this Idempotency-Key was used with a different body (for order {exc.order_id}); "
                "send the same body to get that order, or use a new key for a new order",
                IDEMPOTENCY_HEADER,
            ) from None

    async def _redis(self, work: Awaitable[T], seconds: float = 10) -> T:
        try:
            return await within(seconds, work)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.error("POST: idempotency keys (Redis) unavailable: %s", exc)
            raise ApiError(503, QUEUE_UNAVAILABLE) from None

    def _accepted(self, order_id: str) -> None:
        ws_url = socket_url(self.request, order_id)
        self.write_json({"orderId": order_id, "status": "pending", "wsUrl": ws_url})


def socket_url(request: tornado.httputil.HTTPServerRequest, order_id: str) -> str:
    """The WebSocket that watches ``order_id``, on the host and scheme the client reached.

    The server runs with ``xheaders``, so behind a TLS proxy that sends
    ``X-Forwarded-Proto: https`` the protocol is https and the socket ``wss``.
    """
    scheme = "wss" if request.protocol == "https" else "ws"
    return f"{scheme}://{request.host}/ws?orderId={quote(order_id, safe='')}"


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
    """``GET /api/orders/{orderId}``: status and every event; ``DELETE``: cancel (the caller's own orders)."""

    scope = READ
    method_scopes: ClassVar[dict[str, str]] = {"DELETE": TRADE}  # cancelling is trading

    async def get(self, order_id: str) -> None:
        try:
            order = await self.engine.desk.lookup(order_id, self.caller)
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

    async def delete(self, order_id: str) -> None:
        """Cancel the order if it has not begun to execute: 200, else 409 with its status, or 404."""
        try:
            outcome, detail = await self.engine.desk.cancel(order_id, self.caller)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.error("DELETE order orderId=%s: Redis unavailable: %s", order_id, exc)
            raise ApiError(503, "order storage is unavailable; try again shortly") from None
        if outcome == "missing":
            raise ApiError(404, f"no order with id {order_id!r}{self.engine.desk.loss_note()}", "orderId")
        if outcome == "refused":
            self.write_json(
                {
                    "error": f"order {order_id} is {detail}: only a pending or waiting order, "
                    "not yet executing, can be cancelled",
                    "orderId": order_id,
                    "status": detail,
                },
                409,
            )
            return
        if outcome == "cancelled":
            self.engine.metrics.orders.labels(Status.CANCELLED.value).inc()
            log.info("order cancelled by its client orderId=%s", order_id)
        self.write_json({"orderId": order_id, "status": Status.CANCELLED.value})


class OrderListHandler(JsonHandler):
    """``GET /api/orders?status=&limit=&cursor=``: orders newest first, a page at a time."""

    scope = READ

    async def get(self) -> None:
        status = self.get_query_argument("status", None)
        if status is not None and status not in STATUS_VALUES:
            raise ApiError(
                400, f"status must be one of {', '.join(sorted(STATUS_VALUES))}, got {status!r}", "status"
            )
        raw_limit = self.get_query_argument("limit", str(DEFAULT_PAGE))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            raise ApiError(
                400, f"limit must be a whole number from 1 to {MAX_PAGE}, got {raw_limit!r}", "limit"
            )
        cursor = self.get_query_argument("cursor", None)
        try:
            orders, next_cursor = await self.engine.desk.list_orders(
                self.caller, status, int(raw_limit), cursor
            )
        except BadCursor as exc:
            raise ApiError(400, str(exc), "cursor") from None
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            log.error("GET orders: Redis unavailable: %s", exc)
            raise ApiError(503, "order storage is unavailable; try again shortly") from None
        self.write_json({"orders": orders, "nextCursor": next_cursor})


def peer_address(request: tornado.httputil.HTTPServerRequest) -> str | None:
    """The address of the connection itself, for per-address limits.

    Not ``request.remote_ip``: the server trusts ``X-Forwarded-For`` and
    ``X-Real-Ip`` for its logs (``xheaders``), and a client choosing its own
    address with a header would choose a fresh one for every order.
    """
    context = getattr(request.connection, "context", None)
    address = getattr(context, "_orig_remote_ip", None) or request.remote_ip
    return str(address) if address else None
