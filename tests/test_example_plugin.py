"""The example third-party plugin, pip-installed as its own distribution, found and used by the engine.

It is installed editable (``pip install -e plugins/example_venue``, with its
test extra) into the fresh virtual environment that holds the engine's own
wheels, unless this environment already has it: the engine then sees exactly
what a user sees, while the other tests keep the installed plugin set they
expect.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from tornado_engine.testing import EngineProcess

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "example_venue"
DIST = "tornado-engine-example-venue"

VENUES = {
    "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
    "venues": {
        "orca": {"plugin": "mock-orca", "spread": 0},
        "raydium": {"plugin": "mock-raydium", "failure_rate": 0, "price_variance": 0.3},
    },
}


def has_plugin(python: str) -> bool:
    probe = f"import importlib.metadata as m; m.distribution({DIST!r})"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def python(fresh_install) -> str:
    """A Python interpreter that has the example plugin installed with pip."""
    if has_plugin(sys.executable):
        return sys.executable
    # setuptools<81: pytest-tornado imports pkg_resources (as in the engine's test extra).
    fresh_install.pip_install("-e", f"{PLUGIN_DIR}[test]", "setuptools<81")
    assert has_plugin(str(fresh_install.python))
    return str(fresh_install.python)


def test_venues_lists_the_installed_plugin(python, make_config):
    result = subprocess.run(
        [python, "-m", "tornado_engine", "venues", str(make_config(venues=VENUES))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert (
        "mock-orca loaded kinds: mock-orca tornado-engine-example-venue 0.1.0 (tornado_engine_example_venue)"
        in lines
    )
    assert "orca running kind: mock-orca tokens: SOL, USDC" in lines


@pytest.fixture
def engine(python, make_config, redis_server):
    process = EngineProcess(make_config(venues=VENUES), redis_server.url)
    process.command[0] = python
    yield process.start()
    process.stop()


@pytest.mark.gen_test(timeout=30)
async def test_its_quotes_appear_in_the_routing_frame(engine):
    body = json.dumps({"fromToken": "SOL", "toToken": "USDC", "amount": 2})
    request = HTTPRequest(
        f"{engine.base_url}/api/orders/execute",
        method="POST",
        body=body,
        headers={"Content-Type": "application/json"},
    )
    order_id = json.loads((await AsyncHTTPClient().fetch(request)).body)["orderId"]
    conn = await websocket_connect(f"ws://127.0.0.1:{engine.port}/ws?orderId={order_id}")
    frames = []
    while (message := await conn.read_message()) is not None:
        frames.append(json.loads(message))
    routing = next(f for f in frames if f["status"] == "routing")
    quotes = {q["dex"]: q for q in routing["quotes"]}
    assert quotes["orca"] == {"dex": "orca", "price": 150.0, "fee": 0.0025, "amountOut": 299.25}
    assert set(quotes) == {"orca", "raydium"}
    assert frames[-1]["status"] == "confirmed"


def test_its_own_tests_pass_with_the_kit(python):
    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=PLUGIN_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]
