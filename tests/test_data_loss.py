"""Redis that loses its data: noticed, reported, and handled, never silent.

Each test gets its own redis-server (it flushes, restarts or rewinds it). The
engine's background check is stopped where a test drives the checks itself,
so what is measured is the mechanism named in the test, not a lucky timer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from typing import Any

import pytest
from redis.exceptions import RedisError

from tornado_engine import Quote, QuoteRequest, SwapRequest, SwapResult, Venue, VenueSettings, hookimpl
from tornado_engine.testing import EngineClient, RedisServer
from tornado_engine.web.socket import CLOSE_DATA_LOST

from .test_processes import ORDERS, ledger_entries, venues, wait_for_ledger

WAITING = 5
TOKENS = {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}}


class GatedVenue(Venue):
    """Its swaps wait at a gate the test opens; it counts every swap call (it is not idempotent)."""

    def __init__(self, settings: VenueSettings) -> None:
        self.name = settings.name
        self.tokens = settings.tokens
        self.swaps = 0
        self.gate = asyncio.Event()

    async def quote(self, request: QuoteRequest) -> Quote:
        return Quote(self.name, 140.0, 0.003, request.amount * 140.0 * 0.997)

    async def build(self, request: SwapRequest) -> None:
        return None

    async def swap(self, request: SwapRequest) -> SwapResult:
        self.swaps += 1
        await self.gate.wait()
        return SwapResult("tx" + request.idempotency_key, request.quote.price, request.quote.amount_out)

    async def status(self, idempotency_key: str) -> SwapResult | None:
        return None


class GatedVenues:
    def __init__(self) -> None:
        self.venue: GatedVenue | None = None

    @hookimpl
    def register_venues(self, register: Any) -> None:
        register("test-gated", self._make)

    def _make(self, settings: VenueSettings) -> GatedVenue:
        self.venue = GatedVenue(settings)
        return self.venue


@pytest.fixture
def redis_server():
    """A private Redis per test: these tests empty, restart and rewind it."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def plugin() -> GatedVenues:
    return GatedVenues()


@pytest.fixture
def extra_plugins(plugin) -> list:
    return [plugin]


@pytest.fixture
def venues_config() -> dict:
    return {"tokens": TOKENS, "venues": {"gated": {"plugin": "test-gated"}}}


@pytest.fixture
def client(engine, http_server, base_url) -> EngineClient:
    return EngineClient(base_url)


@pytest.fixture
def manual_checks(engine, io_loop):
    """Only the test's own checks (and the store's) look at the epoch: no timer races them."""
    io_loop.run_sync(engine.data_set.stop)
    return engine.data_set


async def read_until(conn, status: str) -> list[dict]:
    frames = []
    while True:
        message = await asyncio.wait_for(conn.read_message(), 10)
        assert message is not None, f"closed before {status}: {frames}"
        frames.append(json.loads(message))
        if frames[-1]["status"] == status:
            return frames


async def order_in_its_swap(client: EngineClient, plugin: GatedVenues):
    """An order the worker holds, stopped inside the venue's swap; its open socket."""
    order_id = await client.submit()
    conn = await client.connect(f"orderId={order_id}")
    frames = await read_until(conn, "submitted")
    assert plugin.venue is not None
    while plugin.venue.swaps == 0:  # submitted is recorded just before the call
        await asyncio.sleep(0.001)
    return order_id, conn, frames


async def wait_until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


# -- noticing it ---------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=20)
async def test_flushall_is_noticed_logged_counted_and_shown_in_health(
    client, engine, manual_checks, redis_server, caplog
):
    code, health = await client.get_json("/health")
    assert (code, health["redisData"]) == (200, {"state": "intact"})
    assert await manual_checks.check() is None  # nothing happened: no loss

    await engine.redis.flushall()
    with caplog.at_level(logging.CRITICAL, logger="tornado_engine.storage.epoch"):
        loss = await manual_checks.check()

    assert loss is not None and "emptied" in loss.reason and "FLUSHALL" in loss.reason
    assert any("REDIS DATA LOSS" in r.message and r.levelno == logging.CRITICAL for r in caplog.records)
    code, health = await client.get_json("/health")
    assert code == 200
    assert health["redisData"]["state"] == "lost"
    assert health["redisData"]["losses"] == 1
    assert "FLUSHALL" in health["redisData"]["last"]["reason"]
    metrics = (await engine.scrape_metrics()).decode()
    assert "tornado_engine_redis_data_losses_total 1.0" in metrics
    assert await manual_checks.check() is None  # the new data set is now the known one


@pytest.mark.gen_test(timeout=20)
async def test_restart_without_persistence_is_noticed(engine, manual_checks, redis_server):
    redis_server.kill()
    redis_server.start()  # no persistence: it comes back empty
    loss = await check_after_reconnect(manual_checks)
    assert loss is not None and "restarted without persistence" in loss.reason


@pytest.mark.gen_test(timeout=20)
async def test_restart_from_an_older_snapshot_is_noticed(engine, manual_checks, redis_server):
    await engine.redis.save()  # an RDB snapshot, taken now ...
    assert await manual_checks.check() is None  # ... and written over afterwards
    redis_server.kill()
    redis_server.start()  # loads the snapshot: the epoch is there, its beat is older
    loss = await check_after_reconnect(manual_checks)
    assert loss is not None and "older snapshot" in loss.reason


@pytest.mark.gen_test(timeout=20)
async def test_restart_that_kept_the_data_is_not_a_loss(engine, manual_checks, redis_server):
    await engine.redis.save()
    redis_server.kill()
    redis_server.start()
    assert await check_after_reconnect(manual_checks) is None
    assert manual_checks.losses == []


async def check_after_reconnect(watch):
    """The first command after a restart may meet the old, dead connection: check again."""
    for _ in range(5):
        try:
            return await watch.check()
        except (RedisError, OSError) as exc:
            last = exc
    raise AssertionError(f"Redis did not come back: {last}")


# -- handling it ---------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_after_a_loss_sockets_get_4410_and_the_worker_records_its_order_again(
    client, engine, plugin, manual_checks
):
    order_id, conn, frames = await order_in_its_swap(client, plugin)
    await engine.redis.flushall()
    assert await manual_checks.check() is not None

    error = json.loads(await asyncio.wait_for(conn.read_message(), 10))
    assert error["status"] == "error" and "Redis lost its data" in error["error"]
    assert "seq" not in error
    assert await asyncio.wait_for(conn.read_message(), 10) is None
    assert conn.close_code == CLOSE_DATA_LOST

    # The worker wrote the record again before the sockets were told: a reconnect finds it.
    code, body = await client.get_json(f"/api/orders/{order_id}")
    assert code == 200, body
    assert (body["status"], body["order"]["amount"]) == ("submitted", 1)
    assert [e["seq"] for e in body["events"]] == [frames[-1]["seq"]]

    plugin.venue.gate.set()
    rest = await client.frames(order_id, last_seq=frames[-1]["seq"])
    assert [f["status"] for f in rest] == ["confirmed"]
    assert rest[0]["seq"] == frames[-1]["seq"] + 1
    assert client.last_close[0] == 1000
    assert plugin.venue.swaps == 1
    code, body = await client.get_json(f"/api/orders/{order_id}")
    assert (code, body["status"]) == (200, "confirmed")


@pytest.mark.gen_test(timeout=30)
async def test_a_worker_event_that_finds_its_record_gone_writes_it_again(
    client, engine, plugin, manual_checks
):
    engine.store.on_record_missing = None  # the store's own rewrite only, no data-set check behind it
    order_id, conn, _ = await order_in_its_swap(client, plugin)
    await engine.redis.flushall()  # no check runs: the worker's next event is the first to see it
    plugin.venue.gate.set()

    async def written_again() -> bool:
        return "restoredAt" in (await engine.store.state(order_id) or {})

    await wait_until(written_again, "the record written again")
    code, body = await client.get_json(f"/api/orders/{order_id}")
    assert code == 200, body
    assert body["status"] == "confirmed" and body["order"]["amount"] == 1
    assert manual_checks.losses == []
    assert plugin.venue.swaps == 1
    conn.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_worker_event_that_finds_its_record_gone_raises_the_alarm(
    client, engine, plugin, manual_checks
):
    _, conn, _ = await order_in_its_swap(client, plugin)
    await engine.redis.flushall()  # no timer checks: the worker's next event is the first to see it
    plugin.venue.gate.set()

    async def alarmed() -> bool:
        return len(manual_checks.losses) == 1

    await wait_until(alarmed, "the alarm")
    assert "emptied" in manual_checks.losses[0].reason
    assert plugin.venue.swaps == 1
    conn.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_partial_record_is_a_clear_503_not_a_500(client, engine):
    order_id = "3f1c2a4e-9b7d-4c1e-8f00-123456789abc"
    await engine.redis.hset(engine.keys.order(order_id), mapping={"status": "confirmed", "seq": 5})
    code, body = await client.get_json(f"/api/orders/{order_id}")
    assert code == 503
    assert body["field"] == "orderId"
    assert "incomplete" in body["error"] and "Redis lost data" in body["error"]
    assert "Traceback" not in json.dumps(body)


# -- with real processes: Redis restarted empty under load ---------------------------------------


@pytest.mark.gen_test(timeout=60)
async def test_redis_restarted_empty_under_load_loses_no_order_a_worker_holds(
    make_config, engine_process, redis_server, tmp_path
):
    """API and worker processes; Redis restarted without persistence while every order's swap
    is in flight. Each client is told (4410, or its order had finished); each order a worker
    held ends recorded, executed once; no answer is a 500."""
    ledger = tmp_path / "ledger.jsonl"
    config = make_config(
        engine={"simulation": {"latency_scale": 1}}, venues=venues(ledger, swap_latency_ms=1500)
    )
    api = engine_process(config, role="api")
    worker = engine_process(config, role="worker")
    client = EngineClient(api.base_url)
    order_ids = [await client.submit() for _ in range(ORDERS)]
    sockets = [await client.connect(f"orderId={oid}") for oid in order_ids]
    streams = await asyncio.gather(*(read_until(conn, "submitted") for conn in sockets))
    waiting_ids = [await client.submit() for _ in range(WAITING)]  # their clients never came

    redis_server.kill()
    redis_server.start()  # empty
    api.wait_for_log("REDIS DATA LOSS")
    worker.wait_for_log("REDIS DATA LOSS")

    for conn, frames in zip(sockets, streams, strict=True):
        while (message := await asyncio.wait_for(conn.read_message(), 15)) is not None:
            frames.append(json.loads(message))
        told = conn.close_code == CLOSE_DATA_LOST and "Redis lost its data" in frames[-1]["error"]
        finished = conn.close_code == 1000 and frames[-1]["status"] == "confirmed"
        assert told or finished, (conn.close_code, frames[-1])
    await wait_for_ledger(ledger, ORDERS)
    for order_id, frames in zip(order_ids, streams, strict=True):
        seen = max(f.get("seq", 0) for f in frames)
        rest = await client.frames(order_id, last_seq=seen)
        assert (frames + rest)[-1]["status"] == "confirmed", rest
        code, body = await client.get_json(f"/api/orders/{order_id}")
        assert (code, body["status"]) == (200, "confirmed"), body
    executed = Counter(entry["key"].split(":")[0] for entry in ledger_entries(ledger))
    assert sorted(executed) == sorted(order_ids) and set(executed.values()) == {1}
    for order_id in waiting_ids:  # they waited in Redis: gone with it, and said so (no 500)
        code, body = await client.get_json(f"/api/orders/{order_id}")
        assert code == 404 and "Redis lost its data" in body["error"], body
        [error] = await client.frames(order_id)
        assert "Redis lost its data" in error["error"] and client.last_close[0] == 4404
    code, health = await client.get_json("/health")
    assert health["redisData"]["state"] == "lost"


@pytest.mark.gen_test(timeout=20)
async def test_writing_a_record_again_never_overwrites_a_later_event(engine):
    """The worker's rewrite may race its own next event: what that event wrote stays."""
    order_id = "7c1d0e2a-5b4f-4a3e-9d21-abcdefabcdef"
    order = '{"orderId": "x"}'
    engine.store.hold(order_id, {"order": order, "status": "submitted", "seq": "4", "plan": "p1"})
    await engine.redis.hset(engine.keys.order(order_id), mapping={"status": "confirmed", "seq": 5})
    assert await engine.store.restore(order_id) is True
    state = await engine.store.state(order_id)
    assert (state["status"], state["seq"], state["order"], state["plan"]) == ("confirmed", "5", order, "p1")
    engine.store.release(order_id)


@pytest.mark.gen_test(timeout=20)
async def test_a_queued_order_whose_record_lost_its_order_is_dropped_not_crashed_on(engine):
    order_id = "0b5e6c7d-1a2b-4c3d-8e9f-0123456789ab"
    await engine.redis.hset(engine.keys.order(order_id), mapping={"status": "routing", "seq": 2})
    await engine.queue.enqueue(order_id)  # as a takeover finds it: no order in the entry

    async def drained() -> bool:
        return await engine.queue.depth() == 0

    await wait_until(drained, "the worker to drop the entry")
