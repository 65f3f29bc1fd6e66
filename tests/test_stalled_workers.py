"""A worker frozen past the visibility timeout (SIGSTOP) and woken (SIGCONT) while another took over.

The venue here trades every call it gets, repeated key or not (tests/careless_venue.py),
so zero double executions is the engine's doing: the lease fence on every event and
before every swap, the lookup of every swap a predecessor sent, and the wait for a
swap's deadline while the stalled worker's call may still land.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest

from tornado_engine.orders.statuses import TERMINAL_VALUES
from tornado_engine.testing import EngineClient

from .careless_venue import install_for_processes, ledger_entries
from .test_processes import assert_one_clean_stream, read_until

ORDERS = 10
STALL_MS = 1500

# (stage the orders are in when the worker freezes, the venue settings that hold them there,
#  when the frozen worker wakes: once its orders were taken over, or once they all finished)
STALL_POINTS = {
    "quoting": ("pending", {"quote_latency_ms": STALL_MS, "failure_rate": 0.3}, "taken over"),
    "building": ("building", {"build_latency_ms": STALL_MS, "failure_rate": 0.3}, "taken over"),
    "swap in flight": ("submitted", {"swap_latency_ms": STALL_MS, "failure_rate": 0.3}, "taken over"),
    "swap in flight, woken late": ("submitted", {"swap_latency_ms": STALL_MS}, "finished"),
    "after swap, before confirm": ("submitted", {"confirm_latency_ms": STALL_MS}, "taken over"),
}


def careless_venues(ledger, **options) -> dict:
    return {
        "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
        "venues": {"careless": {"plugin": "careless", "ledger_path": str(ledger), **options}},
    }


async def wait_for_ledger(path, count: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(ledger_entries(path)) < count:
        assert asyncio.get_running_loop().time() < deadline, f"the venue never traded {count} swaps"
        await asyncio.sleep(0.01)


async def read_to_the_end(sockets, streams: list[list[dict]]) -> None:
    await asyncio.gather(*(read_until(c, s, None) for c, s in zip(sockets, streams, strict=True)))


@pytest.mark.parametrize("stall_point", list(STALL_POINTS))
@pytest.mark.gen_test(timeout=60)
async def test_a_stalled_worker_woken_after_a_takeover_executes_nothing_twice(
    stall_point, make_config, engine_process, tmp_path, monkeypatch
):
    stage, options, wake = STALL_POINTS[stall_point]
    monkeypatch.setenv("PYTHONPATH", install_for_processes(tmp_path / "site"))
    ledger = tmp_path / "ledger.jsonl"
    config = make_config(
        engine={"worker": {"visibility_timeout_seconds": 1, "swap_timeout_ms": 4000}},
        venues=careless_venues(ledger, **options),
    )
    api = engine_process(config, role="api")
    stalled = engine_process(config, role="worker")
    client = EngineClient(api.base_url)
    order_ids = [await client.submit() for _ in range(ORDERS)]
    sockets = [await client.connect(f"orderId={oid}") for oid in order_ids]
    streams: list[list[dict]] = [[] for _ in order_ids]
    await asyncio.gather(*(read_until(c, s, stage) for c, s in zip(sockets, streams, strict=True)))
    for order_id in order_ids:  # the first worker holds every order ...
        stalled.wait_for_log(f"executing orderId={order_id}")
    if "confirm_latency_ms" in options:
        await wait_for_ledger(ledger, ORDERS)  # ... every swap has landed, none is confirmed
    stalled.signal(signal.SIGSTOP)
    try:
        successor = engine_process(config, role="worker")
        for order_id in order_ids:
            successor.wait_for_log(f"took over orderId={order_id}")
        if wake == "finished":
            await read_to_the_end(sockets, streams)
    finally:
        stalled.signal(signal.SIGCONT)
    if wake == "taken over":
        await read_to_the_end(sockets, streams)
    for order_id in order_ids:  # the woken worker let go of every order it had held
        stalled.wait_for_log(f"gave up orderId={order_id}")

    entries = ledger_entries(ledger)
    executed = Counter(entry["key"].split(":")[0] for entry in entries)
    tx_of = {entry["key"].split(":")[0]: entry["tx_hash"] for entry in entries}
    finals = {frames[-1]["orderId"]: frames[-1] for frames in streams if frames}
    print(
        f"\n[{stall_point}] orders={ORDERS} faults=1 SIGSTOP past the visibility timeout "
        f"lost={ORDERS - sum(f['status'] in TERMINAL_VALUES for f in finals.values())} "
        f"executed_twice={sum(n > 1 for n in executed.values())} "
        f"confirmed={sum(f['status'] == 'confirmed' for f in finals.values())} "
        f"failed={sum(f['status'] == 'failed' for f in finals.values())}"
    )
    for frames in streams:
        assert_one_clean_stream(frames)  # no gap, one terminal frame, last
    assert max(executed.values(), default=0) == 1, f"a swap executed twice: {executed}"
    for order_id in order_ids:
        final = finals[order_id]
        if final["status"] == "confirmed":
            assert final["txHash"] == tx_of[order_id], "confirmed with a swap the venue did not trade"
        else:
            assert final["status"] == "failed" and order_id not in executed, (
                f"orderId={order_id} was reported {final['status']} although its swap executed"
            )
