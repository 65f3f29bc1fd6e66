"""Real processes sharing only Redis: split api/worker, and a worker killed mid-order."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter

import pytest

from tornado_engine.orders.statuses import TERMINAL_VALUES
from tornado_engine.testing import EngineClient

ORDERS = 20


def venues(ledger_path, **latencies) -> dict:
    """One mock venue with the given latencies, its swaps recorded in a shared ledger file."""
    return {
        "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
        "venues": {
            "raydium": {
                "plugin": "mock-raydium",
                "failure_rate": 0,
                "ledger_path": str(ledger_path),
                "quote_latency_ms": 0,
                "build_latency_ms": 0,
                "swap_latency_ms": 0,
                "confirm_latency_ms": 0,
                **latencies,
            }
        },
    }


async def read_until(conn, frames: list[dict], status: str | None) -> None:
    """Append frames until one has ``status`` (or, for None, until the socket closes)."""
    while True:
        message = await conn.read_message()
        if message is None:
            return
        frames.append(json.loads(message))
        if status is not None and frames[-1]["status"] == status:
            return


def ledger_entries(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def wait_for_ledger(path, count: int, timeout: float = 10.0) -> None:
    """Poll the venue's ledger file until it records ``count`` swaps."""
    deadline = asyncio.get_running_loop().time() + timeout
    while len(ledger_entries(path)) < count:
        assert asyncio.get_running_loop().time() < deadline, f"ledger never reached {count} swaps"
        await asyncio.sleep(0.01)


def assert_one_clean_stream(frames: list[dict]) -> None:
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1)), frames
    terminals = [f for f in frames if f["status"] in TERMINAL_VALUES]
    assert len(terminals) == 1 and frames[-1] is terminals[0], frames


@pytest.mark.gen_test(timeout=60)
async def test_api_and_worker_processes_sharing_only_redis_deliver_every_frame(
    make_config, engine_process, tmp_path
):
    config = make_config(venues=venues(tmp_path / "ledger.jsonl"))
    api = engine_process(config, role="api")
    engine_process(config, role="worker")
    client = EngineClient(api.base_url)
    streams = await asyncio.gather(*(client.run_order() for _ in range(ORDERS)))
    for frames in streams:
        assert [f["status"] for f in frames] == [
            "pending",
            "routing",
            "building",
            "submitted",
            "confirmed",
        ]
        assert_one_clean_stream(frames)


# (stage the orders are in when the worker dies, the venue latency that holds them there)
KILL_POINTS = {
    "quoting": ("pending", {"quote_latency_ms": 400}),
    "building": ("building", {"build_latency_ms": 400}),
    "swap in flight, not executed": ("submitted", {"swap_latency_ms": 400}),
    "swap executed, not confirmed": ("submitted", {"confirm_latency_ms": 400}),
}


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
@pytest.mark.gen_test(timeout=60)
async def test_worker_killed_mid_order_loses_nothing_and_executes_nothing_twice(
    kill_point, make_config, engine_process, tmp_path
):
    stage, latencies = KILL_POINTS[kill_point]
    ledger = tmp_path / "ledger.jsonl"
    config = make_config(
        # A killed worker's swap is resent only after its deadline (the swap timeout) has passed.
        engine={
            "simulation": {"latency_scale": 1},
            "worker": {"visibility_timeout_seconds": 1, "swap_timeout_ms": 2000},
        },
        venues=venues(ledger, **latencies),
    )
    api = engine_process(config, role="api")
    doomed = engine_process(config, role="worker")
    client = EngineClient(api.base_url)
    order_ids = [await client.submit() for _ in range(ORDERS)]
    sockets = [await client.connect(f"orderId={oid}") for oid in order_ids]
    streams: list[list[dict]] = [[] for _ in order_ids]
    await asyncio.gather(*(read_until(c, s, stage) for c, s in zip(sockets, streams, strict=True)))
    if "confirm_latency_ms" in latencies:
        await wait_for_ledger(ledger, ORDERS)  # every swap has landed; none is confirmed yet
    doomed.signal(signal.SIGKILL)
    doomed.wait()
    engine_process(config, role="worker")
    await asyncio.gather(*(read_until(c, s, None) for c, s in zip(sockets, streams, strict=True)))

    for frames in streams:
        assert_one_clean_stream(frames)
        assert frames[-1]["status"] == "confirmed"
    entries = ledger_entries(ledger)
    executed = Counter(entry["key"].split(":")[0] for entry in entries)
    assert sorted(executed) == sorted(order_ids)
    assert set(executed.values()) == {1}, "a swap was executed twice"
    ledger_tx = {entry["key"].split(":")[0]: entry["tx_hash"] for entry in entries}
    assert {frames[-1]["orderId"]: frames[-1]["txHash"] for frames in streams} == ledger_tx


# -- deploys: an API process stopped with orders still waiting for their client ------------------


async def submit_then_stop(make_config, engine_process, tmp_path, waiting_store: str | None):
    """POST orders to an API process, SIGTERM it before any client connects; a successor starts."""
    orders = {} if waiting_store is None else {"orders": {"waiting_store": waiting_store}}
    config = make_config(engine=orders, venues=venues(tmp_path / "ledger.jsonl"))
    doomed = engine_process(config, role="api")
    order_ids = [await EngineClient(doomed.base_url).submit() for _ in range(ORDERS)]
    doomed.signal(signal.SIGTERM)
    assert doomed.wait() == 0
    successor = engine_process(config, role="all")
    return doomed, EngineClient(successor.base_url), order_ids, tmp_path / "ledger.jsonl"


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_in_memory_mode_records_each_waiting_order_expired_not_lost(
    make_config, engine_process, tmp_path
):
    doomed, client, order_ids, ledger = await submit_then_stop(
        make_config, engine_process, tmp_path, "memory"
    )
    doomed.wait_for_log(f"{ORDERS} orders still waiting for their client recorded as expired")
    for order_id in order_ids:
        code, body = await client.get_json(f"/api/orders/{order_id}")
        assert (code, body["status"]) == (200, "expired"), body
        assert "stopped before its client connected" in body["events"][0]["error"]
        frames = await client.frames(order_id)
        assert [f["status"] for f in frames] == ["expired"]
        assert client.last_close[0] == 1000
    assert ledger_entries(ledger) == []  # not executed


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_with_the_default_waiting_store_and_an_external_redis_loses_nothing(
    make_config, engine_process, tmp_path
):
    """With a Redis URL, orders wait in Redis (``auto``): another process starts them."""
    _, client, order_ids, ledger = await submit_then_stop(make_config, engine_process, tmp_path, None)
    streams = await asyncio.gather(*(client.frames(oid) for oid in order_ids))
    for frames in streams:
        assert_one_clean_stream(frames)
        assert frames[-1]["status"] == "confirmed"
    executed = Counter(entry["key"].split(":")[0] for entry in ledger_entries(ledger))
    assert sorted(executed) == sorted(order_ids) and set(executed.values()) == {1}
