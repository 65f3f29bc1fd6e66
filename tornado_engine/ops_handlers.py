"""Endpoints for operators and their tools: Prometheus metrics."""

from __future__ import annotations

import tornado.web

from tornado_engine.engine import Engine

# The text format every Prometheus reads (what generate_latest writes for these metric names).
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class MetricsHandler(tornado.web.RequestHandler):
    """``GET /metrics``: this process's metrics in Prometheus text format."""

    def initialize(self, engine: Engine) -> None:
        self.engine = engine

    async def get(self) -> None:
        await self.engine.metrics.refresh()
        self.set_header("Content-Type", PROMETHEUS_TEXT)
        self.set_header("Cache-Control", "no-store")
        self.finish(self.engine.metrics.exposition())
