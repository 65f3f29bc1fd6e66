"""Noticing that Redis lost its data: a restart without persistence, a failover to a
replica that lacked our writes, a FLUSHALL, a snapshot restored from the past.

Redis does not say when it comes back empty: commands simply succeed on an
empty data set. So every engine process keeps a sentinel, the ``{prefix}:epoch``
hash: an ``id`` drawn by whichever process finds the hash missing, and a
``beat`` every process increments on each check. A process that sees another
``id`` than the one it knew, or a ``beat`` that went backwards, knows the data
set it wrote to is gone (in part or whole); the server's ``run_id`` (INFO)
says whether the server restarted meanwhile, which goes into the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tornado_engine.storage.keys import Keys
from tornado_engine.storage.replies import text

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 1.0

# KEYS: the epoch hash. ARGV: an id to use if the hash is missing.
# Returns {id, beat}: the data set's id and this check's beat.
_CHECK = """
local id = redis.call('HGET', KEYS[1], 'id')
if not id then
  id = ARGV[1]
  redis.call('HSET', KEYS[1], 'id', id)
end
return {id, redis.call('HINCRBY', KEYS[1], 'beat', 1)}
"""


@dataclass(frozen=True)
class DataLoss:
    """One detected loss: when, why, and the epochs before and after."""

    detected_at: float
    reason: str
    old_epoch: str
    new_epoch: str

    def to_dict(self) -> dict[str, str]:
        return {
            "detectedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.detected_at)),
            "reason": self.reason,
            "oldEpoch": self.old_epoch,
            "newEpoch": self.new_epoch,
        }


OnLoss = Callable[[DataLoss], None]


class DataSetWatch:
    """Checks the epoch sentinel every ``interval`` seconds and tells ``on_loss`` listeners.

    :meth:`check` may also be called at any time (a store write that found an
    order's record missing does so); checks never overlap.
    """

    def __init__(self, redis: aioredis.Redis, keys: Keys, interval: float = CHECK_INTERVAL_S) -> None:
        self.redis = redis
        self.keys = keys
        self.interval = interval
        self.epoch: str | None = None
        self.beat = 0
        self.run_id: str | None = None
        self.losses: list[DataLoss] = []
        self._listeners: list[OnLoss] = []
        self._check = redis.register_script(_CHECK)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    @property
    def last_loss(self) -> DataLoss | None:
        return self.losses[-1] if self.losses else None

    def on_loss(self, listener: OnLoss) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        """Join (or start) the data set's epoch, then check it in the background."""
        await self.check()
        log.info("Redis data set epoch %s (server run_id %s)", self.epoch, self.run_id)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="data-set-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def check(self) -> DataLoss | None:
        """One check; the loss it found, if any. Raises when Redis is unreachable."""
        async with self._lock:
            run_id = await self._run_id()
            raw_epoch, raw_beat = await self._check(keys=[self.keys.epoch], args=[uuid.uuid4().hex])
            epoch, beat = text(raw_epoch), int(raw_beat)
            old_epoch, old_beat, old_run_id = self.epoch, self.beat, self.run_id
            self.epoch, self.beat = epoch, beat
            if run_id is not None:
                self.run_id = run_id
            if old_epoch is None:
                return None
            restarted = old_run_id is not None and run_id is not None and run_id != old_run_id
            if epoch == old_epoch and beat > old_beat:
                if restarted:
                    log.warning("Redis restarted (run_id %s -> %s) and kept its data", old_run_id, run_id)
                return None
            loss = DataLoss(time.time(), _reason(epoch != old_epoch, restarted), old_epoch, epoch)
            self.losses.append(loss)
        log.critical(
            "REDIS DATA LOSS: %s. Orders recorded or queued before it may be gone; "
            "open sockets are closed with 4410; workers re-record the orders they hold "
            "(epoch %s -> %s, run_id %s -> %s)",
            loss.reason,
            loss.old_epoch,
            loss.new_epoch,
            old_run_id,
            run_id,
        )
        for listener in list(self._listeners):
            try:
                listener(loss)
            except Exception:
                log.exception("a data-loss listener failed")
        return loss

    async def _run_id(self) -> str | None:
        """The server's run_id, which changes on every restart; None where INFO is not allowed."""
        try:
            info = await self.redis.info("server")
        except RedisError as exc:
            if "unknown command" in str(exc).lower() or "no permissions" in str(exc).lower():
                return None
            raise
        run_id = info.get("run_id")
        return str(run_id) if run_id is not None else None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                # Unreachable: the outage is reported elsewhere; the next check after it tells.
                await asyncio.wait_for(self.check(), max(self.interval, 2.0))


def _reason(replaced: bool, restarted: bool) -> str:
    if replaced and restarted:
        return (
            "Redis came back without our data (restarted without persistence, "
            "or failed over to a replica that lacked our writes)"
        )
    if replaced:
        return "the data set was emptied while Redis kept running (FLUSHALL/FLUSHDB, or keys evicted)"
    if restarted:
        return "Redis restarted from an older snapshot: writes since it was taken are gone"
    return "the data set went back in time (an older snapshot or replica): recent writes are gone"
