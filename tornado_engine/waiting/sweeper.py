"""The expiry sweeper both waiting stores run: their ``sweep`` on a timer, on the IOLoop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class ExpirySweeper:
    """Calls ``sweep`` every ``interval`` (default: a quarter of the TTL, 50 ms to 1 s)."""

    def __init__(self, sweep: Callable[[], Awaitable[int]], ttl_seconds: float) -> None:
        self._sweep = sweep
        self._ttl_seconds = ttl_seconds
        self._task: asyncio.Task | None = None

    def start(self, interval: float | None = None) -> None:
        interval = interval or max(0.05, min(1.0, self._ttl_seconds / 4))
        self._task = asyncio.get_running_loop().create_task(self._run(interval), name="waiting-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._sweep()
            except (RedisError, OSError) as exc:
                log.error("waiting-store sweep skipped, Redis unavailable: %s", exc)
