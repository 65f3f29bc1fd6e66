"""The engine: the composition root, where config, venues, Redis and the two halves are wired.

``role`` picks the halves: ``api`` serves HTTP and WebSockets, ``worker``
executes orders, ``all`` does both in one process. The halves share nothing
but Redis, whichever process they run in. The API half's operations on
orders live on the :class:`OrderDesk` built here; the web layer
(``tornado_engine.web.app.make_app``) builds its Application from a started
engine, and this module does not know it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any

import pluggy
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tornado_engine.auth import KeyRing
from tornado_engine.config import EngineConfig
from tornado_engine.desk import OrderDesk
from tornado_engine.execution.executor import OrderExecutor
from tornado_engine.execution.worker import Worker
from tornado_engine.limits import IntakeLimits
from tornado_engine.observability.metrics import EngineMetrics
from tornado_engine.orders.frames import order_frame
from tornado_engine.orders.order import Order, OrderRules
from tornado_engine.orders.statuses import Status
from tornado_engine.storage.batching import CommandBatcher
from tornado_engine.storage.connection import EmbeddedRedis, connect
from tornado_engine.storage.epoch import DataLoss, DataSetWatch
from tornado_engine.storage.idempotency import IdempotencyKeys
from tornado_engine.storage.keys import Keys
from tornado_engine.storage.order_index import OrderIndex
from tornado_engine.storage.queue import OrderQueue
from tornado_engine.storage.store import OrderStore
from tornado_engine.storage.updates import UpdateHub
from tornado_engine.venues.api import Venue
from tornado_engine.venues.host import PluginHost
from tornado_engine.venues.watchdog import LoopWatchdog
from tornado_engine.waiting.base import WaitingStore
from tornado_engine.waiting.in_memory import MemoryWaitingStore
from tornado_engine.waiting.in_redis import RedisWaitingStore

log = logging.getLogger(__name__)

ROLES = ("all", "api", "worker")
SHUTDOWN_EXPIRY = (
    "the API process that accepted this order stopped before its client connected; "
    "the order was not executed: submit it again"
)


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        redis_url: str | None = None,
        role: str = "all",
        plugins: Iterable[object] = (),
        pm: pluggy.PluginManager | None = None,
        require_keys: bool = False,
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        self.config = config
        self.role = role
        self.redis_url = redis_url or config.redis.url
        # Fixed for the life of the process: a reload of engine.yaml must not switch keys off.
        self.keys_required = require_keys or config.auth.required
        self.keys = Keys(config.redis.key_prefix)
        self.plugins = PluginHost(extra_plugins=plugins, disabled=config.plugins.disabled, pm=pm)
        self.pm = self.plugins.pm
        self.venues: Mapping[str, Venue] = self.plugins.build_venues(config)
        self.rules = self._rules()
        self.embedded: EmbeddedRedis | None = None
        self.redis: aioredis.Redis | None = None
        self.blocking_redis: aioredis.Redis | None = None
        self.store: OrderStore | None = None
        self.queue: OrderQueue | None = None
        self.hub: UpdateHub | None = None
        self.waiting: WaitingStore | None = None
        self.idempotency: IdempotencyKeys | None = None
        self.keyring: KeyRing | None = None
        self.limits: IntakeLimits | None = None
        self._desk: OrderDesk | None = None
        self.data_set: DataSetWatch | None = None
        self._background: set[asyncio.Task] = set()
        self.worker: Worker | None = None
        self.metrics = EngineMetrics()
        self.metrics.watch_plugins(self.plugins.report)
        self.watchdog = LoopWatchdog(
            config.worker.loop_stall_threshold_ms / 1000,
            plugin_of=self.plugins.plugin_of,
            on_stall=self.metrics.observe_stall,
            on_abandon=self.metrics.observe_abandoned,
        )
        self.executor = OrderExecutor(
            lambda: self.venues,
            config.worker,
            settings=config,
            observe_quotes=self.metrics.observe_quotes,
            watchdog=self.watchdog,
        )

    def switch_venues(self, config: EngineConfig, venues: Mapping[str, Venue]) -> None:
        """Switch to venues built from a reloaded venues.yaml; orders already routed keep theirs."""
        self.config = config
        self.venues = venues
        self.rules = self._rules()

    def _rules(self) -> OrderRules:
        venues = self.venues.values()
        return OrderRules(
            max_amount=self.config.orders.max_amount,
            tokens=frozenset(t for v in venues for t in v.tokens),
            pairs=frozenset((a, b) for v in venues for a in v.tokens for b in v.tokens if a != b),
            decimals=self.config.venues.decimals,
            default_slippage_bps=self.config.orders.default_slippage_bps,
            max_slippage_bps=self.config.orders.max_slippage_bps,
            max_wait_seconds=self.config.orders.max_wait_seconds,
        )

    @property
    def serves_api(self) -> bool:
        return self.role in ("all", "api")

    @property
    def runs_worker(self) -> bool:
        return self.role in ("all", "worker")

    @property
    def desk(self) -> OrderDesk:
        """The API half's operations on orders: admit, watch, lookup."""
        if self._desk is None:
            raise RuntimeError(
                f"no order desk: the engine is not started, or its role ({self.role}) has no API"
            )
        return self._desk

    async def start(self) -> None:
        """Connect to Redis and start the background tasks of this role."""
        if self.redis_url is None:
            self.embedded = EmbeddedRedis()
            self.redis_url = self.embedded.url
        self.watchdog.start()
        self.redis = connect(self.redis_url, max_connections=self.config.redis.max_connections)
        self.blocking_redis = connect(self.redis_url, blocking=True, max_connections=16)
        batcher = CommandBatcher(self.redis)
        self.store = OrderStore(
            self.redis,
            self.keys,
            self.config.orders.retention_seconds,
            batcher,
            on_record_missing=self._check_data_set_soon,
        )
        self.queue = OrderQueue(self.redis, self.blocking_redis, self.keys, batcher)
        self.data_set = DataSetWatch(self.redis, self.keys)
        self.data_set.on_loss(self._on_data_loss)
        await self.data_set.start()
        if self.serves_api:
            self.waiting = self._waiting_store(self.redis, self.store)
            self.hub = UpdateHub(self.blocking_redis, self.keys)
            await asyncio.wait_for(self.hub.start(), 15)
            self.waiting.start()
            self.idempotency = IdempotencyKeys(
                self.redis, self.keys, self.config.orders.idempotency_window_seconds
            )
            self.keyring = KeyRing(self.redis, self.keys, self.config.auth.cache_seconds)
            index = OrderIndex(self.redis, self.keys, self.config.orders.retention_seconds)
            self._desk = OrderDesk(self.waiting, self.store, self.queue, self.hub, self.data_set, index)
            orders = self.config.orders
            self.limits = IntakeLimits(
                self.redis,
                self.keys,
                in_flight=self._desk.is_in_flight,
                waiting=self._desk.is_waiting,
                in_flight_lifetime_s=orders.waiting_ttl_seconds + orders.max_wait_seconds,
                waiting_lifetime_s=orders.waiting_ttl_seconds,
            )
        if self.runs_worker:
            self.worker = Worker(
                self.queue,
                self.store,
                self.executor,
                self.config.worker,
                observe_order=self.metrics.order_observer,
            )
            self.worker.start()
            await asyncio.wait_for(self.worker.ready.wait(), 15)

    async def stop(self, grace_seconds: float = 5.0) -> None:
        if self.data_set is not None:
            await self.data_set.stop()
        if self.worker is not None:
            await self.worker.stop(grace_seconds)
        if self.hub is not None:
            await self.hub.stop()
        if self.waiting is not None:
            await self.waiting.stop()
        for client in (self.redis, self.blocking_redis):
            if client is not None:
                await client.aclose()
        if self.embedded is not None:
            self.embedded.close()
        await self.watchdog.stop()

    async def scrape_metrics(self) -> bytes:
        """What ``GET /metrics`` serves: the counters kept so far, and the backlog read now."""
        if self.redis is not None and self.queue is not None:
            await self.metrics.refresh(self.redis, self.queue.name, self.waiting)
        return self.metrics.exposition()

    def _on_data_loss(self, loss: DataLoss) -> None:
        """Redis lost its data: count it, write again the orders this worker holds, tell the sockets."""
        self.metrics.redis_data_losses.inc()
        self._in_background(self._recover(), "data-loss-recovery")

    async def _recover(self) -> None:
        if self.worker is not None and self.store is not None:
            try:
                await self.store.restore_held()
            except (RedisError, OSError) as exc:
                log.error("could not write held orders again after the data loss: %s", exc)
        if self.hub is not None:
            self.hub.data_lost()

    def _check_data_set_soon(self, order_id: str) -> None:
        """A write found an order's record missing: check the data set now, not in a second."""
        if self.data_set is not None and not any(t.get_name() == "data-set-check" for t in self._background):
            self._in_background(self._check_quietly(), "data-set-check")

    async def _check_quietly(self) -> None:
        assert self.data_set is not None
        with contextlib.suppress(RedisError, OSError):
            await self.data_set.check()

    def _in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def waiting_store_kind(self) -> str:
        """``orders.waiting_store``, with ``auto`` resolved: ``redis`` when Redis is external
        (a stopped API process then loses no waiting order), ``memory`` with the embedded one."""
        kind = self.config.orders.waiting_store
        if kind == "auto":
            return "memory" if self.embedded is not None else "redis"
        return kind

    def _waiting_store(self, redis: aioredis.Redis, store: OrderStore) -> WaitingStore:
        """The backend ``orders.waiting_store`` names: this process's memory, or the shared Redis."""
        orders = self.config.orders
        kind = self.waiting_store_kind()
        log.info("orders wait for their client in %s (orders.waiting_store: %s)", kind, orders.waiting_store)
        if kind == "redis":
            return RedisWaitingStore(
                redis,
                self.keys,
                orders.waiting_ttl_seconds,
                expired_frame=self._expired_frame,
                retention_seconds=orders.retention_seconds,
            )

        async def record_expired(order: Order) -> None:
            self.metrics.orders.labels(Status.EXPIRED.value).inc()
            await store.create(order, self._expired_frame(order.order_id), queue=None)

        async def record_unserved(waiting: list[Order]) -> None:
            """This process stops: its waiting orders end ``expired``, readable from any process."""
            frames = [self._expired_frame(o.order_id, SHUTDOWN_EXPIRY) for o in waiting]
            await asyncio.gather(
                *(store.create(o, f, queue=None) for o, f in zip(waiting, frames, strict=True))
            )
            self.metrics.orders.labels(Status.EXPIRED.value).inc(len(waiting))
            log.warning(
                "stopping: %d orders still waiting for their client recorded as expired (not executed)",
                len(waiting),
            )

        return MemoryWaitingStore(
            orders.waiting_ttl_seconds, on_expired=record_expired, on_shutdown=record_unserved
        )

    def _expired_frame(self, order_id: str, error: str | None = None) -> dict:
        return order_frame(
            order_id,
            Status.EXPIRED,
            1,
            error=error
            or f"no client connected within {self.config.orders.waiting_ttl_seconds:g}s; "
            "the order was not executed",
        )
