"""Endpoints for operators and their tools: health, Prometheus metrics, liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import RedisError

from tornado_engine.web.base import JsonHandler

# The text format every Prometheus reads (what generate_latest writes for these metric names).
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
READY_TIMEOUT_S = 2.0
HEALTH_TIMEOUT_S = 2.0


class HealthHandler(JsonHandler):
    """``GET /health``: 200 when Redis answers, 503 when it does not."""

    async def get(self) -> None:
        assert self.engine.redis is not None
        try:
            await asyncio.wait_for(self.engine.redis.ping(), HEALTH_TIMEOUT_S)
            redis_state = "ok"
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            redis_state = f"unreachable: {type(exc).__name__}"
        ok = redis_state == "ok"
        body: dict[str, Any] = {
            "status": "ok" if ok else "degraded",
            "redis": redis_state,
            "role": self.engine.role,
            "venues": sorted(self.engine.venues),
            "waitingOrders": await self.engine.desk.waiting_count() if ok else None,
            "redisData": self._data_set(),
        }
        if self.engine.worker is not None:
            body["ordersInFlight"] = self.engine.worker.in_flight
        report = self.engine.plugins.report()  # each plugin's and venue's state, and the last reload
        body["plugins"] = [{k: p[k] for k in ("name", "state", "errors")} for p in report["plugins"]]
        body["venueStates"] = [
            {k: v[k] for k in ("name", "plugin", "state", "error")} for v in report["venues"]
        ]
        body["lastReload"] = report["lastReload"]
        self.write_json(body, 200 if ok else 503)

    def _data_set(self) -> dict[str, Any]:
        """``intact``, or ``lost`` with the last loss this process found and how many it found."""
        watch = self.engine.data_set
        if watch is None or watch.last_loss is None:
            return {"state": "intact"}
        return {"state": "lost", "losses": len(watch.losses), "last": watch.last_loss.to_dict()}


class MetricsHandler(JsonHandler):
    """``GET /metrics``: this process's metrics in Prometheus text format (errors in JSON, as everywhere)."""

    async def get(self) -> None:
        text = await self.engine.scrape_metrics()
        self.set_header("Content-Type", PROMETHEUS_TEXT)
        self.set_header("Cache-Control", "no-store")
        self.finish(text)


class LiveHandler(JsonHandler):
    """``GET /health/live``: the process answers (its IOLoop is not stuck). Restart it when not."""

    def get(self) -> None:
        self.write_json({"status": "live", "role": self.engine.role})


class ReadyHandler(JsonHandler):
    """``GET /health/ready``: 200 when this process can do its job: Redis answers, the worker loop runs.

    Load balancers stop sending traffic on 503; nothing needs restarting.
    """

    async def get(self) -> None:
        checks: dict[str, str] = {"redis": "not connected"}
        if self.engine.redis is not None:
            try:
                await asyncio.wait_for(self.engine.redis.ping(), READY_TIMEOUT_S)
                checks["redis"] = "ok"
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                checks["redis"] = f"unreachable: {type(exc).__name__}"
        if self.engine.runs_worker:
            worker = self.engine.worker
            checks["worker"] = "running" if worker is not None and worker.running else "stopped"
        ready = checks["redis"] == "ok" and checks.get("worker", "running") == "running"
        self.write_json({"status": "ready" if ready else "not ready", **checks}, 200 if ready else 503)
