"""Per-client limits on order intake: rate with a burst (GCRA), orders in flight, orders waiting.

Every test runs on a real Redis; the limits live there, so two API processes
(two engines on one Redis here) share them. Off by default with keys off.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.testing import bind_unused_port

from tornado_engine.config import LimitsConfig, load_config
from tornado_engine.config.changes import engine_changes
from tornado_engine.engine import Engine
from tornado_engine.limits.rate import RateLimiter, retry_after
from tornado_engine.web.app import make_app
from tornado_engine.web.connections import Connections
from tornado_engine.web.server import make_server

ORDER = json.dumps({"fromToken": "SOL", "toToken": "USDC", "amount": 1})


async def post(base_url: str, key: str | None = None, **headers: str) -> tuple[int, dict, dict]:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = HTTPRequest(
        f"{base_url}/api/orders/execute",
        method="POST",
        body=ORDER,
        headers={"Content-Type": "application/json", **headers},
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    return response.code, json.loads(response.body), dict(response.headers)


def limited(**limits: object) -> dict:
    return {"limits": {"per_address": True, **limits}}


# --- Off by default ----------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=60)
async def test_with_keys_off_a_burst_of_150_orders_from_one_address_is_accepted(
    http_server, base_url, engine
):
    replies = await asyncio.gather(*(post(base_url) for _ in range(150)))
    assert [code for code, _, _ in replies] == [200] * 150
    assert await engine.desk.waiting_count() == 150


# --- Rate --------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine_overrides", [limited(orders_per_second=0.5, burst=3)])
@pytest.mark.gen_test(timeout=30)
async def test_a_burst_over_the_limit_is_answered_429_with_retry_after_and_nothing_kept(
    http_server, base_url, engine
):
    replies = [await post(base_url) for _ in range(5)]
    assert [code for code, _, _ in replies] == [200, 200, 200, 429, 429]
    _, body, headers = replies[3]
    assert "at most 0.5 per second (bursts of 3)" in body["error"]
    assert headers["Retry-After"] == "2"  # one order every 2 s: the next slot is up to 2 s away
    assert await engine.desk.waiting_count() == 3  # the refused orders were never admitted
    metrics = (await AsyncHTTPClient().fetch(f"{base_url}/metrics")).body.decode()
    assert 'tornado_engine_orders_limited_total{limit="rate"} 2.0' in metrics


@pytest.mark.parametrize("engine_overrides", [limited(orders_per_second=0.01, burst=1)])
@pytest.mark.gen_test(timeout=30)
async def test_a_client_cannot_pick_a_fresh_address_with_a_forwarded_header(http_server, base_url):
    assert (await post(base_url, **{"X-Forwarded-For": "203.0.113.1"}))[0] == 200
    assert (await post(base_url, **{"X-Forwarded-For": "203.0.113.2", "X-Real-Ip": "203.0.113.3"}))[0] == 429


@pytest.mark.gen_test(timeout=30)
async def test_gcra_lets_the_burst_through_then_one_order_per_interval(engine):
    limiter = RateLimiter(engine.redis)
    key = engine.keys.limit_rate("gcra-test")
    assert [await limiter.take(key, 50, 2) for _ in range(2)] == [0.0, 0.0]
    wait = await limiter.take(key, 50, 2)
    assert 0 < wait <= 0.02  # the next slot is one interval (20 ms) away at most
    await asyncio.sleep(wait)  # the passing of time is what is under test here
    assert await limiter.take(key, 50, 2) == 0.0
    assert 0 < await limiter.take(key, 50, 2) <= 0.02


def test_retry_after_is_whole_seconds_rounded_up():
    assert [retry_after(s) for s in (0.001, 1.0, 1.2, 59.9)] == ["1", "1", "2", "60"]


# --- Two API processes, one Redis ----------------------------------------------------------------


@pytest.fixture
def second_api(io_loop, redis_server, config_dir, engine):
    """Another API process's engine and server on the same Redis."""
    other = Engine(load_config(config_dir), redis_url=redis_server.url, role="api")
    io_loop.run_sync(other.start, timeout=20)
    sock, port = bind_unused_port()
    server = make_server(make_app(other, Connections(other.desk.updates)), other.config.server)
    server.add_socket(sock)
    yield f"http://127.0.0.1:{port}"
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=10)
    io_loop.run_sync(other.stop, timeout=20)


@pytest.mark.parametrize("engine_overrides", [{"auth": {"required": True, "cache_seconds": 0}}])
@pytest.mark.gen_test(timeout=30)
async def test_a_keys_rate_holds_across_two_api_processes(http_server, base_url, second_api, engine):
    key = await engine.keyring.add("bot", ("trade", "read"), 0.01)  # its own rate, 1 order per 100 s
    other = await engine.keyring.add("other", ("trade", "read"), 0.01)
    burst = engine.config.limits.burst
    codes = [(await post(url, key))[0] for url in [base_url, second_api] * (burst // 2)]
    assert codes == [200] * burst
    assert (await post(base_url, key))[0] == 429 and (await post(second_api, key))[0] == 429
    assert (await post(second_api, other))[0] == 200  # each key has its own limit


# --- Quotas ------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine_overrides", [limited(max_in_flight=2, max_waiting=0)])
@pytest.mark.gen_test(timeout=30)
async def test_in_flight_orders_are_capped_and_a_finished_one_frees_its_place(http_server, base_url, client):
    first = (await post(base_url))[1]["orderId"]
    assert (await post(base_url))[0] == 200
    code, body, headers = await post(base_url)
    assert code == 429 and "in flight: at most 2" in body["error"] and headers["Retry-After"] == "1"
    frames = await client.frames(first)
    assert frames[-1]["status"] == "confirmed"
    assert (await post(base_url))[0] == 200  # counted from the orders themselves: the finished one left


@pytest.mark.parametrize("engine_overrides", [limited(max_waiting=1)])
@pytest.mark.gen_test(timeout=30)
async def test_orders_waiting_for_their_socket_are_capped_until_one_is_watched(http_server, base_url, client):
    first = (await post(base_url))[1]["orderId"]
    code, body, _ = await post(base_url)
    assert code == 429 and "waiting for their WebSocket: at most 1" in body["error"]
    conn = await client.connect(f"orderId={first}")  # the order leaves the waiting store for the queue
    await conn.read_message()
    assert (await post(base_url))[0] == 200
    conn.close()


def test_a_reload_applies_changed_limits():
    running = load_config(None)
    fresh = running.replace(limits=LimitsConfig(per_address=True, orders_per_second=5))
    changes = engine_changes(running, fresh)
    assert changes.config.limits == fresh.limits and not changes.restart_needed
