"""The HTTP and WebSocket calls of the contract (docs/contract.rst), as coroutines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from tornado_engine.client.frames import Frame

RECONNECT_DELAYS_S = (0.25, 0.5, 1.0, 2.0, 4.0, 5.0)  # then 5 s each, until ``give_up_after_s``
UNRECOVERABLE_CLOSES = {4404: "no such order", 4410: "Redis lost its data; the order's fate is unknown"}


class EngineError(Exception):
    """The engine refused a request (``status`` is the HTTP code; 0: it could not be reached)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Submitted:
    order_id: str
    ws_url: str
    replayed: bool  # the engine answered an earlier request with this Idempotency-Key


class EngineClient:
    """One engine at ``base_url`` (``http://host:3000``), optionally with an API key."""

    def __init__(self, base_url: str, key: str | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout_s = timeout_s

    async def submit(
        self,
        from_token: str,
        to_token: str,
        amount: float | str,
        order_type: str = "market",
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Submitted:
        """POST an order (``fields`` in the contract's names: ``slippageBps``, ``limitPrice``...)."""
        body = {
            "fromToken": from_token,
            "toToken": to_token,
            "amount": amount,
            "orderType": order_type,
            **fields,
        }
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        reply, response_headers = await self._call("POST", "/api/orders/execute", body, headers)
        replayed = response_headers.get("Idempotent-Replayed") == "true"
        return Submitted(reply["orderId"], reply.get("wsUrl", ""), replayed)

    async def order(self, order_id: str) -> dict[str, Any]:
        """The order's status and every event so far."""
        return (await self._call("GET", f"/api/orders/{quote(order_id, safe='')}"))[0]

    async def quote(
        self, from_token: str, to_token: str, amount: float | str, slippage_bps: int | None = None
    ) -> dict[str, Any]:
        """The route the engine would take now (the routing frame's fields); nothing executes."""
        query = {"fromToken": from_token, "toToken": to_token, "amount": str(amount)}
        if slippage_bps is not None:
            query["slippageBps"] = str(slippage_bps)
        return (await self._call("GET", f"/api/quote?{urlencode(query)}"))[0]

    async def cancel(self, order_id: str) -> str:
        """Cancel an order not yet executing; its status after ("cancelled"), or EngineError 409."""
        reply, _ = await self._call("DELETE", f"/api/orders/{quote(order_id, safe='')}")
        return str(reply["status"])

    async def list_orders(
        self, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of orders, newest first, and the cursor of the next (None at the end)."""
        query: dict[str, str] = {"limit": str(limit)}
        if status is not None:
            query["status"] = status
        if cursor is not None:
            query["cursor"] = cursor
        reply, _ = await self._call("GET", f"/api/orders?{urlencode(query)}")
        return list(reply["orders"]), reply.get("nextCursor")

    async def watch(
        self, order_id: str, last_seq: int = 0, give_up_after_s: float = 60.0
    ) -> AsyncIterator[Frame]:
        """Every frame after ``last_seq``, in order, until the terminal one.

        A dropped socket is opened again with ``lastSeq``: the engine then
        sends only what was missed. Raises :class:`EngineError` for an unknown
        order, when the first connection fails, or when the engine stays
        unreachable for ``give_up_after_s`` after a drop.
        """
        failures = 0
        connected = False
        loop = asyncio.get_running_loop()
        down_since: float | None = None
        while True:
            try:
                conn = await self._connect(order_id, last_seq)
            except (OSError, HTTPClientError, WebSocketClosedError) as exc:
                if not connected:  # never reached it: there is nothing to reconnect to
                    raise EngineError(0, f"the engine at {self.base_url} did not answer: {exc}") from None
                conn, reason = None, str(exc)
            connected = True
            if conn is not None:
                async for frame in _frames(conn):
                    if frame.seq is None:  # the socket could not be served; its close says why
                        continue
                    failures, down_since = 0, None
                    last_seq = frame.seq
                    yield frame
                    if frame.terminal:
                        conn.close()
                        return
                code = conn.close_code
                if code in UNRECOVERABLE_CLOSES:
                    raise EngineError(
                        404 if code == 4404 else 410, f"{UNRECOVERABLE_CLOSES[code]} ({order_id})"
                    )
                reason = f"closed {code} {conn.close_reason or ''}".strip()
            now = loop.time()
            down_since = now if down_since is None else down_since
            if now - down_since > give_up_after_s:
                raise EngineError(0, f"lost the order's stream and could not reconnect: {reason}")
            await asyncio.sleep(RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)])
            failures += 1

    async def _connect(self, order_id: str, last_seq: int) -> WebSocketClientConnection:
        query = {"orderId": order_id} | ({"lastSeq": str(last_seq)} if last_seq else {})
        url = "ws" + self.base_url[len("http") :] + "/ws?" + urlencode(query)
        return await websocket_connect(HTTPRequest(url, headers=self._auth(), connect_timeout=self.timeout_s))

    async def _call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        request = HTTPRequest(
            self.base_url + path,
            method=method,
            body=json.dumps(body) if body is not None else None,
            headers={**self._auth(), **(headers or {})},
            request_timeout=self.timeout_s,
        )
        try:
            # Tornado keeps one AsyncHTTPClient per event loop: ask for it on the running one.
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as exc:
            raise EngineError(0, f"the engine at {self.base_url} did not answer: {exc}") from None
        try:
            reply = json.loads(response.body) if response.body else {}
        except ValueError:
            reply = {}
        if response.code == 599:
            raise EngineError(0, f"the engine at {self.base_url} did not answer: {response.error}")
        if response.code >= 400:
            message = reply.get("error") if isinstance(reply, dict) else None
            raise EngineError(response.code, message or f"HTTP {response.code}", reply.get("field"))
        return reply, dict(response.headers)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


async def _frames(conn: WebSocketClientConnection) -> AsyncIterator[Frame]:
    while (message := await conn.read_message()) is not None:
        if isinstance(message, str):
            yield Frame.from_json(message)
