"""The load generator: a client process that speaks the public contract and times it.

It runs in its own process so its CPU is not the server's. It talks to the
orchestrator (``run.py``) over stdin/stdout: lines starting with ``@`` are
events (``@ready``, ``@open``), the last one is ``@result <json>``. On
``@ready`` it waits for a ``go`` line, so the orchestrator can read the
server's CPU counters exactly when the measured window opens.

Every order goes through the same steps a trading client takes: POST
``/api/orders/execute``, open ``/ws?orderId=...``, read every frame until the
server closes the socket. Each frame's ``seq`` is checked (1..n, no gaps,
ending in a terminal status) and its ``ts`` is compared with the receive time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

try:
    import orjson

    loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    loads = json.loads

TERMINAL = frozenset({"confirmed", "failed", "expired", "cancelled"})
ORDER_BODY = {"fromToken": "SOL", "toToken": "USDC", "amount": 1.5, "orderType": "market"}


@dataclass
class OrderRun:
    """What one client saw of one order."""

    order_id: str = ""
    started: float = 0.0
    finished: float = 0.0
    seqs: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    # (receive time, frame ts) for every frame; ts is parsed after the run.
    stamps: list[tuple[float, str]] = field(default_factory=list)
    error: str | None = None

    @property
    def complete(self) -> bool:
        """Every frame, in order, ending in a terminal status."""
        return (
            self.error is None
            and bool(self.seqs)
            and self.seqs == list(range(1, len(self.seqs) + 1))
            and self.statuses[-1] in TERMINAL
        )


def emit(event: str, payload: Any = None) -> None:
    line = f"@{event}" if payload is None else f"@{event} {json.dumps(payload)}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def wait_for_go() -> None:
    """Block until the orchestrator says go (it has read its counters)."""
    emit("ready")
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit(f"expected 'go' from the orchestrator, got {line!r}")


def parse_ts(ts: str) -> float:
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float | None]:
    """p50/p99/max of values given in seconds, in milliseconds."""
    out: dict[str, float | None] = {}
    for name, pct in (("p50", 50), ("p99", 99), ("max", 100)):
        value = percentile(values, pct)
        out[name] = None if value is None else round(value * 1000, 3)
    return out


class Client:
    def __init__(self, base_url: str, connections: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = self.base_url.replace("http://", "ws://", 1) + "/ws"
        connector = aiohttp.TCPConnector(limit=connections, force_close=False)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, connect=60)
        )

    async def close(self) -> None:
        await self.session.close()

    async def submit(self) -> str:
        async with self.session.post(f"{self.base_url}/api/orders/execute", json=ORDER_BODY) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"POST returned {resp.status}: {body[:200]!r}")
            return loads(body)["orderId"]

    async def watch(self, run: OrderRun, on_first_frame: Callable[[], None] | None = None) -> None:
        """Read every frame of ``run.order_id`` until the server closes the socket."""
        async with self.session.ws_connect(
            self.ws_url, params={"orderId": run.order_id}, autoping=True, max_msg_size=0
        ) as ws:
            async for msg in ws:
                received = time.time()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                frame = loads(msg.data)
                run.stamps.append((received, frame.get("ts", "")))
                if on_first_frame is not None and len(run.stamps) == 1:
                    on_first_frame()
                seq = frame.get("seq")
                if seq is None:
                    run.error = f"error frame: {frame.get('error')}"
                    break
                run.seqs.append(seq)
                run.statuses.append(frame["status"])
                if frame["status"] in TERMINAL:
                    run.finished = received
            if ws.close_code not in (1000, None) and run.error is None:
                run.error = f"socket closed with code {ws.close_code}"

    async def order(self, run: OrderRun | None = None) -> OrderRun:
        run = run or OrderRun()
        run.started = time.time()
        try:
            run.order_id = await self.submit()
            await self.watch(run)
        except Exception as exc:  # noqa: BLE001 - recorded and counted, never hidden
            run.error = f"{type(exc).__name__}: {exc}"
        return run


def order_report(runs: list[OrderRun], elapsed: float) -> dict[str, Any]:
    complete = [r for r in runs if r.complete]
    lags = [received - parse_ts(ts) for r in runs for received, ts in r.stamps if ts]
    frames = sum(len(r.seqs) for r in runs)
    errors = sorted({r.error for r in runs if r.error})
    return {
        "orders": len(runs),
        "complete": len(complete),
        "incomplete": len(runs) - len(complete),
        "frames": frames,
        "frames_per_order": round(frames / len(runs), 2) if runs else 0,
        "elapsed_s": round(elapsed, 4),
        "orders_per_s": round(len(complete) / elapsed, 1) if elapsed > 0 else None,
        "latency_ms": summary_ms([r.finished - r.started for r in complete]),
        "lag_ms": summary_ms(lags),
        "errors": errors[:5],
    }


async def run_closed_loop(client: Client, orders: int, concurrency: int) -> list[OrderRun]:
    """Keep ``concurrency`` orders in flight until ``orders`` have been run."""
    runs: list[OrderRun] = []
    remaining = orders

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            runs.append(await client.order())

    await asyncio.gather(*(lane() for _ in range(min(concurrency, orders))))
    return runs


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def throughput(args: argparse.Namespace) -> dict[str, Any]:
    client = Client(args.url, args.concurrency * 2)
    try:
        if args.warmup:
            await run_closed_loop(client, args.warmup, min(args.concurrency, args.warmup))
        await wait_for_go()
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        runs = await run_closed_loop(client, args.orders, args.concurrency)
        elapsed = time.perf_counter() - t0
        report = order_report(runs, elapsed)
        report["loadgen_cpu_util"] = round((cpu_seconds() - cpu0) / elapsed, 3)
        return report
    finally:
        await client.close()


async def burst(args: argparse.Namespace) -> dict[str, Any]:
    """Single orders one at a time, then ``orders`` submitted at once."""
    client = Client(args.url, args.orders * 2)
    try:
        await wait_for_go()
        singles = [await client.order() for _ in range(args.singles)]
        t0 = time.time()
        runs = await asyncio.gather(*(client.order() for _ in range(args.orders)))
        makespan = max((r.finished for r in runs if r.complete), default=t0) - t0
        single_ms = [round((r.finished - r.started) * 1000, 1) for r in singles if r.complete]
        report = order_report(list(runs), makespan)
        report["makespan_ms"] = round(makespan * 1000, 1)
        report["single_ms"] = single_ms
        report["single_incomplete"] = sum(not r.complete for r in singles)
        return report
    finally:
        await client.close()


async def steady(args: argparse.Namespace) -> dict[str, Any]:
    """Open loop: a new order every 1/rate s for ``duration`` s, whatever the server's pace.

    With realistic venue latencies this keeps about rate x order latency orders in
    flight, spread out in time as real traffic is, rather than all in step as in a burst.
    """
    client = Client(args.url, 4 * int(args.rate * 4))
    try:
        await wait_for_go()
        loop = asyncio.get_running_loop()
        count = int(args.rate * args.duration)
        runs = [OrderRun() for _ in range(count)]
        tasks: list[asyncio.Task] = []
        in_flight: list[int] = []
        start = loop.time() + 0.05
        t0 = time.time()
        for i, run in enumerate(runs):
            due = start + i / args.rate
            await asyncio.sleep(max(0.0, due - loop.time()))  # pacing the arrivals, not waiting on a result
            tasks.append(asyncio.ensure_future(client.order(run)))
            in_flight.append(sum(1 for t in tasks if not t.done()) if i % 50 == 0 else -1)
        await asyncio.gather(*tasks)
        report = order_report(runs, time.time() - t0)
        # The first quarter ramps up to the steady in-flight count; measure lag after it.
        settled = runs[count // 4 :]
        report["lag_ms"] = summary_ms(
            [received - parse_ts(ts) for r in settled for received, ts in r.stamps if ts]
        )
        samples = [n for n in in_flight[len(in_flight) // 4 :] if n >= 0]
        report["in_flight_median"] = sorted(samples)[len(samples) // 2] if samples else None
        report["rate"] = args.rate
        return report
    finally:
        await client.close()


async def fanout(args: argparse.Namespace) -> dict[str, Any]:
    """``sockets`` idle subscribers over ``orders`` slow orders, then one update to all."""
    client = Client(args.url, args.sockets + args.orders)
    try:
        await wait_for_go()
        order_ids = [await client.submit() for _ in range(args.orders)]
        runs = [OrderRun(order_id=order_ids[i % args.orders]) for i in range(args.sockets)]
        gate = asyncio.Semaphore(args.connect_concurrency)
        attached = 0
        all_attached = asyncio.Event()
        t_open0 = time.time()

        def on_attached() -> None:
            nonlocal attached
            attached += 1
            gate.release()
            if attached == len(runs):
                all_attached.set()

        async def subscribe(run: OrderRun) -> None:
            # A socket counts as open once its first frame (the history) arrived.
            await gate.acquire()
            try:
                await client.watch(run, on_first_frame=on_attached)
            except Exception as exc:  # noqa: BLE001 - recorded and counted, never hidden
                run.error = f"{type(exc).__name__}: {exc}"
            if not run.stamps:
                on_attached()

        # The first socket of each order hands it to the worker; the rest join it.
        tasks = [asyncio.ensure_future(subscribe(run)) for run in runs]
        await all_attached.wait()
        open_s = time.time() - t_open0
        all_open_at = time.time()
        emit("open", {"sockets": sum(1 for r in runs if r.error is None), "open_s": round(open_s, 2)})
        await asyncio.gather(*tasks)
        live = [
            received - parse_ts(ts)
            for r in runs
            for (received, ts), status in zip(r.stamps, r.statuses, strict=False)
            if status in TERMINAL and parse_ts(ts) >= all_open_at
        ]
        terminal_before_open = sum(
            1
            for r in runs
            for (_, ts), status in zip(r.stamps, r.statuses, strict=False)
            if status in TERMINAL and parse_ts(ts) < all_open_at
        )
        report = order_report(runs, time.time() - t_open0)
        report["open_s"] = round(open_s, 2)
        report["terminal_lag_ms"] = summary_ms(live)
        report["terminal_live"] = len(live)
        # Which terminal frame was timed: the scenario means confirmations, and says so if not.
        report["terminal_statuses"] = dict(
            Counter(status for r in runs for status in r.statuses if status in TERMINAL)
        )
        report["terminal_before_all_open"] = terminal_before_open
        spread = [r.finished for r in runs if r.complete]
        report["delivery_spread_ms"] = round((max(spread) - min(spread)) * 1000, 1) if spread else None
        return report
    finally:
        await client.close()


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["throughput", "burst", "steady", "fanout"])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--singles", type=int, default=5)
    parser.add_argument("--rate", type=float, default=300.0, help="steady: orders started per second")
    parser.add_argument("--duration", type=float, default=10.0, help="steady: seconds of arrivals")
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--connect-concurrency", type=int, default=100)
    args = parser.parse_args()
    raise_fd_limit()
    scenario = {"throughput": throughput, "burst": burst, "steady": steady, "fanout": fanout}[args.scenario]
    result = asyncio.run(scenario(args))
    emit("result", result)


if __name__ == "__main__":
    main()
