"""What the live page is served and polls, checked over HTTP (no browser needed)."""

from __future__ import annotations

import asyncio

import pytest
from tornado.httpclient import AsyncHTTPClient


@pytest.fixture
def venues_config() -> dict:
    return {
        "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
        "venues": {
            "raydium": {"plugin": "mock-raydium", "failure_rate": 0},
            "meteora": {"plugin": "mock-meteora", "enabled": False},
        },
    }


async def fetch(base_url: str, path: str):
    return await AsyncHTTPClient().fetch(base_url + path, raise_error=False)


@pytest.mark.gen_test(timeout=15)
async def test_the_page_and_its_files_are_served_under_a_strict_policy(http_server, base_url):
    page = await fetch(base_url, "/")
    assert page.code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert b'src="/static/app.js"' in page.body
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    script = await fetch(base_url, "/static/app.js")
    assert script.code == 200 and "javascript" in script.headers["Content-Type"]
    assert (await fetch(base_url, "/static/nothing.js")).code == 404


@pytest.mark.gen_test(timeout=15)
async def test_venues_lists_every_configured_venue_and_what_may_be_ordered(client):
    code, body = await client.get_json("/api/venues")
    assert code == 200
    assert sorted(body["venues"], key=lambda v: v["name"]) == [
        {"name": "meteora", "plugin": "mock-meteora", "enabled": False, "tokens": ["SOL", "USDC"]},
        {"name": "raydium", "plugin": "mock-raydium", "enabled": True, "tokens": ["SOL", "USDC"]},
    ]
    assert body["tokens"] == ["SOL", "USDC"]
    assert body["pairs"] == [["SOL", "USDC"], ["USDC", "SOL"]]
    assert body["orderTypes"] == ["market", "limit", "sniper"]
    assert (body["defaultSlippageBps"], body["maxSlippageBps"]) == (50, 5000)  # the form's defaults


async def activity_after(client, predicate) -> dict:
    """The activity log is fed by pub/sub: wait, with a deadline, until it shows the outcome."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while True:
        code, body = await client.get_json("/api/activity")
        assert code == 200
        if predicate(body) or loop.time() > deadline:
            return body
        await asyncio.sleep(0.01)


@pytest.mark.gen_test(timeout=15)
async def test_activity_shows_recent_outcomes_and_venue_quoting(client):
    frames = await client.run_order()
    assert frames[-1]["status"] == "confirmed"
    body = await activity_after(client, lambda b: b["recent"])
    assert body["recent"] == [
        {
            "orderId": frames[-1]["orderId"],
            "status": "confirmed",
            "ts": frames[-1]["ts"],
            "dex": "raydium",
            "executionPrice": frames[-1]["executionPrice"],
        }
    ]
    assert body["totals"] == {"cancelled": 0, "confirmed": 1, "expired": 0, "failed": 0}
    assert body["venues"] == {"raydium": {"quotes": 1, "quoteErrors": 0, "routesWon": 1, "lastError": None}}


@pytest.mark.gen_test(timeout=15)
async def test_activity_tells_the_price_a_limit_order_is_compared_against(client):
    code, body = await client.get_json("/api/activity?fromToken=SOL&toToken=USDC&amount=2")
    assert code == 200
    market = body["marketPrice"]
    assert {key: market[key] for key in ("fromToken", "toToken", "amount", "dex")} == {
        "fromToken": "SOL",
        "toToken": "USDC",
        "amount": 2,
        "dex": "raydium",
    }
    # The very number a waiting limit order's check compares: after the venue's fee, below 150.
    frames = await client.run_order(amount=2, orderType="limit", limitPrice=1000, expiresInSeconds=0.2)
    waiting = next(frame for frame in frames if frame["status"] in ("waiting", "expired"))
    assert market["price"] == waiting["currentPrice"] < 150
    code, plain = await client.get_json("/api/activity")
    assert code == 200 and "marketPrice" not in plain


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("fromToken=SOL&toToken=USDC", "amount", "amount is required"),
        ("fromToken=SOL&toToken=BONK&amount=1", "toToken", "no venue trades SOL/BONK"),
        ("fromToken=SOL&toToken=USDC&amount=lots", "amount", "amount must be a number"),
        ("fromToken=SOL&toToken=USDC&amount=0", "amount", "greater than 0"),
        ("fromToken=SOL&toToken=USDC&amount=nan", "amount", "greater than 0"),
        ("fromToken=SOL&toToken=USDC&amount=0.0000000001", "amount", "too many decimals for SOL"),
    ],
)
async def test_a_wrong_market_price_question_is_a_400_naming_the_field(client, query, field, says):
    code, body = await client.get_json(f"/api/activity?{query}")
    assert code == 400
    assert body["field"] == field and says in body["error"], body
