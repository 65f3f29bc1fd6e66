"""The waiting store: orders parked until their client connects, expired after the TTL."""

from __future__ import annotations

import asyncio
import time

import pytest

from tornado_engine.orders.order import Order
from tornado_engine.waiting.in_memory import MemoryWaitingStore


class FakeClock:
    """A monotonic clock the test moves by hand (time, not Redis, is what we fake)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_order(order_id: str = "o-1") -> Order:
    return Order(order_id=order_id, from_token="SOL", to_token="USDC", amount=1.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def expired() -> list[Order]:
    return []


@pytest.fixture
def store(clock, expired) -> MemoryWaitingStore:
    async def on_expired(order: Order) -> None:
        expired.append(order)

    return MemoryWaitingStore(ttl_seconds=60, on_expired=on_expired, clock=clock)


# -- put / peek / contains / len / clear -------------------------------------------------------------


def test_put_then_peek_returns_the_order_and_leaves_it(store):
    order = make_order()
    store.put(order)
    assert store.peek("o-1") is order
    assert store.peek("o-1") is order
    assert "o-1" in store
    assert len(store) == 1


def test_peek_and_contains_on_an_unknown_id(store):
    assert store.peek("nope") is None
    assert "nope" not in store
    assert len(store) == 0


def test_len_counts_waiting_orders(store):
    for i in range(3):
        store.put(make_order(f"o-{i}"))
    assert len(store) == 3


def test_clear_forgets_every_order(store):
    store.put(make_order("a"))
    store.put(make_order("b"))
    store.clear()
    assert len(store) == 0
    assert "a" not in store


# -- take / handed_off / restore / wait_for_handoff -------------------------------------------------


@pytest.mark.gen_test
async def test_take_removes_and_returns_the_order(store):
    order = make_order()
    store.put(order)
    assert store.take("o-1") is order
    assert "o-1" not in store
    assert len(store) == 0


@pytest.mark.gen_test
async def test_take_is_once_only(store):
    store.put(make_order())
    assert store.take("o-1") is not None
    assert store.take("o-1") is None


@pytest.mark.gen_test
async def test_take_of_an_unknown_id_is_none(store):
    assert store.take("nope") is None


@pytest.mark.gen_test
async def test_wait_for_handoff_is_none_when_nothing_is_being_handed_off(store):
    assert await store.wait_for_handoff("o-1") is None
    store.put(make_order())
    assert await store.wait_for_handoff("o-1") is None


@pytest.mark.gen_test
async def test_second_taker_waits_for_the_handoff_and_learns_it_succeeded(store):
    store.put(make_order())
    store.take("o-1")
    waiter = asyncio.ensure_future(store.wait_for_handoff("o-1"))
    await asyncio.sleep(0)
    assert not waiter.done()
    store.handed_off("o-1")
    assert await waiter is True
    assert await store.wait_for_handoff("o-1") is None


@pytest.mark.gen_test
async def test_restore_puts_the_order_back_and_tells_waiters_it_failed(store):
    order = make_order()
    store.put(order)
    store.take("o-1")
    waiter = asyncio.ensure_future(store.wait_for_handoff("o-1"))
    await asyncio.sleep(0)
    store.restore(order)
    assert await waiter is False
    assert store.peek("o-1") is order


@pytest.mark.gen_test
async def test_restore_starts_the_ttl_again(store, clock):
    order = make_order()
    store.put(order)
    clock.advance(59)
    store.take("o-1")
    store.restore(order)
    clock.advance(59)
    assert store.pop_expired() == []
    clock.advance(1)
    assert store.pop_expired() == [order]


@pytest.mark.gen_test
async def test_a_cancelled_waiter_does_not_cancel_the_handoff(store):
    store.put(make_order())
    store.take("o-1")
    first = asyncio.ensure_future(store.wait_for_handoff("o-1"))
    second = asyncio.ensure_future(store.wait_for_handoff("o-1"))
    await asyncio.sleep(0)
    first.cancel()
    store.handed_off("o-1")
    assert await second is True


def test_handed_off_for_an_unknown_id_is_harmless(store):
    store.handed_off("nope")
    store.handed_off("nope", ok=False)


# -- expiry ------------------------------------------------------------------------------------------


def test_pop_expired_returns_orders_past_their_deadline(store, clock):
    old, young = make_order("old"), make_order("young")
    store.put(old)
    clock.advance(30)
    store.put(young)
    clock.advance(29.9)
    assert store.pop_expired() == []
    clock.advance(0.1)
    assert store.pop_expired() == [old]
    assert "old" not in store
    assert "young" in store
    clock.advance(30)
    assert store.pop_expired() == [young]
    assert len(store) == 0


@pytest.mark.gen_test
async def test_pop_expired_does_not_return_taken_orders(store, clock):
    store.put(make_order())
    store.take("o-1")
    clock.advance(120)
    assert store.pop_expired() == []


@pytest.mark.gen_test
async def test_sweep_expires_and_reports_each_order_once(store, clock, expired):
    a, b = make_order("a"), make_order("b")
    store.put(a)
    store.put(b)
    assert await store.sweep() == 0
    clock.advance(60)
    assert await store.sweep() == 2
    assert sorted(o.order_id for o in expired) == ["a", "b"]
    assert await store.sweep() == 0
    assert len(expired) == 2


@pytest.mark.gen_test
async def test_sweep_logs_each_expiry_with_the_order_id(store, clock, caplog):
    store.put(make_order("abc"))
    clock.advance(60)
    await store.sweep()
    assert any(
        r.levelname == "WARNING" and "orderId=abc" in r.getMessage() and "expired" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.gen_test
async def test_sweep_survives_a_failing_expiry_callback(clock, caplog):
    async def broken(order: Order) -> None:
        raise ConnectionError("redis is down")

    store = MemoryWaitingStore(ttl_seconds=1, on_expired=broken, clock=clock)
    store.put(make_order("a"))
    store.put(make_order("b"))
    clock.advance(1)
    assert await store.sweep() == 2
    assert len(store) == 0
    failures = [r for r in caplog.records if r.levelname == "ERROR"]
    assert {("orderId=a" in r.getMessage(), "orderId=b" in r.getMessage()) for r in failures} == {
        (True, False),
        (False, True),
    }


@pytest.mark.gen_test
async def test_sweeper_task_expires_orders_by_itself(expired):
    async def on_expired(order: Order) -> None:
        expired.append(order)

    store = MemoryWaitingStore(ttl_seconds=0.05, on_expired=on_expired)
    store.start(interval=0.01)
    try:
        store.put(make_order())
        deadline = time.monotonic() + 5
        while not expired and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert [o.order_id for o in expired] == ["o-1"]
    finally:
        await store.stop()


@pytest.mark.gen_test
async def test_stop_is_idempotent():
    store = MemoryWaitingStore(ttl_seconds=1)
    store.start()
    await store.stop()
    await store.stop()


# -- expiry end to end -------------------------------------------------------------------------------


@pytest.fixture
def engine_overrides() -> dict:
    return {"orders": {"waiting_ttl_seconds": 0.2, "waiting_store": "memory"}}


async def wait_for_status(client, order_id: str, status: str, timeout: float = 5.0) -> dict:
    """Poll GET /api/orders/{id} until it reports ``status``; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        code, body = await client.get_json(f"/api/orders/{order_id}")
        if body.get("status") == status:
            return body
        assert time.monotonic() < deadline, f"still {body.get('status')!r} (HTTP {code}) after {timeout}s"
        await asyncio.sleep(0.02)


@pytest.mark.gen_test(timeout=15)
async def test_order_whose_client_never_connects_is_recorded_as_expired(client, engine):
    order_id = await client.submit(amount=3)
    body = await wait_for_status(client, order_id, "expired")
    assert order_id not in engine.waiting
    assert body["order"]["amount"] == 3
    [event] = body["events"]
    assert (event["orderId"], event["status"], event["seq"]) == (order_id, "expired", 1)
    assert event["error"] == "no client connected within 0.2s; the order was not executed"
    assert (await engine.store.state(order_id))["status"] == "expired"


@pytest.mark.gen_test(timeout=15)
async def test_expired_order_is_never_queued_or_executed(client, engine):
    order_id = await client.submit()
    await wait_for_status(client, order_id, "expired")
    assert await engine.queue.depth() == 0
    groups = await engine.redis.xinfo_groups(engine.keys.queue)
    assert [g["last-delivered-id"] for g in groups] == ["0-0"]
    events = await engine.store.history(order_id)
    assert [e.status for e in events] == ["expired"]


@pytest.mark.gen_test(timeout=15)
async def test_socket_opened_after_expiry_gets_the_expired_frame_then_a_normal_close(client):
    order_id = await client.submit()
    body = await wait_for_status(client, order_id, "expired")
    frames = await client.frames(order_id)
    assert frames == body["events"]
    assert [f["status"] for f in frames] == ["expired"]
    assert client.last_close[0] == 1000


@pytest.mark.gen_test(timeout=15)
async def test_order_whose_client_connects_in_time_does_not_expire(client):
    order_id = await client.submit()
    frames = await client.frames(order_id)
    assert frames[-1]["status"] == "confirmed"
    assert "expired" not in [f["status"] for f in frames]


# -- hand_off: the socket's way in -------------------------------------------------------------------


def recorder(calls: list[str], fail: bool = False):
    async def create(order: Order, frame: dict) -> None:
        calls.append(f"create {order.order_id} seq={frame['seq']}")
        if fail:
            raise ConnectionError("redis is down")

    return create


@pytest.mark.gen_test
async def test_hand_off_records_the_order_then_sends_the_pending_frame(store):
    store.put(make_order())
    calls: list[str] = []
    ok = await store.hand_off("o-1", {"seq": 1}, recorder(calls), lambda: calls.append("pending sent"))
    assert ok is True
    assert calls == ["create o-1 seq=1", "pending sent"]
    assert "o-1" not in store


@pytest.mark.gen_test
async def test_hand_off_whose_record_fails_sends_nothing(store):
    """Record before send: a client never holds a pending frame the record lacks."""
    store.put(make_order())
    sent: list[str] = []
    with pytest.raises(ConnectionError):
        await store.hand_off("o-1", {"seq": 1}, recorder([], fail=True), lambda: sent.append("pending"))
    assert sent == []


@pytest.mark.gen_test
async def test_hand_off_of_an_order_that_is_not_waiting_is_false(store):
    calls: list[str] = []
    assert await store.hand_off("nope", {"seq": 1}, recorder(calls), lambda: calls.append("sent")) is False
    assert calls == []


@pytest.mark.gen_test
async def test_failed_hand_off_puts_the_order_back_and_raises(store):
    store.put(make_order())
    with pytest.raises(ConnectionError):
        await store.hand_off("o-1", {"seq": 1}, recorder([], fail=True), lambda: None)
    assert "o-1" in store


@pytest.mark.gen_test
async def test_second_socket_waits_for_the_first_hand_off_to_finish(store):
    store.put(make_order())
    gate = asyncio.Event()
    recorded: list[str] = []

    async def slow_create(order: Order, frame: dict) -> None:
        await gate.wait()
        recorded.append(order.order_id)

    first = asyncio.ensure_future(store.hand_off("o-1", {"seq": 1}, slow_create, lambda: None))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(store.hand_off("o-1", {"seq": 1}, slow_create, lambda: None))
    await asyncio.sleep(0.01)
    assert not second.done()
    gate.set()
    assert await first is True
    assert await second is False
    assert recorded == ["o-1"]  # recorded once, and already there when the second socket looks


@pytest.mark.gen_test
async def test_socket_arriving_while_an_expiry_is_being_recorded_waits_for_it(clock):
    gate = asyncio.Event()
    recorded: list[str] = []

    async def slow_expiry(order: Order) -> None:
        await gate.wait()
        recorded.append(order.order_id)

    store = MemoryWaitingStore(ttl_seconds=1, on_expired=slow_expiry, clock=clock)
    store.put(make_order())
    clock.advance(1)
    sweeping = asyncio.ensure_future(store.sweep())
    await asyncio.sleep(0)
    arriving = asyncio.ensure_future(store.hand_off("o-1", {"seq": 1}, recorder([]), lambda: None))
    await asyncio.sleep(0.01)
    assert not arriving.done()  # it must not report "unknown order" before the expiry is in Redis
    gate.set()
    assert await arriving is False
    assert recorded == ["o-1"]
    assert await sweeping == 1
