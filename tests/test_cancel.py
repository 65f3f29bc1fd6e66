"""``DELETE /api/orders/{id}``: an order that has not begun to execute ends ``cancelled``; one
that has is left alone (409). Exactly one of cancelled or executed, counted with a venue
that trades every call it gets (tests/careless_venue.py), so a count measures the engine.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tornado_engine import Quote, QuoteRequest, hookimpl
from tornado_engine.orders.frames import order_frame
from tornado_engine.orders.order import Order
from tornado_engine.orders.statuses import Status

from . import careless_venue
from .careless_venue import CarelessVenue, ledger_entries

TOKENS = {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}}


class GatedVenue(CarelessVenue):
    """Quotes only once the test opens ``gate``: the worker holds the order, not yet routed."""

    gate: asyncio.Event | None = None
    quoting: asyncio.Event | None = None

    async def quote(self, request: QuoteRequest) -> Quote:
        if GatedVenue.quoting is not None:
            GatedVenue.quoting.set()
        if GatedVenue.gate is not None:
            await GatedVenue.gate.wait()
        return await super().quote(request)


class GatedPlugin:
    @hookimpl
    def register_venues(self, register: Any) -> None:
        register("gated", lambda settings: GatedVenue(settings))


@pytest.fixture
def extra_plugins() -> list:
    return [careless_venue, GatedPlugin()]


@pytest.fixture
def ledger(tmp_path):
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def venues_config(ledger) -> dict:
    return {"tokens": TOKENS, "venues": {"solo": {"plugin": "gated", "ledger_path": str(ledger)}}}


async def cancel(base_url: str, order_id: str) -> tuple[int, dict]:
    request = HTTPRequest(f"{base_url}/api/orders/{order_id}", method="DELETE")
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    return response.code, json.loads(response.body)


@pytest.mark.parametrize(
    "engine_overrides",
    [{"orders": {"waiting_store": "memory"}}, {"orders": {"waiting_store": "redis"}}],
    ids=["memory", "redis"],
)
@pytest.mark.gen_test(timeout=20)
async def test_an_order_waiting_for_its_client_is_cancelled_and_its_socket_says_so(
    client, base_url, engine, ledger
):
    order_id = await client.submit()
    assert await cancel(base_url, order_id) == (200, {"orderId": order_id, "status": "cancelled"})
    assert await cancel(base_url, order_id) == (200, {"orderId": order_id, "status": "cancelled"})
    frames = await client.frames(order_id)
    assert [f["status"] for f in frames] == ["cancelled"] and "nothing was traded" in frames[0]["message"]
    _, state = await client.get_json(f"/api/orders/{order_id}")
    assert state["status"] == "cancelled" and await engine.desk.waiting_count() == 0
    assert not ledger.exists()


@pytest.mark.gen_test(timeout=20)
async def test_a_worker_holding_an_order_not_yet_routed_is_fenced_out_by_the_cancel(
    client, base_url, engine, ledger, caplog
):
    GatedVenue.gate, GatedVenue.quoting = asyncio.Event(), asyncio.Event()
    try:
        order_id = await client.submit()
        conn = await client.connect(f"orderId={order_id}")
        await GatedVenue.quoting.wait()  # the worker took the order and is quoting it
        assert (await cancel(base_url, order_id))[0] == 200
        GatedVenue.gate.set()  # the worker now has a route: it must record nothing and send nothing
        frames = []
        while (message := await conn.read_message()) is not None:
            frames.append(json.loads(message))
    finally:
        GatedVenue.gate = GatedVenue.quoting = None
    assert [f["status"] for f in frames] == ["pending", "cancelled"]
    deadline = asyncio.get_running_loop().time() + 5
    while f"gave up orderId={order_id}" not in caplog.text:  # the worker's next event was refused
        assert asyncio.get_running_loop().time() < deadline, "the worker went on after the cancel"
        await asyncio.sleep(0.01)
    assert not ledger.exists()
    assert (await engine.store.state(order_id))["status"] == "cancelled"


@pytest.mark.gen_test(timeout=30)
async def test_a_limit_order_waiting_for_its_price_is_cancelled(client, base_url, ledger, engine):
    order_id = await client.submit(orderType="limit", limitPrice=10_000, expiresInSeconds=60)
    conn = await client.connect(f"orderId={order_id}")
    frames = []
    while not frames or frames[-1]["status"] != "waiting":
        frames.append(json.loads(await conn.read_message()))
    assert (await cancel(base_url, order_id))[0] == 200
    while (message := await conn.read_message()) is not None:
        frames.append(json.loads(message))
    assert frames[-1]["status"] == "cancelled" and not ledger.exists()


@pytest.mark.gen_test(timeout=20)
async def test_an_executing_or_finished_order_is_not_cancelled_and_an_unknown_one_is_404(
    client, base_url, ledger
):
    order_id = await client.submit()
    frames = await client.frames(order_id)
    assert frames[-1]["status"] == "confirmed"
    code, body = await cancel(base_url, order_id)
    assert (
        code == 409 and body["status"] == "confirmed" and "only a pending or waiting order" in body["error"]
    )
    assert len(ledger_entries(ledger)) == 1
    code, body = await cancel(base_url, "no-such-order")
    assert code == 404 and body["field"] == "orderId"


@pytest.mark.gen_test(timeout=60)
async def test_cancels_racing_workers_end_each_order_cancelled_or_executed_never_both(
    client, base_url, engine, ledger
):
    """Cancel each order at a different moment of its journey; whichever wins, one outcome."""
    order_ids = [await client.submit() for _ in range(30)]

    async def race(index: int, order_id: str) -> tuple[int, str]:
        seen = index % 5  # frames read before the cancel: 0 cancels it before its socket opens,
        if seen == 0:  # 4 (pending, routing, building, submitted) once it is executing
            code, _ = await cancel(base_url, order_id)
        conn = await client.connect(f"orderId={order_id}")
        for _ in range(seen):
            if await conn.read_message() is None:
                break
        if seen:  # 1 to 3: the cancel races the worker
            code, _ = await cancel(base_url, order_id)
        while await conn.read_message() is not None:
            pass
        state = await engine.store.state(order_id)
        return code, state["status"]

    outcomes = await asyncio.gather(*(race(i, oid) for i, oid in enumerate(order_ids)))
    traded = {entry["key"].split(":")[0] for entry in ledger_entries(ledger)} if ledger.exists() else set()
    for order_id, (code, status) in zip(order_ids, outcomes, strict=True):
        if code == 200:
            assert status == "cancelled" and order_id not in traded
        else:
            assert code == 409 and status == "confirmed" and order_id in traded
    assert len(ledger_entries(ledger)) == len(traded)  # never two trades for one order
    assert {outcomes[0][0], outcomes[4][0]} == {200, 409}  # before its socket opened; while submitted


@pytest.mark.gen_test(timeout=10)
async def test_a_cancel_fences_out_the_holder_even_for_a_swap_it_fences_without_a_new_event(engine):
    """Besides taking the next seq, the cancel bumps the lease: the holder's fence is refused too."""
    order = Order(str(uuid.uuid4()), "SOL", "USDC", 1.0)
    await engine.store.create(order, order_frame(order.order_id, Status.PENDING, 1), queue=None)
    assert await engine.store.cancel(order.order_id, order_frame(order.order_id, Status.CANCELLED, 0)) == (
        "cancelled",
        "2",
    )
    assert not await engine.store.fence(order.order_id, 0, f"{order.order_id}:1", 0.0)
    frames = [json.loads(event.frame) for event in await engine.store.history(order.order_id)]
    assert [(f["seq"], f["status"]) for f in frames] == [(1, "pending"), (2, "cancelled")]
