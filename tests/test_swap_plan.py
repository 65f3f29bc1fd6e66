"""A venue's swap receives exactly the request, quote and all, its build did: every route, and a takeover.

The swaps of an attempt are planned once from the route, recorded in the
order hash before the first is sent, and read back by a worker that takes the
order over; nothing on the way may drop a field of the venue's quote.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from typing import Any

import pytest

from tornado_engine import Quote, QuoteRequest, SwapRequest, SwapResult, Venue, VenueSettings, hookimpl
from tornado_engine.config import load_config
from tornado_engine.engine import Engine
from tornado_engine.execution.routing import Leg, Route
from tornado_engine.execution.swap_plan import SwapPlan
from tornado_engine.orders.frames import order_frame
from tornado_engine.orders.order import Order
from tornado_engine.orders.statuses import Status
from tornado_engine.testing import EngineClient

TOKENS = {
    "SOL": {"reference_price": 150, "decimals": 9},
    "USDC": {"reference_price": 1, "decimals": 6},
    "BONK": {"reference_price": 0.00002, "decimals": 5},
}
FULL_QUOTE = Quote(
    "rec",
    150.0,
    0.003,
    149.55,
    in_amount=1_000_000_000,
    out_amount=149_550_000,
    fee_amount=3_000_000,
    price_impact_pct=0.25,
    liquidity=20_000.0,
    expires_at=1_900_000_000.5,
)


class Recorder:
    """A plugin whose venues remember every request their build and swap received."""

    def __init__(self) -> None:
        self.builds: list[SwapRequest] = []
        self.swaps: list[SwapRequest] = []
        self.executed: dict[str, SwapResult] = {}
        self.stall_swaps = False  # swaps hang (until cancelled) and never execute

    @hookimpl
    def register_venues(self, register: Any) -> None:
        register("test-recording", lambda settings: RecordingVenue(settings, self))
        register("test-recording-via-usdc", lambda settings: UsdcPoolsVenue(settings, self))


class RecordingVenue(Venue):
    """Constant-product pools of $20,000 a side on every pair; quotes fill every optional field."""

    DEPTH_USD = 20_000.0
    FEE = 0.003

    def __init__(self, settings: VenueSettings, recorder: Recorder) -> None:
        self.name = settings.name
        self.tokens = settings.tokens
        self.settings = settings
        self.recorder = recorder

    async def quote(self, request: QuoteRequest) -> Quote:
        prices = self.settings.reference_prices
        reserve_in = self.DEPTH_USD / prices[request.from_token]
        reserve_out = self.DEPTH_USD / prices[request.to_token]
        spent = request.amount * (1 - self.FEE)
        out = reserve_out * spent / (reserve_in + spent)
        price = out / spent
        units = request.amount_units or 0
        return Quote(
            self.name,
            price,
            self.FEE,
            out,
            in_amount=units,
            out_amount=int(out * 10 ** self.settings.decimals_of(request.to_token)),
            fee_amount=int(units * self.FEE),
            price_impact_pct=(1 - price / (reserve_out / reserve_in)) * 100,
            liquidity=reserve_out,
            expires_at=time.time() + 60,
        )

    async def build(self, request: SwapRequest) -> None:
        self.recorder.builds.append(request)

    async def swap(self, request: SwapRequest) -> SwapResult:
        self.recorder.swaps.append(request)
        if self.recorder.stall_swaps:
            await asyncio.Event().wait()
        quote = request.quote
        result = SwapResult(f"tx-{request.idempotency_key}", quote.price, quote.amount_out, quote.out_amount)
        self.recorder.executed[request.idempotency_key] = result
        return result

    async def status(self, idempotency_key: str) -> SwapResult | None:
        return self.recorder.executed.get(idempotency_key)


class UsdcPoolsVenue(RecordingVenue):
    """Pools against USDC only: any other pair of its tokens goes through a hop."""

    def supports(self, from_token: str, to_token: str) -> bool:
        return super().supports(from_token, to_token) and "USDC" in (from_token, to_token)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def extra_plugins(recorder) -> list:
    return [recorder]


@pytest.fixture
def venues_config(request) -> dict:
    venues = getattr(request, "param", {"rec": {"plugin": "test-recording"}})
    return {"tokens": TOKENS, "venues": venues}


@pytest.fixture
def client(engine, http_server, base_url) -> EngineClient:
    """As conftest's, with ``engine`` named so pytest sees the fixtures parametrized above."""
    return EngineClient(base_url)


def assert_full(quote: Quote) -> None:
    """Every optional field is set: none can be lost on the way without a test noticing."""
    missing = [f.name for f in dataclasses.fields(Quote) if getattr(quote, f.name) is None]
    assert not missing, f"the quote lost {missing}"


def assert_swaps_match_builds(recorder: Recorder, swaps: list[SwapRequest]) -> None:
    builds = {b.idempotency_key: b for b in recorder.builds}
    assert len(builds) == len(recorder.builds) and swaps
    for swap in swaps:
        build = builds[swap.idempotency_key]
        assert swap.quote == build.quote
        assert swap.quote.expires_at == build.quote.expires_at  # not part of Quote's equality
        assert swap == build
        assert_full(swap.quote)


# -- planning, recording and reading back ------------------------------------------------------------


def test_a_plan_reads_back_from_its_record_with_every_quote_field():
    assert_full(FULL_QUOTE)
    order = Order(str(uuid.uuid4()), "SOL", "USDC", 1.0, amount_units=1_000_000_000, limit_price=140.0)
    leg = Leg("rec", "SOL", "USDC", 1.0, 1_000_000_000, 100, FULL_QUOTE)
    plan = SwapPlan.from_route(order, Route("direct", (leg,), (), FULL_QUOTE), 2, {"USDC": 6})
    (planned,) = plan.swaps
    assert planned.request.quote is FULL_QUOTE
    assert planned.request.idempotency_key == f"{order.order_id}:2"
    assert planned.request.min_amount_out == 148_802_250  # 50 bps under the quote; above the limit

    again = SwapPlan.loads(plan.dumps(), order)
    assert again == plan
    assert again.swaps[0].request.quote.expires_at == FULL_QUOTE.expires_at
    record = json.loads(plan.dumps())  # older versions read a single leg from these three keys
    assert (record["dex"], record["key"]) == ("rec", planned.request.idempotency_key)
    assert {"price": 150.0, "fee": 0.003, "amountOut": 149.55}.items() <= record["quote"].items()


def test_a_record_of_an_older_version_reads_as_one_swap_of_the_whole_order():
    order = Order(str(uuid.uuid4()), "SOL", "USDC", 1.0, amount_units=1_000_000_000)
    old = {
        "dex": "rec",
        "key": f"{order.order_id}:1",
        "quote": {"price": 150.0, "fee": 0.003, "amountOut": 149.55},
    }
    (planned,) = SwapPlan.loads(json.dumps(old), order).swaps
    assert planned.venue == "rec"
    assert planned.request == SwapRequest(
        order.order_id, old["key"], "SOL", "USDC", 1.0, Quote("rec", 150.0, 0.003, 149.55), 1_000_000_000
    )


# -- through the engine ------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize(
    ("venues_config", "order", "route_type"),
    [
        ({"rec": {"plugin": "test-recording"}}, {"amount": 1}, "direct"),
        (
            {"left": {"plugin": "test-recording"}, "right": {"plugin": "test-recording"}},
            {"amount": 30},
            "split",
        ),
        (
            {"hub": {"plugin": "test-recording-via-usdc"}},
            {"fromToken": "SOL", "toToken": "BONK", "amount": 1},
            "multi-hop",
        ),
    ],
    ids=["direct", "split", "multi-hop"],
    indirect=["venues_config"],
)
async def test_each_swap_receives_the_request_its_build_did(client, recorder, order, route_type):
    frames = await client.run_order(**order)
    routing = next(f for f in frames if f["status"] == "routing")
    assert routing["routeType"] == route_type
    assert frames[-1]["status"] == "confirmed"
    assert len(recorder.swaps) == len(routing["routePlan"])
    assert_swaps_match_builds(recorder, recorder.swaps)


@pytest.mark.gen_test(timeout=20)
# The successor resends only once the first call's deadline (the swap timeout) has passed.
@pytest.mark.parametrize("engine_overrides", [{"worker": {"swap_timeout_ms": 1_000}}])
async def test_a_worker_taking_over_resends_the_swap_with_the_quote_its_build_had(
    client, engine, recorder, config_dir, redis_server
):
    recorder.stall_swaps = True
    order_id = await client.submit()
    watching = asyncio.ensure_future(client.frames(order_id))
    while not recorder.swaps:  # the first worker has sent its swap ...
        await asyncio.sleep(0.01)
    await engine.worker.stop(grace_seconds=0)  # ... and dies before it returns: the order is handed back
    recorder.stall_swaps = False
    successor = Engine(load_config(config_dir), redis_url=redis_server.url, role="worker", plugins=[recorder])
    await successor.start()
    try:
        frames = await watching
    finally:
        await successor.stop(grace_seconds=0.5)
    assert [f["status"] for f in frames] == ["pending", "routing", "building", "submitted", "confirmed"]
    sent, resent = recorder.swaps
    assert resent.idempotency_key == sent.idempotency_key
    assert_swaps_match_builds(recorder, [sent, resent])


@pytest.mark.gen_test(timeout=20)
async def test_a_swap_an_older_version_submitted_is_taken_over_with_the_quote_it_recorded(
    client, engine, recorder
):
    order = Order(str(uuid.uuid4()), "SOL", "USDC", 1.0, amount_units=1_000_000_000)
    key = f"{order.order_id}:1"
    submission = {"dex": "rec", "key": key, "quote": {"price": 150.0, "fee": 0.003, "amountOut": 149.55}}
    await engine.store.create(order, order_frame(order.order_id, Status.PENDING, 1), queue=None)
    submitted = order_frame(order.order_id, Status.SUBMITTED, 2, dex="rec", attempt=1)
    await engine.store.append(order.order_id, submitted, {"attempt": "1", "swap": json.dumps(submission)})
    await engine.queue.enqueue(order.order_id)

    frames = await client.frames(order.order_id)
    assert [f["status"] for f in frames] == ["pending", "submitted", "confirmed"]
    assert frames[-1]["txHash"] == f"tx-{key}"
    (resent,) = recorder.swaps
    assert resent == SwapRequest(
        order.order_id, key, "SOL", "USDC", 1.0, Quote("rec", 150.0, 0.003, 149.55), 1_000_000_000
    )
