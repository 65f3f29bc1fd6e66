"""``GET /api/quote``: the route the engine would take now, as its routing frame says; nothing executes."""

from __future__ import annotations

import pytest

SERVER_FIELDS = {"orderId", "status", "seq", "ts", "message", "attempt"}


@pytest.fixture
def venues_config() -> dict:
    return {
        "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
        "venues": {
            "raydium": {"plugin": "mock-raydium", "failure_rate": 0},
            "meteora": {"plugin": "mock-meteora", "failure_rate": 0},
        },
    }


@pytest.mark.gen_test(timeout=30)
async def test_a_quote_describes_the_route_as_the_routing_frame_does_and_executes_nothing(client, engine):
    code, quote = await client.get_json("/api/quote?fromToken=SOL&toToken=USDC&amount=2&slippageBps=100")
    assert code == 200, quote
    assert (quote["fromToken"], quote["toToken"], quote["amount"]) == ("SOL", "USDC", 2)
    assert {q["dex"] for q in quote["quotes"]} == {"raydium", "meteora"}
    assert quote["bestDex"] in {"raydium", "meteora"} and quote["routePlan"]
    out, least = int(quote["outAmount"]), int(quote["minAmountOut"])
    assert least == out - out * 100 // 10_000  # 1% below what the route pays
    assert quote["quoteExpiresAt"] and quote["amountOut"] > 0
    _, activity = await client.get_json("/api/activity")
    assert activity["recent"] == [] and await engine.desk.waiting_count() == 0  # no order came of it

    order_id = await client.submit(amount=2, slippageBps=100)
    routing = next(f for f in await client.frames(order_id) if f["status"] == "routing")
    assert set(quote) - {"fromToken", "toToken", "amount"} == set(routing) - SERVER_FIELDS


@pytest.mark.parametrize(
    "query, field, says",
    [
        ("fromToken=SOL&toToken=USDC", "amount", "amount is required"),
        ("fromToken=SOL&toToken=USDC&amount=lots", "amount", "decimal string"),
        ("fromToken=SOL&toToken=USDC&amount=1&slippageBps=lots", "slippageBps", "slippageBps"),
        ("fromToken=SOL&toToken=USDC&amount=1&slippageBps=99999", "slippageBps", "slippageBps"),
        ("fromToken=SOL&toToken=BONK&amount=1", "toToken", "BONK"),
        ("toToken=USDC&amount=1", "fromToken", "fromToken"),
    ],
)
@pytest.mark.gen_test(timeout=15)
async def test_a_wrong_quote_question_is_a_400_naming_the_field(client, query, field, says):
    code, body = await client.get_json(f"/api/quote?{query}")
    assert code == 400
    assert body["field"] == field and says in body["error"], body
