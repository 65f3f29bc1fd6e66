"""GET /metrics: Prometheus text with orders, stage latencies, queue, sockets and per-venue quoting."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient

from tornado_engine.config import load_config
from tornado_engine.engine import Engine


@pytest.fixture
def venues_config() -> dict:
    return {
        "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
        "venues": {
            "raydium": {"plugin": "mock-raydium", "failure_rate": 0},
            "meteora": {"plugin": "mock-meteora", "quote_failure_rate": 1},
        },
    }


async def scrape(base_url: str) -> dict[tuple[str, tuple], float]:
    response = await AsyncHTTPClient().fetch(f"{base_url}/metrics")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.mark.gen_test(timeout=15)
async def test_a_confirmed_order_is_counted_with_its_stage_latencies(client, base_url):
    frames = await client.run_order()
    assert frames[-1]["status"] == "confirmed"
    m = await scrape(base_url)
    assert m[("tornado_engine_orders_total", (("status", "confirmed"),))] == 1
    assert m[("tornado_engine_orders_total", (("status", "failed"),))] == 0
    for status in ("routing", "building", "submitted", "confirmed"):
        assert m[("tornado_engine_stage_seconds_count", (("status", status),))] == 1, status


@pytest.mark.gen_test(timeout=15)
async def test_quote_latency_and_errors_are_per_venue(client, base_url):
    await client.run_order()
    m = await scrape(base_url)
    assert m[("tornado_engine_venue_quote_seconds_count", (("venue", "raydium"),))] == 1
    assert m[("tornado_engine_venue_quote_seconds_count", (("venue", "meteora"),))] == 1
    assert m[("tornado_engine_venue_quote_errors_total", (("venue", "meteora"),))] == 1
    assert ("tornado_engine_venue_quote_errors_total", (("venue", "raydium"),)) not in m


@pytest.mark.gen_test(timeout=15)
async def test_undelivered_updates_are_exposed(engine, connections, http_server, base_url):
    connections.undelivered = 3  # what the socket counts when a frame finds no socket
    m = await scrape(base_url)
    assert m[("tornado_engine_undelivered_updates_total", ())] == 3


class TestWhileAnOrderRuns:
    @pytest.fixture
    def engine_overrides(self) -> dict:
        return {"simulation": {"latency_scale": 1}}

    @pytest.fixture
    def venues_config(self) -> dict:
        slow = {"quote_latency_ms": 0, "build_latency_ms": 0, "swap_latency_ms": 300, "failure_rate": 0}
        return {
            "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
            "venues": {"raydium": {"plugin": "mock-raydium", **slow}},
        }

    @pytest.mark.gen_test(timeout=15)
    async def test_open_sockets_and_the_queue_are_gauged(self, client, base_url):
        order_id = await client.submit()
        m = await scrape(base_url)
        assert m[("tornado_engine_waiting_orders", ())] == 1
        assert m[("tornado_engine_websockets_open", ())] == 0
        conn = await client.connect(f"orderId={order_id}")
        while json.loads(await conn.read_message())["status"] != "submitted":
            pass
        m = await scrape(base_url)
        assert m[("tornado_engine_websockets_open", ())] == 1
        assert m[("tornado_engine_waiting_orders", ())] == 0
        assert m[("tornado_engine_queue_depth", ())] == 1  # held by the worker until it finishes
        assert 0 <= m[("tornado_engine_queue_oldest_age_seconds", ())] < 10
        while (message := await conn.read_message()) is not None:
            last = json.loads(message)
        assert last["status"] == "confirmed"


def test_engines_in_one_process_keep_separate_metrics(make_config):
    first, second = (Engine(load_config(make_config())) for _ in range(2))
    first.metrics.orders.labels("confirmed").inc()
    assert b'tornado_engine_orders_total{status="confirmed"} 1.0' in first.metrics.exposition()
    assert b'tornado_engine_orders_total{status="confirmed"} 0.0' in second.metrics.exposition()
