"""The order queue on a real Redis: a stream, one consumer group, ack, takeover, heartbeat.

XAUTOCLAIM replies with two elements on Redis 6.2 and three on 7.x, so every
test runs on the session's Redis and, when the machine has one, on a private
server of the other major version as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tornado_engine.storage.batching import CommandBatcher
from tornado_engine.storage.connection import connect
from tornado_engine.storage.keys import Keys
from tornado_engine.storage.queue import OrderQueue, QueueEntry

SYSTEM_REDIS = "/usr/bin/redis-server"


def _version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    return out.split("v=", 1)[1].split()[0]


class _OtherRedis:
    """A private redis-server of another version, on a unix socket (never port 6379)."""

    def __init__(self, binary: str) -> None:
        self._dir = tempfile.mkdtemp(prefix="te-redis-alt-")
        sock = os.path.join(self._dir, "redis.sock")
        self.url = f"unix://{sock}"
        self._process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no"],
            cwd=self._dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(unix_socket_path=sock)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(f"{binary} did not start") from None
                time.sleep(0.01)
        client.close()

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="module", params=["session", "other-version"])
def redis_url(request, redis_server) -> Iterator[str]:
    if request.param == "session":
        yield redis_server.url
        return
    session_version = redis.Redis.from_url(redis_server.url).info("server")["redis_version"]
    if (
        not Path(SYSTEM_REDIS).exists()
        or _version(SYSTEM_REDIS).split(".")[0] == session_version.split(".")[0]
    ):
        pytest.skip("no redis-server of another major version on this machine")
    server = _OtherRedis(SYSTEM_REDIS)
    yield server.url
    server.stop()


@pytest.fixture(params=["direct", "batched"])
def queue(request, io_loop, redis_url) -> Iterator[OrderQueue]:
    """The queue as tests drive it, and as the engine builds it (commands batched across orders)."""
    client, blocking = connect(redis_url), connect(redis_url, blocking=True)
    keys = Keys(f"tq{uuid.uuid4().hex[:10]}")
    batcher = CommandBatcher(client) if request.param == "batched" else None
    yield OrderQueue(client, blocking, keys, batcher)

    async def close() -> None:
        await client.delete(keys.queue)
        await client.aclose()
        await blocking.aclose()

    io_loop.run_sync(close)


async def pending(queue: OrderQueue) -> list[dict]:
    return await queue.redis.xpending_range(queue.name, queue.keys.group, "-", "+", 100)


async def idle_ms(queue: OrderQueue, entry_id: str) -> int:
    [info] = await queue.redis.xpending_range(queue.name, queue.keys.group, entry_id, entry_id, 1)
    return info["time_since_delivered"]


async def make_idle(queue: OrderQueue, consumer: str, entry_ids: list[str], ms: int) -> None:
    """Age entries without waiting: XCLAIM ... IDLE sets their idle time."""
    await queue.redis.xclaim(
        queue.name, queue.keys.group, consumer, min_idle_time=0, message_ids=entry_ids, idle=ms, justid=True
    )


# -- enqueue / read / ack ----------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_enqueued_order_is_read_with_its_entry_id(queue):
    await queue.ensure_group()
    entry_id = await queue.enqueue("order-1")
    assert await queue.read("c1", count=10, block_ms=100) == [QueueEntry(entry_id, "order-1")]


@pytest.mark.gen_test(timeout=15)
async def test_read_returns_entries_in_enqueue_order_up_to_count(queue):
    await queue.ensure_group()
    ids = [await queue.enqueue(f"order-{i}") for i in range(5)]
    first = await queue.read("c1", count=3, block_ms=100)
    rest = await queue.read("c1", count=10, block_ms=100)
    assert [e.entry_id for e in first + rest] == ids
    assert [e.order_id for e in first] == ["order-0", "order-1", "order-2"]


@pytest.mark.gen_test(timeout=15)
async def test_read_on_an_empty_queue_returns_nothing_after_the_block(queue):
    await queue.ensure_group()
    started = time.monotonic()
    assert await queue.read("c1", count=10, block_ms=50) == []
    assert time.monotonic() - started >= 0.04


@pytest.mark.gen_test(timeout=15)
async def test_each_entry_goes_to_one_consumer_only(queue):
    await queue.ensure_group()
    await queue.enqueue("order-1")
    assert len(await queue.read("c1", count=10, block_ms=50)) == 1
    assert await queue.read("c2", count=10, block_ms=50) == []


@pytest.mark.gen_test(timeout=15)
async def test_read_entry_stays_pending_until_acked(queue):
    await queue.ensure_group()
    entry_id = await queue.enqueue("order-1")
    await queue.read("c1", count=10, block_ms=50)
    assert [(p["message_id"], p["consumer"]) for p in await pending(queue)] == [(entry_id, "c1")]


@pytest.mark.gen_test(timeout=15)
async def test_ack_removes_the_entry_from_pending_and_deletes_it(queue):
    await queue.ensure_group()
    entry_id = await queue.enqueue("order-1")
    await queue.enqueue("order-2")
    await queue.read("c1", count=1, block_ms=50)
    await queue.ack(entry_id)
    assert await pending(queue) == []
    assert await queue.depth() == 1
    assert [e[0] for e in await queue.redis.xrange(queue.name)] != [entry_id]


@pytest.mark.gen_test(timeout=15)
async def test_depth_counts_entries_not_yet_acked(queue):
    await queue.ensure_group()
    assert await queue.depth() == 0
    for i in range(3):
        await queue.enqueue(f"order-{i}")
    assert await queue.depth() == 3


# -- the consumer group ------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_ensure_group_is_idempotent(queue):
    await queue.ensure_group()
    await queue.ensure_group()
    groups = await queue.redis.xinfo_groups(queue.name)
    assert [g["name"] for g in groups] == [queue.keys.group]


@pytest.mark.gen_test(timeout=15)
async def test_ensure_group_does_not_rewind_a_group_in_use(queue):
    await queue.ensure_group()
    await queue.enqueue("order-1")
    await queue.read("c1", count=10, block_ms=50)
    await queue.ensure_group()
    assert await queue.read("c2", count=10, block_ms=50) == []


@pytest.mark.gen_test(timeout=15)
async def test_entries_enqueued_before_the_group_exists_are_still_read(queue):
    ids = [await queue.enqueue("early-1"), await queue.enqueue("early-2")]
    await queue.ensure_group()
    entries = await queue.read("c1", count=10, block_ms=50)
    assert [(e.entry_id, e.order_id) for e in entries] == list(zip(ids, ["early-1", "early-2"], strict=True))


# -- takeover ----------------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_claim_stale_takes_over_another_consumers_entries(queue):
    await queue.ensure_group()
    ids = [await queue.enqueue(f"order-{i}") for i in range(2)]
    await queue.read("dead", count=10, block_ms=50)
    claimed = await queue.claim_stale("alive", min_idle_ms=0, count=10)
    assert [(e.entry_id, e.order_id) for e in claimed] == list(zip(ids, ["order-0", "order-1"], strict=True))
    assert {p["consumer"] for p in await pending(queue)} == {"alive"}


@pytest.mark.gen_test(timeout=15)
async def test_claim_stale_leaves_entries_idle_less_than_min_idle(queue):
    await queue.ensure_group()
    await queue.enqueue("order-1")
    await queue.read("busy", count=10, block_ms=50)
    assert await queue.claim_stale("other", min_idle_ms=60_000, count=10) == []
    assert {p["consumer"] for p in await pending(queue)} == {"busy"}


@pytest.mark.gen_test(timeout=15)
async def test_claim_stale_takes_only_entries_idle_long_enough(queue):
    await queue.ensure_group()
    stale = await queue.enqueue("stale")
    fresh = await queue.enqueue("fresh")
    await queue.read("dead", count=10, block_ms=50)
    await make_idle(queue, "dead", [stale], 120_000)
    claimed = await queue.claim_stale("alive", min_idle_ms=60_000, count=10)
    assert claimed == [QueueEntry(stale, "stale")]
    owners = {p["message_id"]: p["consumer"] for p in await pending(queue)}
    assert owners == {stale: "alive", fresh: "dead"}


@pytest.mark.gen_test(timeout=15)
async def test_claim_stale_respects_count(queue):
    await queue.ensure_group()
    for i in range(5):
        await queue.enqueue(f"order-{i}")
    await queue.read("dead", count=10, block_ms=50)
    assert len(await queue.claim_stale("alive", min_idle_ms=0, count=2)) == 2


@pytest.mark.gen_test(timeout=15)
async def test_claim_stale_finds_a_stale_entry_behind_many_live_ones(queue):
    """A dead worker's order must be taken over even when live workers hold older entries."""
    await queue.ensure_group()
    for i in range(50):
        await queue.enqueue(f"live-{i}")
    await queue.read("alive", count=50, block_ms=50)
    stale = await queue.enqueue("stale")
    await queue.read("dead", count=10, block_ms=50)
    await make_idle(queue, "dead", [stale], 120_000)
    assert await queue.claim_stale("rescuer", min_idle_ms=60_000, count=1) == [QueueEntry(stale, "stale")]


@pytest.mark.gen_test(timeout=15)
async def test_claim_stale_skips_entries_deleted_from_the_stream(queue):
    await queue.ensure_group()
    gone = await queue.enqueue("gone")
    kept = await queue.enqueue("kept")
    await queue.read("dead", count=10, block_ms=50)
    await queue.redis.xdel(queue.name, gone)
    assert await queue.claim_stale("alive", min_idle_ms=0, count=10) == [QueueEntry(kept, "kept")]


@pytest.mark.gen_test(timeout=15)
async def test_claimed_entry_can_be_acked_by_its_new_owner(queue):
    await queue.ensure_group()
    await queue.enqueue("order-1")
    await queue.read("dead", count=10, block_ms=50)
    [entry] = await queue.claim_stale("alive", min_idle_ms=0, count=10)
    await queue.ack(entry.entry_id)
    assert await pending(queue) == []
    assert await queue.depth() == 0


# -- heartbeat ---------------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_touch_resets_the_idle_time(queue):
    await queue.ensure_group()
    entry_id = await queue.enqueue("order-1")
    await queue.read("c1", count=10, block_ms=50)
    await make_idle(queue, "c1", [entry_id], 120_000)
    assert await idle_ms(queue, entry_id) >= 120_000
    await queue.touch("c1", [entry_id])
    assert await idle_ms(queue, entry_id) < 5_000


@pytest.mark.gen_test(timeout=15)
async def test_touched_entry_is_not_claimed_as_stale(queue):
    await queue.ensure_group()
    entry_id = await queue.enqueue("order-1")
    await queue.read("c1", count=10, block_ms=50)
    await make_idle(queue, "c1", [entry_id], 120_000)
    await queue.touch("c1", [entry_id])
    assert await queue.claim_stale("c2", min_idle_ms=60_000, count=10) == []
    assert {p["consumer"] for p in await pending(queue)} == {"c1"}


@pytest.mark.gen_test(timeout=15)
async def test_touch_with_no_entries_is_a_no_op(queue):
    await queue.ensure_group()
    await queue.touch("c1", [])
    assert await pending(queue) == []


@pytest.mark.gen_test(timeout=15)
async def test_hand_back_makes_entries_claimable_at_once(queue):
    await queue.ensure_group()
    entry_id = await queue.enqueue("order-1")
    await queue.read("stopping", count=10, block_ms=50)
    await queue.hand_back("stopping", [entry_id], visibility_timeout_s=60)
    assert await queue.claim_stale("other", min_idle_ms=60_000, count=10) == [QueueEntry(entry_id, "order-1")]


# -- consumers that left -------------------------------------------------------------------------------


async def consumers(queue: OrderQueue) -> dict[str, int]:
    return {c["name"]: c["pending"] for c in await queue.redis.xinfo_consumers(queue.name, queue.keys.group)}


async def served_and_done(queue: OrderQueue, consumer: str) -> None:
    """``consumer`` joins the group by reading an entry, and acknowledges it."""
    await queue.enqueue(f"order-for-{consumer}")
    [entry] = await queue.read(consumer, count=1, block_ms=10)
    await queue.ack(entry.entry_id)


@pytest.mark.gen_test(timeout=15)
async def test_a_consumer_that_holds_nothing_leaves_the_group(queue):
    await queue.ensure_group()
    await served_and_done(queue, "leaving")
    assert "leaving" in await consumers(queue)
    assert await queue.leave("leaving") is True
    assert "leaving" not in await consumers(queue)


@pytest.mark.gen_test(timeout=15)
async def test_a_consumer_that_holds_entries_stays_until_they_are_taken_over(queue):
    await queue.ensure_group()
    entry_id = await queue.enqueue("order-1")
    await queue.read("holder", count=10, block_ms=10)
    assert await queue.leave("holder") is False
    assert (await consumers(queue))["holder"] == 1
    await make_idle(queue, "holder", [entry_id], 60_000)
    assert [e.entry_id for e in await queue.claim_stale("heir", 1_000, 10)] == [entry_id]
    assert await queue.leave("holder") is True


@pytest.mark.gen_test(timeout=15)
async def test_departed_consumers_are_removed_but_not_the_caller_nor_one_that_holds_entries(queue):
    await queue.ensure_group()
    for name in ("dead-1", "dead-2", "me"):
        await served_and_done(queue, name)
    await queue.enqueue("order-1")
    await queue.read("holder", count=10, block_ms=10)
    assert await queue.remove_departed(60_000, keep="me") == []  # none idle that long
    assert sorted(await queue.remove_departed(0, keep="me")) == ["dead-1", "dead-2"]
    assert await consumers(queue) == {"holder": 1, "me": 0}
