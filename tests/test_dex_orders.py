"""DEX behaviour through the contract: split and multi-hop routes, slippage, limit and sniper orders."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tornado_engine.execution.routing import best_split

TOKENS = {
    "SOL": {"reference_price": 150, "decimals": 9},
    "USDC": {"reference_price": 1, "decimals": 6},
    "JUP": {"reference_price": 0.9, "decimals": 6},
    "BONK": {"reference_price": 0.00002, "decimals": 5},
}
# Two shallow SOL/USDC pools: a 500 SOL order moves either a lot, so splitting pays.
VENUES = {
    "tokens": TOKENS,
    "venues": {
        "raydium": {
            "plugin": "mock-raydium",
            "failure_rate": 0,
            "slippage_variance": 0,
            "tokens": ["SOL", "USDC", "JUP", "BONK"],
            "pools": {
                "SOL/USDC": {"reserves": [2_000, 300_000]},
                "USDC/JUP": {"reserves": [900_000, 1_000_000]},
            },
        },
        "meteora": {
            "plugin": "mock-meteora",
            "failure_rate": 0,
            "slippage_variance": 0,
            "tokens": ["SOL", "USDC", "BONK"],
            "pools": {"SOL/USDC": {"bin_step_bps": 25, "bins_each_side": 30, "bin_liquidity": [5, 750]}},
        },
    },
}


@pytest.fixture
def venues_config():
    return VENUES


@pytest.fixture
def engine_overrides():
    return {"orders": {"waiting_interval_ms": 20, "admin_api": True}}


def by_status(frames):
    return {f["status"]: f for f in frames}


# -- the split allocation against brute force ----------------------------------------------------------


@settings(max_examples=150)
@given(st.data())
def test_best_split_equals_brute_force(data):
    steps = data.draw(st.integers(1, 6))
    venues = data.draw(st.integers(1, 3))
    table = {}
    for v in range(venues):
        outs = sorted(data.draw(st.lists(st.integers(0, 1000), min_size=steps, max_size=steps)))
        table[f"v{v}"] = [0.0, *map(float, outs)]
    total, plan = best_split(table, steps)
    brute = max(
        sum(table[f"v{v}"][k] for v, k in enumerate(parts))
        for parts in itertools.product(range(steps + 1), repeat=venues)
        if sum(parts) == steps
    )
    assert total == brute
    assert sum(plan.values()) == steps
    assert sum(table[v][k] for v, k in plan.items()) == total


@pytest.mark.gen_test(timeout=15)
async def test_large_order_is_split_and_beats_every_single_venue(client, engine):
    frames = by_status(await client.run_order(amount=30))
    routing = frames["routing"]
    assert routing["routeType"] == "split"
    plan = routing["routePlan"]
    assert {leg["dex"] for leg in plan} == {"raydium", "meteora"}
    assert sum(leg["percent"] for leg in plan) == 100
    assert sum(int(leg["inAmount"]) for leg in plan) == 30 * 10**9  # exact base units, nothing lost
    single = max(q["amountOut"] for q in routing["quotes"])
    assert routing["amountOut"] > single
    confirmed = frames["confirmed"]
    assert len(confirmed["fills"]) == 2 and confirmed["amountOut"] >= int(routing["minAmountOut"]) / 10**6
    # Brute force over the same 10 % grid, with the venues' own quotes.
    from tornado_engine.venues.api import QuoteRequest

    best = 0.0
    fresh = engine.plugins.build_venues(engine.config)
    for pct in range(0, 101, 10):
        total = 0.0
        for name, share in (("raydium", pct), ("meteora", 100 - pct)):
            if share:
                units = 30 * 10**9 * share // 100
                q = await fresh[name].quote(QuoteRequest("x", "SOL", "USDC", units / 10**9, units))
                total += q.amount_out
        best = max(best, total)
    assert routing["amountOut"] == pytest.approx(best)


@pytest.mark.gen_test(timeout=15)
async def test_small_order_takes_one_venue(client):
    routing = by_status(await client.run_order(amount=0.01))["routing"]
    assert routing["routeType"] == "direct" and len(routing["routePlan"]) == 1
    assert routing["routePlan"][0]["dex"] == routing["bestDex"]


@pytest.mark.gen_test(timeout=15)
async def test_quotes_depend_on_the_amount(client):
    small = by_status(await client.run_order(amount=0.01))["routing"]["quotes"]
    large = by_status(await client.run_order(amount=20))["routing"]["quotes"]
    for a, b in zip(
        sorted(small, key=lambda q: q["dex"]), sorted(large, key=lambda q: q["dex"]), strict=True
    ):
        assert b["price"] < a["price"]
        assert b["priceImpactPct"] > a["priceImpactPct"]


@pytest.mark.gen_test(timeout=15)
async def test_executed_swaps_move_the_pool(client):
    first = by_status(await client.run_order(amount=5))["routing"]["bestPrice"]
    second = by_status(await client.run_order(amount=5))["routing"]["bestPrice"]
    assert second < first


@pytest.mark.gen_test(timeout=15)
async def test_pair_without_a_pool_goes_through_an_intermediate(client):
    frames = by_status(await client.run_order(fromToken="SOL", toToken="JUP", amount=1))
    routing = frames["routing"]
    assert routing["routeType"] == "multi-hop"
    hops = [(leg["fromToken"], leg["toToken"]) for leg in routing["routePlan"]]
    assert hops == [("SOL", "USDC"), ("USDC", "JUP")]
    assert routing["quotes"] == []  # no venue has a SOL/JUP pool
    assert frames["confirmed"]["routeType"] == "multi-hop" and len(frames["confirmed"]["fills"]) == 2


# -- amounts and slippage -------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_amount_finer_than_the_token_is_400(client):
    code, body = await client.post_order({"fromToken": "USDC", "toToken": "SOL", "amount": 1.0000001})
    assert code == 400 and body["field"] == "amount"
    assert "more decimal places than USDC allows (6)" in body["error"]


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("value", [-1, 10_001, 2.5, "50", True])
async def test_bad_slippage_is_400(client, value):
    code, body = await client.post_order(
        {"fromToken": "SOL", "toToken": "USDC", "amount": 1, "slippageBps": value}
    )
    assert code == 400 and body["field"] == "slippageBps"


@pytest.mark.gen_test(timeout=15)
async def test_min_amount_out_follows_slippage_bps(client):
    routing = by_status(await client.run_order(amount=0.01, slippageBps=100))["routing"]
    assert routing["slippageBps"] == 100
    assert int(routing["minAmountOut"]) == int(routing["outAmount"]) * 9_900 // 10_000


SLIPPY = {
    "tokens": TOKENS,
    "venues": {
        "raydium": {
            "plugin": "mock-raydium",
            "failure_rate": 0,
            "slippage_variance": 0.2,  # the pool moves up to 20 % before each swap lands
            "pools": {"SOL/USDC": {"reserves": [2_000, 300_000]}},
            "tokens": ["SOL", "USDC"],
        },
    },
}


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("venues_config", [SLIPPY])
async def test_swap_below_min_amount_out_fails_with_a_final_slippage_error(client, venues_config, engine):
    outcomes = [await client.run_order(amount=0.01, slippageBps=10) for _ in range(24)]
    failed = [f[-1] for f in outcomes if f[-1]["status"] == "failed"]
    assert failed, "with a 20 % jitter some swaps must fall below a 0.1 % limit"
    for frame in failed:
        assert "slippage" in frame["error"] and "nothing was traded" in frame["error"]
        assert frame["attempts"] == 1  # final: never retried
    statuses = [[f["status"] for f in frames] for frames in outcomes]
    assert all("retrying" not in s for s in statuses)
    executed = [e["key"] for e in engine.venues["raydium"].ledger.entries()]
    assert len(executed) == len(outcomes) - len(failed)


# -- limit and sniper -----------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_limit_order_that_is_reachable_executes(client):
    frames = await client.run_order(amount=0.01, orderType="limit", limitPrice=100, expiresInSeconds=5)
    assert [f["status"] for f in frames] == ["pending", "routing", "building", "submitted", "confirmed"]
    assert frames[-1]["executionPrice"] >= 100


@pytest.mark.gen_test(timeout=15)
async def test_limit_order_waits_then_expires(client):
    frames = await client.run_order(amount=0.01, orderType="limit", limitPrice=1_000, expiresInSeconds=0.3)
    statuses = [f["status"] for f in frames]
    assert statuses[0] == "pending" and statuses[-1] == "expired"
    waiting = [f for f in frames if f["status"] == "waiting"]
    assert waiting and set(statuses[1:-1]) == {"waiting"}
    assert all(f["limitPrice"] == 1_000 and 140 < f["currentPrice"] < 160 for f in waiting)
    assert "nothing was traded" in frames[-1]["error"]
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))


@pytest.mark.gen_test(timeout=15)
async def test_limit_order_executes_when_the_price_is_reached(client, engine):
    order_id = await client.submit(amount=0.01, orderType="limit", limitPrice=152, expiresInSeconds=10)
    conn = await client.connect(f"orderId={order_id}")
    frames = []
    while (message := await conn.read_message()) is not None:
        frame = json.loads(message)
        frames.append(frame)
        if frame["status"] == "waiting" and len([f for f in frames if f["status"] == "waiting"]) == 2:
            # Someone buys SOL on both venues: the price rises past the limit.
            await client.run_order(fromToken="USDC", toToken="SOL", amount=20_000)
    statuses = [f["status"] for f in frames]
    assert statuses[-1] == "confirmed", frames[-1]
    assert "waiting" in statuses and statuses.index("routing") > statuses.index("waiting")
    assert frames[-1]["executionPrice"] >= 152


async def add_pool(base_url: str, **body) -> tuple[int, dict]:
    request = HTTPRequest(
        f"{base_url}/api/admin/pools",
        method="POST",
        body=json.dumps(body),
        headers={"Content-Type": "application/json"},  # the admin API takes JSON only
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    return response.code, json.loads(response.body)


@pytest.mark.gen_test(timeout=15)
async def test_sniper_waits_for_the_pool_then_executes(client, base_url):
    order_id = await client.submit(
        fromToken="SOL", toToken="BONK", amount=0.01, orderType="sniper", minLiquidity=1e6
    )
    conn = await client.connect(f"orderId={order_id}")
    frames = []
    while (message := await conn.read_message()) is not None:
        frames.append(json.loads(message))
        if frames[-1]["status"] == "waiting" and sum(f["status"] == "waiting" for f in frames) == 1:
            assert frames[-1]["poolFound"] is False
            code, body = await add_pool(base_url, venue="meteora", pair="SOL/BONK", liquidity_usd=1_000_000)
            assert code == 200, body
    assert frames[-1]["status"] == "confirmed", frames[-1]
    routing = next(f for f in frames if f["status"] == "routing")
    assert routing["bestDex"] == "meteora"


@pytest.mark.gen_test(timeout=15)
async def test_sniper_expires_when_no_pool_appears(client):
    frames = await client.run_order(
        fromToken="SOL", toToken="BONK", amount=0.01, orderType="sniper", expiresInSeconds=0.2
    )
    assert frames[-1]["status"] == "expired"
    assert all(f["poolFound"] is False for f in frames if f["status"] == "waiting")


@pytest.mark.gen_test(timeout=15)
async def test_admin_pool_with_a_bad_key_is_400_naming_it(base_url, client):
    code, body = await add_pool(base_url, venue="raydium", pair="SOL/BONK", reserves=[1])
    assert code == 400 and body["field"] == "reserves"
    code, body = await add_pool(base_url, venue="nope", pair="SOL/BONK")
    assert code == 400 and body["field"] == "venue"
