"""The ceiling: a bare Tornado app serving the same contract with no Redis and no venues.

``POST /api/orders/execute`` returns an id; ``GET /ws?orderId=`` sends the
five frames a successful engine order produces (pending, routing, building,
submitted, confirmed), of about the same size and shape, stamping ``ts`` as it
sends each one, then closes normally. Frames are sent one per IOLoop turn, as
the engine's arrive one per pub/sub message. Whatever the engine does beyond
this is its cost.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import json
import logging
import sys
import uuid
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

try:
    import orjson

    def dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

except ImportError:  # pragma: no cover - depends on the environment

    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))


def utc_now_iso() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def frames(order_id: str) -> list[dict[str, Any]]:
    """The engine's five frames for a confirmed SOL->USDC order, without ``ts``."""
    quotes = [
        {"venue": "raydium", "price": 151.2345678, "fee": 0.003, "amountOut": 226.1234567},
        {"venue": "meteora", "price": 149.8765432, "fee": 0.002, "amountOut": 224.3456789},
    ]
    tx = hashlib.sha256(order_id.encode()).hexdigest()[:44]
    return [
        {
            "orderId": order_id,
            "status": "pending",
            "seq": 1,
            "message": "Starting execution: order received; execution starting soon",
        },
        {
            "orderId": order_id,
            "status": "routing",
            "seq": 2,
            "bestDex": "raydium",
            "bestPrice": 151.2345678,
            "quotes": quotes,
            "attempt": 1,
        },
        {"orderId": order_id, "status": "building", "seq": 3, "dex": "raydium"},
        {"orderId": order_id, "status": "submitted", "seq": 4, "dex": "raydium"},
        {
            "orderId": order_id,
            "status": "confirmed",
            "seq": 5,
            "dex": "raydium",
            "txHash": tx,
            "executionPrice": 151.3456789,
            "amountOut": 226.2345678,
        },
    ]


class ExecuteHandler(tornado.web.RequestHandler):
    def initialize(self, waiting: dict[str, dict[str, Any]]) -> None:
        self.waiting = waiting

    def post(self) -> None:
        body = json.loads(self.request.body)
        order_id = str(uuid.uuid4())
        self.waiting[order_id] = body
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps({"orderId": order_id, "status": "pending"}))


class SocketHandler(tornado.websocket.WebSocketHandler):
    def initialize(self, waiting: dict[str, dict[str, Any]]) -> None:
        self.waiting = waiting

    async def open(self) -> None:
        self.set_nodelay(True)  # as the engine does: small frames, sent at once
        order_id = self.get_query_argument("orderId", "")
        if self.waiting.pop(order_id, None) is None:
            self.close(4404, "unknown orderId")
            return
        for frame in frames(order_id):
            frame["ts"] = utc_now_iso()
            self.write_message(dumps(frame))
            await asyncio.sleep(0)  # one frame per loop turn, as pub/sub delivers them
        self.close(1000, "order finished")


def make_app() -> tornado.web.Application:
    waiting: dict[str, dict[str, Any]] = {}
    deps = {"waiting": waiting}
    return tornado.web.Application(
        [(r"/api/orders/execute", ExecuteHandler, deps), (r"/ws", SocketHandler, deps)],
        websocket_ping_interval=20,
    )


async def serve(port: int, loop_name: str) -> None:
    server = tornado.httpserver.HTTPServer(make_app())
    sockets = tornado.netutil.bind_sockets(port, "127.0.0.1")
    server.add_sockets(sockets)
    print(
        f"listening on port {sockets[0].getsockname()[1]} (bare tornado, {loop_name})",
        file=sys.stderr,
        flush=True,
    )
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    loop_name = "asyncio"
    try:
        import uvloop  # the engine may run on uvloop; the ceiling should too

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        pass
    asyncio.run(serve(args.port, loop_name))


if __name__ == "__main__":
    main()
