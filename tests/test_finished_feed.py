"""The finished-orders feed: every order reaching a terminal status, once, with its terminal event."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tornado_engine.orders.frames import order_frame
from tornado_engine.orders.statuses import TERMINAL_VALUES, Status


@pytest.fixture
def engine_overrides():
    return {"orders": {"waiting_interval_ms": 20}}


async def feed(engine) -> list[dict[str, str]]:
    entries = await engine.redis.xrange(engine.keys.finished)
    return [
        {
            k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
            for k, v in values.items()
        }
        for _, values in entries
    ]


@pytest.mark.gen_test(timeout=15)
async def test_every_finished_order_is_on_the_feed_once_with_its_terminal_status(client, engine):
    finished = {}
    for _ in range(5):
        frames = await client.run_order(amount=0.01)
        assert frames[-1]["status"] in TERMINAL_VALUES
        finished[frames[-1]["orderId"]] = frames[-1]["status"]
    entries = await feed(engine)
    assert sorted(e["orderId"] for e in entries) == sorted(finished)
    assert {e["orderId"]: e["status"] for e in entries} == finished


@pytest.mark.gen_test(timeout=15)
async def test_an_order_still_in_flight_is_not_on_the_feed(client, engine):
    waiting = await client.submit(amount=0.01, orderType="limit", limitPrice=1_000_000, expiresInSeconds=30)
    code, body = await client.get_json(f"/api/orders/{waiting}")
    assert code == 200 and body["status"] not in TERMINAL_VALUES, json.dumps(body)
    assert [e for e in await feed(engine) if e["orderId"] == waiting] == []


@pytest.mark.parametrize(
    "engine_overrides", [{"orders": {"waiting_store": "redis", "waiting_ttl_seconds": 60}}]
)
@pytest.mark.gen_test(timeout=15)
async def test_an_order_expired_by_the_shared_waiting_store_is_on_the_feed(engine_overrides, client, engine):
    order_id = await client.submit()
    await engine.redis.zadd(engine.keys.waiting_deadlines, {order_id: 0})  # its deadline is now past
    assert await engine.waiting.sweep() == 1
    assert [e for e in await feed(engine) if e["orderId"] == order_id] == [
        {"orderId": order_id, "status": "expired"}
    ]


@pytest.mark.gen_test(timeout=15)
async def test_an_order_recorded_finished_at_once_is_on_the_feed(client, engine):
    """An order whose first event is terminal (expired waiting in this process's memory)."""
    order_id = await client.submit()
    order = await engine.waiting.lookup(order_id)
    assert order is not None
    await engine.store.create(order, order_frame(order_id, Status.EXPIRED, 1, error="gone"), queue=None)
    assert [e for e in await feed(engine) if e["orderId"] == order_id] == [
        {"orderId": order_id, "status": "expired"}
    ]


@pytest.mark.gen_test(timeout=15)
async def test_a_cancelled_order_is_on_the_feed(client, base_url, engine):
    order_id = await client.submit(orderType="limit", limitPrice=1_000_000, expiresInSeconds=60)
    conn = await client.connect(f"orderId={order_id}")
    while json.loads(await conn.read_message())["status"] != "waiting":
        pass  # recorded and waiting for its price: the cancel script records the cancel
    request = HTTPRequest(f"{base_url}/api/orders/{order_id}", method="DELETE")
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    assert response.code == 200, response.body
    assert [e for e in await feed(engine) if e["orderId"] == order_id] == [
        {"orderId": order_id, "status": "cancelled"}
    ]
