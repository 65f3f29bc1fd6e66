"""Reloading venues.yaml: venues change with no restart, in-flight orders lose nothing, bad files nothing."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
import yaml
from tornado.httpclient import HTTPClient, HTTPRequest

from tornado_engine.venues.reload import reload_venues

TOKENS = {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}}


def slow(ms: int) -> dict:
    return {"quote_latency_ms": 0, "build_latency_ms": 0, "swap_latency_ms": ms, "failure_rate": 0}


@pytest.fixture
def engine_overrides() -> dict:
    return {"simulation": {"latency_scale": 1}}


@pytest.fixture
def venues_config() -> dict:
    return {
        "tokens": TOKENS,
        "venues": {
            "raydium": {"plugin": "mock-raydium", **slow(40)},
            "meteora": {"plugin": "mock-meteora", **slow(40)},
        },
    }


def rewrite(config_dir, venues: dict) -> None:
    (config_dir / "venues.yaml").write_text(yaml.safe_dump({"tokens": TOKENS, "venues": venues}))


def test_unchanged_venues_keep_their_objects_changed_ones_are_rebuilt(engine, config_dir):
    raydium, meteora = engine.venues["raydium"], engine.venues["meteora"]
    rewrite(
        config_dir,
        {
            "raydium": {"plugin": "mock-raydium", **slow(40)},
            "meteora": {"plugin": "mock-meteora", **slow(40), "fee": 0.001},
            "orca": {"plugin": "mock-raydium", **slow(40)},
        },
    )
    result = reload_venues(engine, config_dir)
    assert (result.ok, result.added, result.removed, result.changed, result.kept) == (
        True,
        ("orca",),
        (),
        ("meteora",),
        ("raydium",),
    )
    assert engine.venues["raydium"] is raydium
    assert engine.venues["meteora"] is not meteora
    assert engine.venues["meteora"].options.fee == 0.001


def test_disabling_a_venue_removes_it_and_its_tokens(engine, config_dir):
    rewrite(
        config_dir,
        {
            "raydium": {"plugin": "mock-raydium", **slow(40), "enabled": False},
            "meteora": {"plugin": "mock-meteora", **slow(40)},
        },
    )
    result = reload_venues(engine, config_dir)
    assert (result.removed, result.kept) == (("raydium",), ("meteora",))
    assert list(engine.venues) == ["meteora"]
    assert [(v.name, v.state) for v in engine.plugins.venue_states] == [
        ("meteora", "running"),
        ("raydium", "disabled"),
    ]


def test_a_reload_that_fails_validation_keeps_the_running_venues(engine, config_dir, caplog):
    running, states = dict(engine.venues), list(engine.plugins.venue_states)
    rewrite(config_dir, {"raydium": {"plugin": "mock-raydum"}, "meteora": {"plugin": "mock-meteora"}})
    result = reload_venues(engine, config_dir)
    assert not result.ok
    assert "venues.raydium.plugin: no installed plugin provides 'mock-raydum'; did you mean" in result.error
    assert engine.venues == running and engine.plugins.venue_states == states
    assert "reload of venues.yaml failed; the running venues stay: " in caplog.text


def test_a_reload_with_no_venue_left_is_refused(engine, config_dir):
    rewrite(config_dir, {"raydium": {"plugin": "mock-raydium", "enabled": False}})
    result = reload_venues(engine, config_dir)
    assert (result.ok, result.error.endswith("venues: no venue is enabled: enable at least one")) == (
        False,
        True,
    )
    assert sorted(engine.venues) == ["meteora", "raydium"]


async def watch(client, order_id: str) -> list[dict]:
    return await client.frames(order_id)


@pytest.mark.gen_test(timeout=30)
async def test_reload_under_load_loses_no_frame_and_new_orders_use_the_new_venues(client, engine, config_dir):
    first_wave = [await client.submit() for _ in range(15)]
    watchers = [asyncio.ensure_future(watch(client, order_id)) for order_id in first_wave]
    conn = await client.connect(f"orderId={first_wave[0]}")
    while json.loads(await conn.read_message())["status"] != "submitted":
        pass  # the first order is mid-swap: the reload happens under it
    conn.close()
    rewrite(
        config_dir,
        {
            "raydium": {"plugin": "mock-raydium", **slow(40), "enabled": False},
            "meteora": {"plugin": "mock-meteora", **slow(40)},
            "orca": {"plugin": "mock-raydium", **slow(40)},
        },
    )
    assert reload_venues(engine, config_dir).ok
    second_wave = [await client.submit() for _ in range(5)]
    watchers += [asyncio.ensure_future(watch(client, order_id)) for order_id in second_wave]
    results = await asyncio.gather(*watchers)
    for frames in results:
        assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1)), frames
        assert frames[-1]["status"] == "confirmed", frames[-1]
    for frames in results[len(first_wave) :]:
        routing = next(f for f in frames if f["status"] == "routing")
        assert sorted(q["dex"] for q in routing["quotes"]) == ["meteora", "orca"]


def test_sighup_reloads_a_running_engine_and_a_bad_file_is_logged(make_config, engine_process):
    config_dir = make_config(venues={"tokens": TOKENS, "venues": {"raydium": {"plugin": "mock-raydium"}}})
    process = engine_process(config_dir)
    rewrite(config_dir, {"raydium": {"plugin": "mock-raydium"}, "orca": {"plugin": "mock-meteora"}})
    mark = len(process.lines)
    process.signal(signal.SIGHUP)
    process.wait_for_log(
        r"venues\.yaml reloaded: added orca; removed none; changed none; unchanged raydium", start=mark
    )
    reply = HTTPClient().fetch(f"{process.base_url}/api/venues")
    assert [v["name"] for v in json.loads(reply.body)["venueStates"]] == ["orca", "raydium"]

    (config_dir / "venues.yaml").write_text("venues: [not, a, mapping\n")
    mark = len(process.lines)
    process.signal(signal.SIGHUP)
    process.wait_for_log(
        r"reload of venues\.yaml failed; the running venues stay: .*not valid YAML", start=mark
    )
    body = json.dumps({"fromToken": "SOL", "toToken": "USDC", "amount": 1})
    request = HTTPRequest(
        f"{process.base_url}/api/orders/execute",
        method="POST",
        body=body,
        headers={"Content-Type": "application/json"},
    )
    assert HTTPClient().fetch(request).code == 200
