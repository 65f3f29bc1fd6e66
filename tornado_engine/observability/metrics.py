"""Prometheus metrics for one engine: what ``GET /metrics`` serves.

Each engine owns an :class:`EngineMetrics` with its own
:class:`CollectorRegistry`, so several engines in one process (tests, an api
and a worker side by side) never share counters. Counts are per process:
Prometheus sums them across processes. The executor calls two small hooks
(:meth:`order_observer`, :meth:`observe_quotes`); the web layer hands over
its socket counts (:meth:`count_sockets`); everything read from Redis is read
at scrape time (:meth:`refresh`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from tornado_engine.orders.statuses import TERMINAL_VALUES, Status
from tornado_engine.waiting.base import WaitingStore

if TYPE_CHECKING:
    from tornado_engine.execution.quoting import QuoteOutcome

log = logging.getLogger(__name__)

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
QUOTE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5)


class SocketCounts(Protocol):
    """What the web layer counts: its open order sockets, and the updates none could take."""

    @property
    def open_sockets(self) -> int: ...

    @property
    def undelivered(self) -> int: ...


class _SocketCollector(Collector):
    """Counts the web layer already keeps, read when scraped."""

    def __init__(self, counts: SocketCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily(
            "tornado_engine_websockets_open",
            "Order WebSockets open in this process",
            value=self.counts.open_sockets,
        )
        yield CounterMetricFamily(
            "tornado_engine_undelivered_updates",
            "Order updates no open socket of this process could take (the client may fetch them later)",
            value=self.counts.undelivered,
        )


PLUGIN_STATES = ("loaded", "failed", "disabled")
VENUE_STATES = ("running", "unavailable", "disabled")


class _PluginCollector(Collector):
    """Each plugin's and venue's state and the last reload's result, read from the report when scraped.

    ``report`` returns what :meth:`PluginHost.report` does (states change on reload).
    """

    def __init__(self, report: Callable[[], dict[str, Any]]) -> None:
        self.report = report

    def collect(self) -> Iterator[Any]:
        report = self.report()
        plugins = GaugeMetricFamily(
            "tornado_engine_plugin_state",
            "1 for each plugin's current state (loaded, failed, disabled); see /health for the reason",
            labels=["plugin", "state"],
        )
        for plugin in report["plugins"]:
            for state in PLUGIN_STATES:
                plugins.add_metric([plugin["name"], state], 1 if plugin["state"] == state else 0)
        yield plugins
        venues = GaugeMetricFamily(
            "tornado_engine_venue_state",
            "1 for each configured venue's current state (running, unavailable, disabled)",
            labels=["venue", "plugin", "state"],
        )
        for venue in report["venues"]:
            for state in VENUE_STATES:
                venues.add_metric(
                    [venue["name"], venue["plugin"] or "", state], 1 if venue["state"] == state else 0
                )
        yield venues
        reload = report.get("lastReload")
        if reload is not None:
            yield GaugeMetricFamily(
                "tornado_engine_last_reload_ok",
                "1 when the last reload of venues.yaml was applied, 0 when it was refused",
                value=1 if reload["ok"] else 0,
            )
            yield GaugeMetricFamily(
                "tornado_engine_last_reload_timestamp_seconds",
                "When venues.yaml was last reloaded (epoch seconds)",
                value=reload["at"],
            )


class EngineMetrics:
    def __init__(self) -> None:
        self._sockets: _SocketCollector | None = None
        self._plugins: _PluginCollector | None = None
        self.registry = CollectorRegistry()
        r = self.registry
        self.orders = Counter(
            "tornado_engine_orders",
            "Orders that reached a terminal status in this process",
            ["status"],
            registry=r,
        )
        self.orders_limited = Counter(
            "tornado_engine_orders_limited",
            "Orders refused with 429 by a per-client limit (rate, in_flight, waiting)",
            ["limit"],
            registry=r,
        )
        self.redis_data_losses = Counter(
            "tornado_engine_redis_data_losses",
            "Times this process found Redis had lost its data (restart without persistence, "
            "failover to an empty replica, FLUSHALL, an older snapshot): alert on any increase",
            registry=r,
        )
        self.stage_seconds = Histogram(
            "tornado_engine_stage_seconds",
            "Time an order took to reach a status from its previous event (from dequeue for the first)",
            ["status"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.quote_seconds = Histogram(
            "tornado_engine_venue_quote_seconds",
            "Time a venue took to answer a quote request (or to time out)",
            ["venue"],
            buckets=QUOTE_BUCKETS,
            registry=r,
        )
        self.quote_errors = Counter(
            "tornado_engine_venue_quote_errors",
            "Quote requests a venue failed or timed out",
            ["venue"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "tornado_engine_queue_depth", "Orders in the Redis queue, waiting or being executed", registry=r
        )
        self.queue_oldest = Gauge(
            "tornado_engine_queue_oldest_age_seconds",
            "Age of the oldest order in the Redis queue",
            registry=r,
        )
        self.waiting = Gauge(
            "tornado_engine_waiting_orders",
            "Orders waiting for their client to open the WebSocket",
            registry=r,
        )
        self.loop_stalls = Counter(
            "tornado_engine_loop_stalls",
            "Times the IOLoop was held past worker.loop_stall_threshold_ms, by the venue and plugin that "
            'held it (venue "" when outside any venue call)',
            ["venue", "plugin"],
            registry=r,
        )
        self.loop_stall_seconds = Counter(
            "tornado_engine_loop_stall_seconds",
            "Seconds the IOLoop was held in those stalls",
            ["venue", "plugin"],
            registry=r,
        )
        self.venue_calls_abandoned = Counter(
            "tornado_engine_venue_calls_abandoned",
            "Venue calls that ignored their cancellation and were abandoned (a plugin bug)",
            ["venue", "plugin", "stage"],
            registry=r,
        )
        for status in sorted(TERMINAL_VALUES):
            self.orders.labels(status)  # every terminal status shows, at 0 until it happens

    def order_observer(self) -> Callable[[Status], None]:
        """A callback for one order's execution: times each event since the previous one."""
        last = time.monotonic()

        def observe(status: Status) -> None:
            nonlocal last
            now = time.monotonic()
            value = getattr(status, "value", status)
            self.stage_seconds.labels(value).observe(now - last)
            last = now
            if value in TERMINAL_VALUES:
                self.orders.labels(value).inc()

        return observe

    def observe_quotes(self, outcomes: Iterable[QuoteOutcome]) -> None:
        for outcome in outcomes:
            self.quote_seconds.labels(outcome.venue).observe(outcome.seconds)
            if outcome.quote is None:
                self.quote_errors.labels(outcome.venue).inc()

    def observe_stall(self, venue: str | None, plugin: str | None, seconds: float) -> None:
        """The loop watchdog's hook: one stall, by a venue call or (venue None) by other code."""
        self.loop_stalls.labels(venue or "", plugin or "").inc()
        self.loop_stall_seconds.labels(venue or "", plugin or "").inc(seconds)

    def observe_abandoned(self, venue: str, plugin: str | None, stage: str) -> None:
        """The loop watchdog's hook: a venue call ignored its cancellation and was left behind."""
        self.venue_calls_abandoned.labels(venue, plugin or "", stage).inc()

    def watch_plugins(self, report: Callable[[], dict[str, Any]]) -> None:
        """Expose plugin and venue states from ``report`` (the plugin host's), read at scrape time."""
        if self._plugins is not None:
            self.registry.unregister(self._plugins)
        self._plugins = _PluginCollector(report)
        self.registry.register(self._plugins)

    def count_sockets(self, counts: SocketCounts) -> None:
        """Expose the socket counts of the Application being built (one at a time)."""
        if self._sockets is not None:
            self.registry.unregister(self._sockets)
        self._sockets = _SocketCollector(counts)
        self.registry.register(self._sockets)

    async def refresh(self, redis: aioredis.Redis, queue_name: str, waiting: WaitingStore | None) -> None:
        """Read the queue (one Redis round trip) and, on an API process, the waiting store."""
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.xlen(queue_name)
                pipe.xrange(queue_name, count=1)
                pipe.time()
                depth, oldest, (seconds, micros) = await pipe.execute()
            self.queue_depth.set(depth)
            if oldest:
                entry_id = oldest[0][0]
                entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                age = seconds + micros / 1e6 - int(entry_id.split("-")[0]) / 1000
                self.queue_oldest.set(max(0.0, age))
            else:
                self.queue_oldest.set(0)
            if waiting is not None:
                self.waiting.set(await waiting.count())
        except RedisError as exc:
            log.warning("metrics: could not read the queue from Redis: %s", exc)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
