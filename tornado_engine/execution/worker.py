"""The queue worker: tasks on the IOLoop that take orders from Redis and execute them.

Up to ``concurrency`` orders run at once. The worker reads only as many
entries as it has free slots, keeps the entries it holds alive with a
heartbeat, and takes over entries a dead worker left behind once they have
been idle for the visibility timeout. A Redis outage is waited out with
backoff; it never crashes the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable

from redis.exceptions import RedisError, ResponseError

from tornado_engine.config import WorkerConfig
from tornado_engine.execution.executor import Emitter, OrderExecutor, OwnershipLost
from tornado_engine.orders.order import Order
from tornado_engine.orders.statuses import TERMINAL_VALUES, Status
from tornado_engine.storage.queue import OrderQueue, QueueEntry
from tornado_engine.storage.store import OrderStore

log = logging.getLogger(__name__)

BLOCK_MS = 1000


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """``observe_order`` (metrics) makes one callback per order it takes, told of each of its events."""

    def __init__(
        self,
        queue: OrderQueue,
        store: OrderStore,
        executor: OrderExecutor,
        config: WorkerConfig,
        name: str | None = None,
        observe_order: Callable[[], Callable[[Status], None]] | None = None,
    ) -> None:
        self.queue = queue
        self.store = store
        self.executor = executor
        self.config = config
        self.name = name or consumer_name()
        self.observe_order = observe_order
        self._running: dict[str, asyncio.Task] = {}
        self._parked = 0  # running orders idling between checks (limit, sniper): no slot held
        self._slot_freed = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task] = []
        self.ready = asyncio.Event()

    @property
    def running(self) -> bool:
        """Its read and maintenance loops are alive (``/health/ready``)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    @property
    def free_slots(self) -> int:
        return self.config.concurrency - (len(self._running) - self._parked)

    async def park(self, seconds: float) -> None:
        """Idle a waiting order without holding one of the ``concurrency`` slots.

        A limit order may wait for an hour; it must not starve market orders.
        It stays this worker's (heartbeat, takeover on death) while parked.
        """
        self._parked += 1
        self._slot_freed.set()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._parked -= 1

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_loop(), name="worker-read"),
            loop.create_task(self._maintenance_loop(), name="worker-maintenance"),
        ]

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop reading; let running orders finish up to ``grace_seconds``.

        Orders still running after the grace period are cancelled without
        acknowledgement, so another worker takes them over.
        """
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        running = dict(self._running)
        if running:
            log.info("worker %s: waiting up to %gs for %d orders", self.name, grace_seconds, len(running))
            _, pending = await asyncio.wait(running.values(), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            unfinished = [entry_id for entry_id, task in running.items() if task in pending]
            if unfinished:
                await self._hand_back(unfinished)
        with contextlib.suppress(RedisError, OSError):  # holding entries: it stays until they are taken over
            await self.queue.leave(self.name)

    async def _hand_back(self, entry_ids: list[str]) -> None:
        """Make unfinished entries claimable at once instead of after the visibility timeout."""
        try:
            await self.queue.hand_back(self.name, entry_ids, self.config.visibility_timeout_seconds)
            log.info("worker %s handed back %d unfinished orders", self.name, len(entry_ids))
        except (RedisError, OSError) as exc:
            log.error("worker %s could not hand back orders (%s); they are taken over later", self.name, exc)

    async def _read_loop(self) -> None:
        delay = 0.1
        while not self._stopping:
            try:
                await self.queue.ensure_group()
                self.ready.set()
                log.info("worker %s ready (concurrency %d)", self.name, self.config.concurrency)
                delay = 0.1
                while not self._stopping:
                    free = self.free_slots
                    if free <= 0:
                        self._slot_freed.clear()
                        await self._slot_freed.wait()
                        continue
                    entries = await asyncio.wait_for(
                        self.queue.read(self.name, free, BLOCK_MS), BLOCK_MS / 1000 + 5
                    )
                    for entry in entries:
                        self._spawn(entry)
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                log.error("worker %s: Redis unavailable (%s); retrying in %.1fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _maintenance_loop(self) -> None:
        """Heartbeat the entries we hold; claim the ones dead workers left behind."""
        interval = max(0.05, self.config.visibility_timeout_seconds / 3)
        idle_ms = int(self.config.visibility_timeout_seconds * 1000)
        await self.ready.wait()
        while not self._stopping:
            try:
                await self.queue.touch(self.name, list(self._running))
                free = self.free_slots
                if free > 0:
                    for entry in await self.queue.claim_stale(self.name, idle_ms, free):
                        if entry.entry_id not in self._running:
                            log.warning(
                                "worker %s took over orderId=%s (idle over %gs)",
                                self.name,
                                entry.order_id,
                                self.config.visibility_timeout_seconds,
                            )
                            self._spawn(entry)
                for name in await self.queue.remove_departed(idle_ms, keep=self.name):
                    log.info("worker %s removed departed consumer %s from the group", self.name, name)
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    # Redis lost its data (restarted without persistence): recreate the group.
                    log.error("worker %s: the queue's consumer group is gone; recreating it", self.name)
                    await self._ensure_group_quietly()
                else:
                    log.error("worker %s: maintenance failed: %s", self.name, exc)
            except (RedisError, OSError) as exc:
                log.error("worker %s: maintenance skipped, Redis unavailable (%s)", self.name, exc)
            await asyncio.sleep(interval)

    async def _ensure_group_quietly(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.queue.ensure_group()

    def _spawn(self, entry: QueueEntry) -> None:
        task = asyncio.get_running_loop().create_task(self._process(entry), name=f"order-{entry.order_id}")
        self._running[entry.entry_id] = task

        def done(_: asyncio.Task) -> None:
            self._running.pop(entry.entry_id, None)
            self._slot_freed.set()

        task.add_done_callback(done)

    async def _process(self, entry: QueueEntry) -> None:
        order_id = entry.order_id
        try:
            if entry.fresh and entry.order:
                # First delivery: the hand-off just recorded it at seq 1 (no round trip).
                state: dict[str, str] | None = {
                    "status": "pending",
                    "seq": "1",
                    "attempt": "0",
                    "order": entry.order,
                }
            else:
                # A takeover (or a redelivery): bump the order's lease, fencing out its previous owner.
                state = await self.store.take(order_id, self.name)
            if state is None or "order" not in state:
                # None, or a hash without its order: Redis lost the record (see storage.epoch).
                log.error("queue entry %s names unknown orderId=%s; dropping it", entry.entry_id, order_id)
                await self.queue.ack(entry.entry_id)
                return
            if state.get("status") in TERMINAL_VALUES:
                await self.queue.ack(entry.entry_id)
                return
            lease = int(state.get("lease") or 0)
            log.info("worker %s executing orderId=%s (lease %d)", self.name, order_id, lease)
            order = Order.from_dict(json.loads(state["order"]))
            self.store.hold(order_id, state)  # to write its record again if Redis loses it
            observer = self.observe_order() if self.observe_order is not None else None
            emitter = Emitter(self.store, order_id, int(state["seq"]), observer, lease)
            try:
                status = await self.executor.execute(order, emitter, state, park=self.park)
            except OwnershipLost as exc:
                log.warning("worker %s gave up orderId=%s: %s", self.name, order_id, exc)
                return
            except (RedisError, OSError):
                raise
            except Exception as exc:
                log.exception("orderId=%s: unexpected error in the pipeline", order_id)
                await emitter.emit(Status.FAILED, error=f"internal error: {type(exc).__name__}")
                status = Status.FAILED
            await self.queue.ack(entry.entry_id)
            log.info("orderId=%s finished: %s", order_id, status)
        except (RedisError, OSError) as exc:
            # Left unacknowledged: after the visibility timeout a worker takes it over.
            log.error("orderId=%s: Redis error (%s); the order will be taken over", order_id, exc)
        except asyncio.CancelledError:
            log.warning("orderId=%s: worker stopping; the order will be taken over", order_id)
            raise
        finally:
            self.store.release(order_id)
