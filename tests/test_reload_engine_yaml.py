"""SIGHUP and engine.yaml: a broken one is blamed by name, a changed one says what needs a restart,
and a plugin installed since start-up asks for a restart instead of a wrong did-you-mean."""

from __future__ import annotations

import logging
import sys
import textwrap

import pytest
import yaml

from tornado_engine.venues.reload import reload_venues


def test_a_broken_engine_yaml_fails_the_reload_naming_engine_yaml(engine, config_dir, caplog):
    running = dict(engine.venues)
    (config_dir / "engine.yaml").write_text("worker:\n  concurrency: [\n")
    result = reload_venues(engine, config_dir)
    assert not result.ok and "engine.yaml" in result.error and "not valid YAML" in result.error
    assert "reload failed: engine.yaml is invalid; the running configuration stays" in caplog.text
    assert "reload of venues.yaml failed" not in caplog.text
    assert engine.venues == running


def rewrite_engine_yaml(config_dir, **sections: dict) -> None:
    written = yaml.safe_load((config_dir / "engine.yaml").read_text()) or {}
    for name, values in sections.items():
        written.setdefault(name, {}).update(values)
    (config_dir / "engine.yaml").write_text(yaml.safe_dump(written))


def test_changed_engine_yaml_settings_are_logged_as_needing_a_restart(engine, config_dir, caplog):
    rewrite_engine_yaml(config_dir, worker={"concurrency": 7}, server={"max_body_bytes": 100})
    result = reload_venues(engine, config_dir)
    assert result.ok
    assert result.restart_needed == ("server.max_body_bytes (65536 -> 100)", "worker.concurrency (100 -> 7)")
    assert (
        "engine.yaml changed; a reload applies only the order limits: restart to apply "
        "server.max_body_bytes (65536 -> 100), worker.concurrency (100 -> 7)"
    ) in caplog.text
    assert engine.config.worker.concurrency == 100  # the running engine keeps what it started with


def test_order_limits_in_engine_yaml_apply_on_reload(engine, config_dir, caplog):
    caplog.set_level(logging.INFO)
    limits = {"max_amount": 5, "max_slippage_bps": 80, "waiting_ttl_seconds": 9}
    rewrite_engine_yaml(config_dir, orders=limits)
    result = reload_venues(engine, config_dir)
    assert result.applied == ("orders.max_amount (1000000.0 -> 5)", "orders.max_slippage_bps (5000 -> 80)")
    assert result.restart_needed == ("orders.waiting_ttl_seconds (60.0 -> 9)",)
    assert (engine.rules.max_amount, engine.rules.max_slippage_bps) == (5, 80)
    assert engine.config.orders.waiting_ttl_seconds == 60.0
    assert "engine.yaml reloaded: applied orders.max_amount (1000000.0 -> 5)" in caplog.text


@pytest.mark.gen_test
async def test_a_reloaded_order_limit_is_what_the_next_post_is_checked_against(client, engine, config_dir):
    rewrite_engine_yaml(config_dir, orders={"max_amount": 5})
    reload_venues(engine, config_dir)
    status, body = await client.post_order({"fromToken": "SOL", "toToken": "USDC", "amount": 10})
    assert (status, body) == (400, {"error": "amount must be at most 5", "field": "amount"})


def test_an_unchanged_engine_yaml_needs_no_restart(engine, config_dir, caplog):
    assert reload_venues(engine, config_dir).restart_needed == ()
    assert "restart to apply" not in caplog.text


@pytest.fixture
def plugin_installed_after_start(engine, tmp_path, monkeypatch) -> str:
    """A distribution whose entry point appears on sys.path once the engine is running."""
    site = tmp_path / "site"
    info = site / "tornado_engine_lifinity-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tornado-engine-lifinity\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [tornado_engine]
            lifinity = tornado_engine_lifinity
            """
        )
    )
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    return "lifinity"


def test_a_plugin_installed_after_start_asks_for_a_restart(engine, config_dir, plugin_installed_after_start):
    venues = yaml.safe_load((config_dir / "venues.yaml").read_text())
    venues["venues"]["lifinity"] = {"plugin": "mock-lifinity"}
    (config_dir / "venues.yaml").write_text(yaml.safe_dump(venues))
    result = reload_venues(engine, config_dir)
    assert not result.ok
    assert "venues.lifinity.plugin: no loaded plugin provides 'mock-lifinity'" in result.error
    assert (
        "plugins installed after start-up (lifinity) are not loaded: restart to load newly installed plugins"
        in (result.error)
    )
    assert "did you mean" not in result.error
