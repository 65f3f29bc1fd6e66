"""Workers and the queue's consumer group: a worker that stops or dies does not stay in it."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture
def engine_overrides() -> dict:
    return {"worker": {"visibility_timeout_seconds": 0.3}}


async def consumer_names(engine) -> set[str]:
    replies = await engine.redis.xinfo_consumers(engine.keys.queue, engine.keys.group)
    return {c["name"] for c in replies}


@pytest.mark.gen_test(timeout=15)
async def test_a_stopped_worker_leaves_the_group(engine, client):
    await client.run_order()  # the worker has read: it is in the group
    assert engine.worker.name in await consumer_names(engine)
    await engine.worker.stop(grace_seconds=0.5)
    assert engine.worker.name not in await consumer_names(engine)


@pytest.mark.gen_test(timeout=15)
async def test_a_dead_workers_consumer_is_removed_by_a_live_worker(engine):
    await engine.queue.ensure_group()
    # A worker that took an order and died; its entry was since taken over and finished.
    await engine.redis.xgroup_createconsumer(engine.keys.queue, engine.keys.group, "dead-worker")
    assert "dead-worker" in await consumer_names(engine)
    deadline = asyncio.get_running_loop().time() + 10
    while "dead-worker" in await consumer_names(engine):  # idle past the visibility timeout
        assert asyncio.get_running_loop().time() < deadline, "the dead consumer was never removed"
        await asyncio.sleep(0.05)
