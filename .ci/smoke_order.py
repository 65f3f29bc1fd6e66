"""Run one real order through an installed ``tornado-engine serve``, as a new user would.

Usage: ``VENV/bin/python .ci/smoke_order.py VENV WORKDIR``

``VENV`` is a virtual environment the engine was installed into (from a wheel,
not from this source tree); ``WORKDIR`` is an empty directory outside the source
tree, so the engine starts on the config its package ships. The script checks that the engine
imports from the environment rather than from the source tree, starts
``tornado-engine serve --port 0`` there (no Redis URL: the embedded Redis),
submits an order with ``POST /api/orders/execute``, follows ``/ws`` until the
order is confirmed or failed, stops the server with Ctrl-C (SIGINT) and checks
that it exited cleanly and left no Redis server behind.

Only the standard library and Tornado (which the engine installs) are used, so
the script runs with the fresh environment's own interpreter. Exit status 0
means the installed engine works; anything else prints what went wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

SOURCE_TREE = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60
ORDER_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60
ORDER = {"fromToken": "SOL", "toToken": "USDC", "amount": 1, "orderType": "market"}
TERMINAL = {"confirmed", "failed"}


class SmokeFailure(Exception):
    """The installed engine did not do what a user expects."""


def check_installed_not_source(python: Path, workdir: Path) -> str:
    """The engine must import from the environment's site-packages: the point is to test the wheel."""
    result = subprocess.run(
        [str(python), "-c", "import tornado_engine; print(tornado_engine.__file__)"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise SmokeFailure(f"the installed engine does not import:\n{result.stderr}")
    location = Path(result.stdout.strip()).resolve()
    if location.is_relative_to(SOURCE_TREE):
        raise SmokeFailure(f"tornado_engine imports from the source tree ({location}), not from the wheel")
    return str(location)


class Server:
    """``tornado-engine serve`` as a child process, its log collected line by line."""

    def __init__(self, engine: Path, workdir: Path) -> None:
        self.process = subprocess.Popen(
            [str(engine), "serve", "--port", "0"],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if self.process.poll() is not None:
                self._reader.join(5)
                raise SmokeFailure(f"the engine exited with {self.process.returncode}:\n{self.log}")
            time.sleep(0.05)
        raise SmokeFailure(f"no log line matching {pattern!r} within {timeout:g}s:\n{self.log}")

    def interrupt(self) -> int:
        """Ctrl-C, as a user stops it; the exit status."""
        self.process.send_signal(signal.SIGINT)
        try:
            status = self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise SmokeFailure(
                f"the engine did not stop within {STOP_TIMEOUT_S}s of SIGINT:\n{self.log}"
            ) from None
        self._reader.join(5)
        return status


async def run_order(port: int) -> list[dict]:
    """Submit one order and follow its socket to the end; every frame, in order."""
    base = f"127.0.0.1:{port}"
    request = HTTPRequest(
        f"http://{base}/api/orders/execute",
        method="POST",
        body=json.dumps(ORDER),
        headers={"Content-Type": "application/json"},
        request_timeout=30,
    )
    reply = json.loads((await AsyncHTTPClient().fetch(request)).body)
    if reply.get("status") != "pending" or not reply.get("orderId"):
        raise SmokeFailure(f"unexpected reply to the order: {reply}")
    socket = await websocket_connect(f"ws://{base}/ws?orderId={reply['orderId']}", connect_timeout=30)
    frames = []
    while (message := await socket.read_message()) is not None:
        frames.append(json.loads(message))
    return frames


def check_frames(frames: list[dict]) -> None:
    statuses = [frame["status"] for frame in frames]
    if not frames or statuses[0] != "pending" or statuses[-1] not in TERMINAL:
        raise SmokeFailure(f"the order did not run from pending to confirmed or failed: {statuses}")
    if [frame["seq"] for frame in frames] != list(range(1, len(frames) + 1)):
        raise SmokeFailure(f"frames out of sequence: {[frame['seq'] for frame in frames]}")


def redis_servers_on(socket_path: str) -> list[int]:
    """Live processes (not zombies) whose command line names the embedded Redis's socket."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if socket_path in cmdline and "redis-server" in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    venv, workdir = Path(argv[0]).resolve(), Path(argv[1]).resolve()
    try:
        location = check_installed_not_source(venv / "bin" / "python", workdir)
        print(f"smoke: tornado_engine imports from {location}")
        server = Server(venv / "bin" / "tornado-engine", workdir)
        try:
            socket_path = server.wait_for(r"embedded Redis server at unix://(\S+)", START_TIMEOUT_S)[1]
            port = int(server.wait_for(r"listening on port (\d+)", START_TIMEOUT_S)[1])
            print(f"smoke: tornado-engine serve listening on port {port}, embedded Redis at {socket_path}")
            frames = asyncio.run(asyncio.wait_for(run_order(port), ORDER_TIMEOUT_S))
            check_frames(frames)
            print(f"smoke: order {frames[0]['orderId']}: {' -> '.join(f['status'] for f in frames)}")
        finally:
            status = server.interrupt() if server.process.poll() is None else server.process.returncode
        if status != 0 or "stopped" not in server.log:
            raise SmokeFailure(f"the engine did not stop cleanly (exit status {status}):\n{server.log}")
        if Path("/proc").is_dir():
            deadline = time.monotonic() + 10
            while (left := redis_servers_on(socket_path)) and time.monotonic() < deadline:
                time.sleep(0.1)
            if left:
                raise SmokeFailure(f"the embedded Redis server outlived the engine: pid {left}")
        print("smoke: stopped cleanly with Ctrl-C; no Redis server left behind")
    except (SmokeFailure, HTTPClientError, OSError, asyncio.TimeoutError) as exc:
        print(f"smoke: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.pop("REDIS_URL", None)  # the embedded Redis is what a new user gets
    sys.exit(main(sys.argv[1:]))
