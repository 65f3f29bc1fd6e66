"""The example venue, tested with tornado-engine's kit (installed as a pytest plugin)."""

from __future__ import annotations

import asyncio
import json

import pytest
import tornado_engine_example_venue as plugin
from tornado.httpclient import HTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from tornado_engine import ConfigError
from tornado_engine.testing import VenueConformance, registered_kinds, venue_settings

VENUES = {
    "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
    "venues": {"orca": {"plugin": "mock-orca", "spread": 0}},
}


def make(latency_scale: float = 0.0):
    return plugin.OrcaLikeVenue(venue_settings("mock-orca", name="orca", latency_scale=latency_scale))


class TestOrcaConformance(VenueConformance):
    @pytest.fixture
    def venue(self):
        return make()

    @pytest.fixture
    def slow_venue(self):
        return make(latency_scale=5)


def test_the_plugin_registers_mock_orca():
    assert registered_kinds(plugin) == {"mock-orca": plugin.OrcaLikeVenue}


def test_a_bad_option_names_the_key():
    with pytest.raises(ConfigError, match=r"venues\.orca\.fee: expected a number at most 0\.5, got 2"):
        plugin.OrcaLikeVenue(venue_settings("mock-orca", {"fee": 2}, name="orca"))


def test_its_quote_reaches_a_routing_frame(make_config, engine_process):
    engine = engine_process(make_config(venues=VENUES))
    body = json.dumps({"fromToken": "SOL", "toToken": "USDC", "amount": 2})
    reply = HTTPClient().fetch(
        HTTPRequest(
            f"{engine.base_url}/api/orders/execute",
            method="POST",
            body=body,
            headers={"Content-Type": "application/json"},
        )
    )
    order_id = json.loads(reply.body)["orderId"]

    async def frames():
        conn = await websocket_connect(f"ws://127.0.0.1:{engine.port}/ws?orderId={order_id}")
        received = []
        while (message := await conn.read_message()) is not None:
            received.append(json.loads(message))
        return received

    routing = next(f for f in asyncio.run(frames()) if f["status"] == "routing")
    assert routing["bestDex"] == "orca"
    assert routing["quotes"] == [{"dex": "orca", "price": 150.0, "fee": 0.0025, "amountOut": 299.25}]
