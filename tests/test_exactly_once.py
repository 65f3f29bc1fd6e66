"""At most one trade per leg, whatever a plugin's error claims, and no trade by a worker that lost the order.

The venues trade every call they get (tests/careless_venue.py): a second call with
the same key trades again, so each count below measures the engine's defence.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tornado_engine import SwapRequest, SwapResult, hookimpl
from tornado_engine.orders.frames import order_frame
from tornado_engine.orders.order import Order
from tornado_engine.orders.statuses import Status

from . import careless_venue
from .careless_venue import CarelessVenue, ledger_entries

TOKENS = {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}}


class HookedVenue(CarelessVenue):
    """Runs ``after_swap`` (set by the test) once each swap has traded."""

    after_swap: Callable[[SwapRequest], Awaitable[None]] | None = None

    async def swap(self, request: SwapRequest) -> SwapResult:
        result = await super().swap(request)
        if HookedVenue.after_swap is not None:
            await HookedVenue.after_swap(request)
        return result


class HookedPlugin:
    @hookimpl
    def register_venues(self, register: Any) -> None:
        register("hooked", lambda settings: HookedVenue(settings))


@pytest.fixture
def extra_plugins() -> list:
    return [careless_venue, HookedPlugin()]


@pytest.fixture
def ledger(tmp_path):
    return tmp_path / "ledger.jsonl"


def one_venue(ledger, plugin: str = "careless", **options: Any) -> dict:
    return {"tokens": TOKENS, "venues": {"solo": {"plugin": plugin, "ledger_path": str(ledger), **options}}}


def two_deep_venues(ledger, plugin: str = "careless", **options: Any) -> dict:
    """Two venues whose price moves with size: 30 SOL pays more split across both."""
    venue = {"plugin": plugin, "ledger_path": str(ledger), "depth": 30, **options}
    return {"tokens": TOKENS, "venues": {"left": venue, "right": dict(venue)}}


@pytest.fixture
def venues_config(request, ledger) -> dict:
    build, options = getattr(request, "param", (one_venue, {}))
    return build(ledger, **options)


def statuses(frames: list[dict]) -> list[str]:
    return [f["status"] for f in frames]


@pytest.mark.parametrize("venues_config", [(one_venue, {"raise_after_trade": True})], indirect=True)
@pytest.mark.gen_test(timeout=15)
async def test_a_swap_whose_plugin_raised_retryable_after_trading_is_confirmed_not_retried(
    venues_config, client, ledger, caplog
):
    frames = await client.run_order()
    assert statuses(frames) == ["pending", "routing", "building", "submitted", "confirmed"]
    (trade,) = ledger_entries(ledger)
    assert frames[-1]["txHash"] == trade["tx_hash"]  # the client is told the truth: it traded
    assert "but it executed; confirming it" in caplog.text


@pytest.mark.parametrize("venues_config", [(two_deep_venues, {"raise_after_trade": True})], indirect=True)
@pytest.mark.gen_test(timeout=15)
async def test_each_leg_of_a_split_whose_plugin_raised_after_trading_trades_once(
    venues_config, client, ledger
):
    frames = await client.run_order(amount=30)
    assert frames[-1]["status"] == "confirmed" and frames[-1]["routeType"] == "split"
    trades = ledger_entries(ledger)
    assert sorted(t["key"] for t in trades) == sorted({t["key"] for t in trades})  # one trade per leg
    assert {f["txHash"] for f in frames[-1]["fills"]} == {t["tx_hash"] for t in trades}


@pytest.mark.parametrize(
    "venues_config", [(one_venue, {"swap_latency_ms": 500, "clock_behind_ms": 900})], indirect=True
)
@pytest.mark.parametrize("engine_overrides", [{"worker": {"swap_timeout_ms": 300}}])
@pytest.mark.gen_test(timeout=15)
async def test_a_timed_out_swap_that_lands_late_at_a_venue_whose_clock_lags_is_confirmed_not_resent(
    venues_config, engine_overrides, client, ledger
):
    frames = await client.run_order()
    assert statuses(frames) == ["pending", "routing", "building", "submitted", "confirmed"]
    (trade,) = ledger_entries(ledger)  # it landed after the engine's timeout, before the venue's deadline
    assert frames[-1]["txHash"] == trade["tx_hash"]


@pytest.mark.parametrize("venues_config", [(two_deep_venues, {"plugin": "hooked"})], indirect=True)
@pytest.mark.gen_test(timeout=15)
async def test_a_worker_whose_order_was_taken_over_between_legs_sends_no_further_leg(
    venues_config, client, engine, ledger, caplog
):
    async def taken_over(request: SwapRequest) -> None:  # another worker claims the order now
        await engine.store.take(request.order_id, "successor")

    HookedVenue.after_swap = taken_over
    try:
        order_id = await client.submit(amount=30)
        conn = await client.connect(f"orderId={order_id}")
        deadline = asyncio.get_running_loop().time() + 5
        while f"gave up orderId={order_id}" not in caplog.text:
            assert asyncio.get_running_loop().time() < deadline, "the worker went on after the takeover"
            await asyncio.sleep(0.01)
        conn.close()
    finally:
        HookedVenue.after_swap = None
    (trade,) = ledger_entries(ledger)  # leg 1 traded; leg 2 was never sent by the fenced-out worker
    assert trade["key"] == f"{order_id}:1:1"
    state = await engine.store.state(order_id)
    assert state["status"] == "submitted" and state["lease"] == "1" and f"sent:{order_id}:1:2" not in state


@pytest.mark.gen_test(timeout=10)
async def test_a_worker_fenced_out_by_a_takeover_can_record_nothing_and_send_nothing(engine):
    order = Order(str(uuid.uuid4()), "SOL", "USDC", 1.0)
    await engine.store.create(order, order_frame(order.order_id, Status.PENDING, 1), queue=None)
    state = await engine.store.take(order.order_id, "successor")
    assert state["lease"] == "1" and state["owner"] == "successor"
    routing = order_frame(order.order_id, Status.ROUTING, 2)
    assert not await engine.store.append(order.order_id, routing, lease=0)  # a fresh seq, a stale lease
    assert not await engine.store.fence(order.order_id, 0, f"{order.order_id}:1", 0.0)
    assert await engine.store.append(order.order_id, routing, lease=1)
    assert await engine.store.fence(order.order_id, 1, f"{order.order_id}:1", 12.5)
    assert (await engine.store.state(order.order_id))[f"sent:{order.order_id}:1"] == "12.5"


@pytest.mark.gen_test(timeout=10)
async def test_taking_over_an_unknown_order_returns_nothing_and_writes_nothing(engine):
    order_id = str(uuid.uuid4())
    assert await engine.store.take(order_id, "successor") is None
    assert not await engine.store.exists(order_id)
