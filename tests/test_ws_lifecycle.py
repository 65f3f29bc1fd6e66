"""The WebSocket journey: handshake, hand-off to the queue, streamed frames, close."""

from __future__ import annotations

import asyncio
import datetime
import json

import pytest

from tornado_engine.orders.statuses import TERMINAL_VALUES

HAPPY_PATH = ["pending", "routing", "building", "submitted", "confirmed"]


@pytest.fixture
def engine_overrides() -> dict:
    """The in-memory waiting store (the embedded-Redis default): these tests look into it."""
    return {"orders": {"waiting_store": "memory"}}


def assert_well_formed(frames: list[dict], order_id: str) -> None:
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    for frame in frames:
        assert frame["orderId"] == order_id
        ts = datetime.datetime.fromisoformat(frame["ts"].replace("Z", "+00:00"))
        assert ts.tzinfo is not None and ts.utcoffset() == datetime.timedelta(0)


@pytest.mark.gen_test(timeout=15)
async def test_market_order_streams_every_stage_then_closes_normally(client):
    order_id = await client.submit()
    frames = await client.frames(order_id)
    assert [f["status"] for f in frames] == HAPPY_PATH
    assert_well_formed(frames, order_id)
    assert client.last_close[0] == 1000


@pytest.mark.gen_test(timeout=15)
async def test_stage_frames_carry_the_seed_fields(client):
    frames = {f["status"]: f for f in await client.run_order()}
    assert "starting soon" in frames["pending"]["message"]
    assert "Starting execution" in frames["pending"]["message"]  # what the original's clients match
    routing = frames["routing"]
    assert routing["bestDex"] in {"raydium", "meteora"}
    assert {q["dex"] for q in routing["quotes"]} == {"raydium", "meteora"}
    best = max(routing["quotes"], key=lambda q: q["amountOut"])
    assert (routing["bestDex"], routing["bestPrice"]) == (best["dex"], best["price"])
    assert frames["building"]["dex"] == frames["submitted"]["dex"] == routing["bestDex"]
    confirmed = frames["confirmed"]
    assert confirmed["dex"] == routing["bestDex"]
    assert confirmed["txHash"] and isinstance(confirmed["executionPrice"], float)


@pytest.mark.gen_test(timeout=15)
async def test_order_waits_in_the_store_until_its_socket_opens(client, engine):
    order_id = await client.submit()
    assert order_id in engine.waiting
    assert not await engine.store.exists(order_id)
    assert await engine.queue.depth() == 0
    await client.frames(order_id)
    assert order_id not in engine.waiting
    assert (await engine.store.state(order_id))["status"] == "confirmed"


@pytest.mark.gen_test(timeout=15)
async def test_pending_frame_is_sent_before_the_order_is_queued(client, engine):
    order_id = await client.submit()
    conn = await client.connect(f"orderId={order_id}")
    first = json.loads(await conn.read_message())
    assert (first["status"], first["seq"]) == ("pending", 1)
    rest = []
    while (message := await conn.read_message()) is not None:
        rest.append(json.loads(message)["status"])
    assert rest == HAPPY_PATH[1:]


@pytest.mark.gen_test(timeout=15)
async def test_missing_order_id_gets_an_error_frame_and_a_4400_close(client):
    conn = await client.connect("")
    frame = json.loads(await conn.read_message())
    assert frame["status"] == "error" and "orderId" in frame["error"]
    assert await conn.read_message() is None
    assert conn.close_code == 4400
    assert "orderId" in conn.close_reason


@pytest.mark.gen_test(timeout=15)
async def test_unknown_order_id_gets_an_error_frame_and_a_4404_close(client):
    conn = await client.connect("orderId=00000000-0000-4000-8000-000000000000")
    frame = json.loads(await conn.read_message())
    assert frame["status"] == "error" and "unknown orderId" in frame["error"]
    assert await conn.read_message() is None
    assert conn.close_code == 4404


@pytest.mark.gen_test(timeout=15)
async def test_bad_last_seq_gets_a_4400_close(client):
    order_id = await client.submit()
    conn = await client.connect(f"orderId={order_id}&lastSeq=-1")
    frame = json.loads(await conn.read_message())
    assert "lastSeq" in frame["error"]
    assert await conn.read_message() is None
    assert conn.close_code == 4400


@pytest.mark.gen_test(timeout=15)
async def test_two_sockets_on_one_order_get_the_same_stream(client):
    order_id = await client.submit()
    first = await client.connect(f"orderId={order_id}")
    second = await client.connect(f"orderId={order_id}")

    async def drain(conn):
        frames = []
        while (message := await conn.read_message()) is not None:
            frames.append(json.loads(message))
        return frames

    a, b = await drain(first), await drain(second)
    assert [f["status"] for f in a] == HAPPY_PATH
    assert a == b


@pytest.mark.gen_test(timeout=15)
async def test_socket_opened_after_the_order_finished_gets_the_whole_history(client):
    order_id = await client.submit()
    live = await client.frames(order_id)
    late = await client.frames(order_id)
    assert late == live
    assert client.last_close[0] == 1000


@pytest.mark.gen_test(timeout=15)
async def test_last_seq_replays_only_what_was_missed(client):
    order_id = await client.submit()
    full = await client.frames(order_id)
    rest = await client.frames(order_id, last_seq=2)
    assert rest == full[2:]


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("past_the_end", [0, 1, 50])
async def test_last_seq_at_or_past_the_end_of_a_finished_order_closes_normally(client, past_the_end):
    order_id = await client.submit()
    full = await client.frames(order_id)
    conn = await client.connect(f"orderId={order_id}&lastSeq={full[-1]['seq'] + past_the_end}")
    assert await asyncio.wait_for(conn.read_message(), 5) is None  # nothing left to send
    assert conn.close_code == 1000


@pytest.mark.gen_test(timeout=15)
async def test_get_order_returns_status_and_full_history(client):
    order_id = await client.submit(amount=2.5)
    code, waiting = await client.get_json(f"/api/orders/{order_id}")
    assert code == 200 and waiting["status"] == "pending" and waiting["events"] == []
    frames = await client.frames(order_id)
    code, body = await client.get_json(f"/api/orders/{order_id}")
    assert code == 200
    assert body["status"] == "confirmed"
    assert body["order"]["amount"] == 2.5
    assert body["events"] == frames
    assert body["events"][-1]["status"] in TERMINAL_VALUES


@pytest.mark.gen_test(timeout=15)
async def test_get_unknown_order_is_404_with_json_error(client):
    code, body = await client.get_json("/api/orders/nope")
    assert code == 404 and "nope" in body["error"]
