"""Waiting orders (limit, sniper) must not hold the worker's execution slots."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize(
    "engine_overrides", [{"worker": {"concurrency": 1}, "orders": {"waiting_interval_ms": 50}}]
)
@pytest.mark.gen_test(timeout=20)
async def test_a_waiting_limit_order_does_not_block_market_orders(engine_overrides, client):
    # With one slot, a limit order that can never fill waits for 10 s...
    limit_id = await client.submit(amount=0.01, orderType="limit", limitPrice=1_000_000, expiresInSeconds=10)
    limit_socket = await client.connect(f"orderId={limit_id}")
    while json.loads(await limit_socket.read_message())["status"] != "waiting":
        pass
    # ...yet market orders go through meanwhile, one after another.
    for _ in range(3):
        assert (await client.run_order(amount=0.01))[-1]["status"] == "confirmed"
    _, limit_state = await client.get_json(f"/api/orders/{limit_id}")
    assert limit_state["status"] == "waiting"  # still waiting: the market orders did not wait for it
    limit_socket.close()
