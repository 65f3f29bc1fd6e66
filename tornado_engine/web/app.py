"""The Application and its URL table: the whole HTTP surface in one place."""

from __future__ import annotations

from typing import Any

import tornado.web

from tornado_engine.engine import Engine
from tornado_engine.web.admin import PoolsHandler
from tornado_engine.web.base import NotFoundHandler
from tornado_engine.web.connections import Connections
from tornado_engine.web.openapi import OpenApiHandler
from tornado_engine.web.ops import HealthHandler, LiveHandler, MetricsHandler, ReadyHandler
from tornado_engine.web.orders import ExecuteOrderHandler, OrderHandler, OrderListHandler
from tornado_engine.web.page import (
    STATIC_DIR,
    ActivityHandler,
    PageFileHandler,
    VenuesHandler,
    follow_activity,
)
from tornado_engine.web.quote import QuoteHandler
from tornado_engine.web.socket import OrderSocketHandler


def make_app(
    engine: Engine, connections: Connections | None = None, **settings: Any
) -> tornado.web.Application:
    """The API of a started engine; ``connections`` holds its open order sockets (new if not given)."""
    desk = engine.desk
    if connections is None:
        connections = Connections(desk.updates)
    engine.metrics.count_sockets(connections)
    deps = {"engine": engine}
    socket = {
        "server": engine.config.server,
        "desk": desk,
        "connections": connections,
        "keyring": engine.keyring,
        "keys_required": engine.keys_required,
    }
    routes: list[tuple[str, Any, dict[str, Any]]] = [
        (r"/api/orders", OrderListHandler, deps),
        (r"/api/orders/execute", ExecuteOrderHandler, deps),
        (r"/api/quote", QuoteHandler, deps),
        (r"/api/orders/([^/]+)", OrderHandler, deps),
        (r"/ws", OrderSocketHandler, socket),
        (r"/health", HealthHandler, deps),
        (r"/health/live", LiveHandler, deps),
        (r"/health/ready", ReadyHandler, deps),
        (r"/metrics", MetricsHandler, deps),
        (r"/api/openapi.json", OpenApiHandler, deps),
        (r"/api/venues", VenuesHandler, deps),
        (r"/api/admin/pools", PoolsHandler, deps),
        (r"/api/activity", ActivityHandler, {**deps, "activity": follow_activity(desk.updates)}),
        (r"/()", PageFileHandler, {"path": STATIC_DIR, "default_filename": "index.html"}),
        (r"/static/(.+)", PageFileHandler, {"path": STATIC_DIR}),
    ]
    ping = engine.config.server.websocket_ping_interval
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=deps,
        websocket_ping_interval=ping or None,
        websocket_ping_timeout=ping or None,
        websocket_max_message_size=64 * 1024,
        **settings,
    )
