"""`tornado-engine venues`, check-config and GET /api/venues show plugins and venues with their states."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tornado_engine import hookimpl
from tornado_engine.testing import write_config

VENUES = {
    "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
    "venues": {
        "raydium": {"plugin": "mock-raydium"},
        "meteora": {"plugin": "mock-meteora", "enabled": False},
        "solana": {"plugin": "broken-kind"},
    },
}


@pytest.fixture
def broken_site(tmp_path):
    """A directory holding an installed plugin distribution that fails to import."""
    site = tmp_path / "site"
    dist = site / "te_broken_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: te-broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tornado_engine]\nbroken = te_broken_plugin\n")
    (site / "te_broken_plugin.py").write_text("raise ImportError('needs solana-py')\n")
    return site


def run_cli(site, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "tornado_engine", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_venues_lists_plugins_and_venues_with_their_states(tmp_path, broken_site):
    config = write_config(tmp_path / "config", None, VENUES)
    result = run_cli(broken_site, "venues", str(config))
    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert lines[0] == "plugins:"
    assert "broken failed kinds: - te-broken-plugin 1.0 (te_broken_plugin)" in lines
    assert "! could not be imported: ImportError: needs solana-py" in lines
    assert (
        "mock-raydium loaded kinds: mock-raydium tornado-engine-simulation 0.1.0 "
        "(tornado_engine_mock_raydium)" in lines
    )
    venues = lines[lines.index("venues:") + 1 :]
    assert venues == [  # in venues.yaml's order (write_config sorts the keys)
        "meteora disabled kind: mock-meteora tokens: SOL, USDC",
        "raydium running kind: mock-raydium tokens: SOL, USDC",
        "solana unavailable kind: broken-kind tokens: SOL, USDC",
        f"! no installed plugin provides 'broken-kind' (installed: {venues_installed(result)}); "
        "broken is failed",
    ]


def venues_installed(result: subprocess.CompletedProcess) -> str:
    """The installed kinds, as the command saw them (other plugins may be installed here)."""
    line = next(line for line in result.stdout.splitlines() if "(installed: " in line)
    return line.split("(installed: ", 1)[1].split(")", 1)[0]


def test_venues_json_is_the_report_api_venues_serves(tmp_path, broken_site):
    config = write_config(tmp_path / "config", None, VENUES)
    report = json.loads(run_cli(broken_site, "venues", "--json", str(config)).stdout)
    broken = next(p for p in report["plugins"] if p["name"] == "broken")
    assert broken == {
        "name": "broken",
        "source": "te-broken-plugin 1.0 (te_broken_plugin)",
        "state": "failed",
        "kinds": [],
        "errors": ["could not be imported: ImportError: needs solana-py"],
    }
    assert [(v["name"], v["state"], v["plugin"]) for v in report["venues"]] == [
        ("meteora", "disabled", "mock-meteora"),
        ("raydium", "running", "mock-raydium"),
        ("solana", "unavailable", None),
    ]


def test_venues_reports_a_config_error_after_the_plugins(tmp_path, broken_site):
    venues = {**VENUES, "venues": {"raydium": {"plugin": "mock-raydium", "fee": "high"}}}
    result = run_cli(broken_site, "venues", str(write_config(tmp_path / "config", None, venues)))
    assert result.returncode == 2
    assert result.stdout.startswith("plugins:\n")
    assert "venues.raydium.fee: expected a number, got 'high' (str)" in result.stderr


def test_check_config_fails_when_an_enabled_venue_cannot_run(tmp_path, broken_site):
    result = run_cli(broken_site, "check-config", str(write_config(tmp_path / "config", None, VENUES)))
    assert result.returncode == 1
    assert "ERROR: plugin broken (te-broken-plugin 1.0 (te_broken_plugin)) failed to load" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "venue unavailable: solana: no installed plugin provides 'broken-kind'"
    )
    assert result.stdout == "config OK: 3 venues configured\n"


class FactoryRaises:
    __name__ = "factory-raises"

    @hookimpl
    def register_venues(self, register):
        def factory(settings):
            raise RuntimeError("cannot reach the RPC node")

        register("crashy", factory)


@pytest.fixture
def venues_config() -> dict:
    return {
        "tokens": VENUES["tokens"],
        "venues": {"raydium": {"plugin": "mock-raydium"}, "crashy": {"plugin": "crashy"}},
    }


@pytest.fixture
def extra_plugins() -> list:
    return [FactoryRaises()]


@pytest.mark.gen_test(timeout=15)
async def test_api_venues_carries_plugin_and_venue_states(client):
    code, body = await client.get_json("/api/venues")
    assert code == 200
    assert {p["name"]: p["state"] for p in body["plugins"]}["factory-raises"] == "loaded"
    assert body["venueStates"] == [
        {
            "name": "crashy",
            "kind": "crashy",
            "plugin": "factory-raises",
            "state": "unavailable",
            "tokens": ["SOL", "USDC"],
            "error": "plugin factory-raises could not create the venue: "
            "RuntimeError: cannot reach the RPC node",
        },
        {
            "name": "raydium",
            "kind": "mock-raydium",
            "plugin": "mock-raydium",
            "state": "running",
            "tokens": ["SOL", "USDC"],
            "error": None,
        },
    ]
