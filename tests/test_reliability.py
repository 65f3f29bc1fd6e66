"""Nothing lost, nothing executed twice: scale-out, reconnects, Redis crashes, SIGTERM, retention."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import socket
from collections import Counter

import pytest

from tornado_engine.orders.statuses import TERMINAL_VALUES
from tornado_engine.testing import EngineClient, RedisServer

from .test_processes import assert_one_clean_stream, ledger_entries, venues


async def read_frames(conn, until: str | None = None, count: int | None = None) -> list[dict]:
    """Order frames (socket error frames carry no seq and are skipped) until the
    socket closes, a frame with status ``until`` arrives, or ``count`` frames came."""
    frames: list[dict] = []
    while count is None or len(frames) < count:
        message = await conn.read_message()
        if message is None:
            break
        frame = json.loads(message)
        if "seq" not in frame:
            continue
        frames.append(frame)
        if until is not None and frame["status"] == until:
            break
    return frames


def assert_executed_once_each(ledger, order_ids) -> None:
    executed = Counter(entry["key"].split(":")[0] for entry in ledger_entries(ledger))
    assert sorted(executed) == sorted(order_ids)
    assert set(executed.values()) == {1}, "a swap was executed twice"


@pytest.mark.gen_test(timeout=60)
async def test_two_api_processes_and_two_workers_deliver_every_stream(make_config, engine_process, tmp_path):
    config = make_config(
        engine={"orders": {"waiting_store": "redis"}}, venues=venues(tmp_path / "ledger.jsonl")
    )
    apis = [engine_process(config, role="api") for _ in range(2)]
    for _ in range(2):
        engine_process(config, role="worker")
    clients = [EngineClient(api.base_url) for api in apis]

    async def cross(i: int) -> list[dict]:
        # POST to one API process, watch on the other: no sticky sessions needed.
        order_id = await clients[i % 2].submit()
        return await clients[(i + 1) % 2].frames(order_id)

    streams = await asyncio.gather(*(cross(i) for i in range(20)))
    for frames in streams:
        assert_one_clean_stream(frames)
        assert frames[-1]["status"] == "confirmed"
    assert_executed_once_each(tmp_path / "ledger.jsonl", [s[0]["orderId"] for s in streams])


@pytest.mark.parametrize(
    "engine_overrides", [{"orders": {"waiting_store": "redis", "waiting_ttl_seconds": 0.2}}]
)
@pytest.mark.gen_test(timeout=15)
async def test_shared_waiting_store_expires_an_order_whose_client_never_came(
    engine_overrides, client, engine
):
    order_id = await client.submit()
    assert await engine.waiting.lookup(order_id) is not None
    for _ in range(200):  # the sweep runs every 50 ms here
        code, body = await client.get_json(f"/api/orders/{order_id}")
        if body["status"] != "pending":
            break
        await asyncio.sleep(0.02)
    assert (code, body["status"]) == (200, "expired")
    assert await engine.queue.depth() == 0
    frames = await client.frames(order_id)
    assert [f["status"] for f in frames] == ["expired"]


@pytest.mark.parametrize(
    "venues_config",
    [
        {
            "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
            "venues": {
                "raydium": {
                    "plugin": "mock-raydium",
                    "failure_rate": 0.3,
                    "quote_latency_ms": [0, 10],
                    "build_latency_ms": [0, 10],
                    "swap_latency_ms": [0, 20],
                }
            },
        }
    ],
)
@pytest.mark.parametrize("engine_overrides", [{"simulation": {"latency_scale": 1, "seed": 11}}])
@pytest.mark.gen_test(timeout=30)
async def test_reconnecting_at_random_points_gives_a_gapless_duplicate_free_stream(
    engine_overrides, venues_config, client
):
    rng = random.Random(2026)

    async def watch_with_reconnects(order_id: str) -> list[dict]:
        seen: list[dict] = []
        while not seen or seen[-1]["status"] not in TERMINAL_VALUES:
            query = f"orderId={order_id}" + (f"&lastSeq={seen[-1]['seq']}" if seen else "")
            conn = await client.connect(query)
            seen += await read_frames(conn, count=rng.randint(1, 3))
            conn.close()
        return seen

    order_ids = [await client.submit() for _ in range(15)]
    streams = await asyncio.gather(*(watch_with_reconnects(oid) for oid in order_ids))
    for order_id, frames in zip(order_ids, streams, strict=True):
        assert_one_clean_stream(frames)
        _, body = await client.get_json(f"/api/orders/{order_id}")
        assert body["events"] == frames


@pytest.mark.gen_test(timeout=90)
async def test_redis_crash_mid_load_loses_no_order_and_executes_nothing_twice(
    make_config, engine_process, tmp_path
):
    redis = RedisServer(persistent=True).start()
    try:
        ledger = tmp_path / "ledger.jsonl"
        config = make_config(
            engine={"simulation": {"latency_scale": 1}, "worker": {"visibility_timeout_seconds": 1}},
            venues=venues(ledger, swap_latency_ms=600),
        )
        engine = engine_process(config, role="all", redis_url=redis.url)
        client = EngineClient(engine.base_url)
        order_ids = [await client.submit() for _ in range(10)]
        sockets = [await client.connect(f"orderId={oid}") for oid in order_ids]
        streams = await asyncio.gather(*(read_frames(c, until="submitted") for c in sockets))

        mark = len(engine.lines)
        redis.kill()
        engine.wait_for_log("updates channel lost", start=mark)
        code, body = await client.post_order({"fromToken": "SOL", "toToken": "USDC", "amount": 1})
        assert code == 503 and "Redis" in body["error"]
        outage_notices = [json.loads(await c.read_message()) for c in sockets]
        assert all(n["status"] == "error" and "interrupted" in n["error"] for n in outage_notices)
        # Keep Redis down until every swap has landed and failed to record its confirmation.
        for order_id in order_ids:
            engine.wait_for_log(f"orderId={order_id}: Redis error", start=mark)

        redis.start()
        rest = await asyncio.gather(*(read_frames(c) for c in sockets))
        for before, after in zip(streams, rest, strict=True):
            assert_one_clean_stream(before + after)
            assert after[-1]["status"] == "confirmed"
        assert_executed_once_each(ledger, order_ids)
        assert (await client.run_order())[-1]["status"] == "confirmed"  # and it takes new orders
    finally:
        redis.stop()


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_closes_sockets_as_going_away_and_hands_back_unfinished_orders(
    make_config, engine_process, tmp_path
):
    ledger = tmp_path / "ledger.jsonl"
    config = make_config(
        engine={
            "simulation": {"latency_scale": 1},
            # A handed-back swap is resent once its deadline (the swap timeout) has passed.
            "worker": {
                "shutdown_grace_seconds": 0.2,
                "visibility_timeout_seconds": 30,
                "swap_timeout_ms": 2500,
            },
        },
        venues=venues(ledger, swap_latency_ms=1500),
    )
    first = engine_process(config, role="all")
    client = EngineClient(first.base_url)
    order_ids = [await client.submit() for _ in range(5)]
    sockets = [await client.connect(f"orderId={oid}") for oid in order_ids]
    streams = await asyncio.gather(*(read_frames(c, until="submitted") for c in sockets))

    first.signal(signal.SIGTERM)
    tails = await asyncio.gather(*(read_frames(c) for c in sockets))
    assert all(tail == [] for tail in tails)
    assert {c.close_code for c in sockets} == {1001}
    assert first.wait() == 0
    first.wait_for_log("handed back 5 unfinished orders")

    # A successor takes the orders over at once (not after the 30 s visibility timeout).
    second = engine_process(config, role="all")
    client = EngineClient(second.base_url)
    rest = await asyncio.gather(
        *(client.frames(oid, last_seq=s[-1]["seq"]) for oid, s in zip(order_ids, streams, strict=True))
    )
    for before, after in zip(streams, rest, strict=True):
        assert_one_clean_stream(before + after)
        assert after[-1]["status"] == "confirmed"
    assert_executed_once_each(ledger, order_ids)


@pytest.mark.parametrize("engine_overrides", [{"orders": {"retention_seconds": 120}}])
@pytest.mark.gen_test(timeout=15)
async def test_finished_orders_expire_from_redis_after_the_retention(engine_overrides, client, engine):
    order_id = await client.submit()
    await client.frames(order_id)
    for key in (engine.keys.order(order_id), engine.keys.events(order_id)):
        assert 0 < await engine.redis.ttl(key) <= 120


TWELVE_FAILING_VENUES = {
    "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
    "venues": {
        f"venue{i}": {
            "plugin": "mock-raydium",
            "failure_rate": 1,
            "quote_latency_ms": 0,
            "build_latency_ms": 0,
            "swap_latency_ms": 20,
        }
        for i in range(12)
    },
}


@pytest.mark.parametrize("venues_config", [TWELVE_FAILING_VENUES])
@pytest.mark.parametrize(
    "engine_overrides",
    [
        {
            "server": {"websocket_max_buffer_bytes": 1024, "websocket_stall_seconds": 0.2},
            "worker": {"max_attempts": 40, "backoff_base_ms": 0, "backoff_max_ms": 0},
            "simulation": {"latency_scale": 1},
        }
    ],
)
@pytest.mark.gen_test(timeout=20)
async def test_a_client_that_stops_reading_is_dropped_not_buffered_forever(
    venues_config, engine_overrides, client, engine, connections, http_port, caplog
):
    # 40 attempts over 12 venues, 20 ms each: some 75 KiB of frames in under a
    # second, far more than the (shrunk) kernel buffers of a reader that never reads.
    order_id = await client.submit()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", http_port))
    key = base64.b64encode(os.urandom(16)).decode()
    stalled.sendall(
        f"GET /ws?orderId={order_id} HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while not connections.sockets.get(order_id):
            assert asyncio.get_running_loop().time() < deadline, "the stalled socket never opened"
            await asyncio.sleep(0.002)
        (handler,) = connections.sockets[order_id]
        handler.ws_connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        frames = await client.frames(order_id)  # a healthy reader on the same order
        assert frames[-1]["status"] == "failed" and frames[-1]["attempts"] == 40
        deadline = asyncio.get_running_loop().time() + 5
        while "reads too slowly" not in caplog.text:
            assert asyncio.get_running_loop().time() < deadline, "the stalled client was never dropped"
            await asyncio.sleep(0.02)
        assert f"client of orderId={order_id} reads too slowly" in caplog.text
    finally:
        stalled.close()
