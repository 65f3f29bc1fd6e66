"""A misbehaving plugin cannot take the engine down: it is reported, and the other venues work."""

from __future__ import annotations

import logging

import pytest
from tornado_engine_mock_raydium import RaydiumLikeVenue

from tornado_engine import hookimpl
from tornado_engine.config import ConfigError, load_config
from tornado_engine.engine import Engine
from tornado_engine.testing import write_config
from tornado_engine.venues.host import PluginHost


class RaisesInRegister:
    __name__ = "raises-in-register"

    @hookimpl
    def register_venues(self, register):
        register("half-registered", RaydiumLikeVenue)
        raise RuntimeError("boom")


class RegistersGarbage:
    __name__ = "registers-garbage"

    @hookimpl
    def register_venues(self, register):
        register(42, RaydiumLikeVenue)
        register("not-callable", "RaydiumLikeVenue")
        register("good-kind", RaydiumLikeVenue)


class FactoryRaises:
    __name__ = "factory-raises"

    @hookimpl
    def register_venues(self, register):
        def factory(settings):
            raise RuntimeError("cannot reach the RPC node")

        register("crashy", factory)


class FactoryReturnsGarbage:
    __name__ = "factory-returns-garbage"

    @hookimpl
    def register_venues(self, register):
        register("garbage", lambda settings: {"name": settings.name})


class ClaimsRaydium:
    __name__ = "claims-raydium"

    @hookimpl
    def register_venues(self, register):
        register("mock-raydium", RaydiumLikeVenue)


def venues_yaml(**extra_venues: dict) -> dict:
    return {
        "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
        "venues": {"meteora": {"plugin": "mock-meteora", "failure_rate": 0}, **extra_venues},
    }


def engine_for(tmp_path, venues: dict, engine: dict | None = None, plugins=()) -> Engine:
    return Engine(load_config(write_config(tmp_path / "config", engine, venues)), plugins=plugins)


def states(engine: Engine) -> dict[str, tuple[str, str | None]]:
    return {v.name: (v.state, v.error) for v in engine.plugins.venue_states}


@pytest.fixture
def broken_entry_point(tmp_path, monkeypatch):
    """An installed distribution whose tornado_engine entry point raises on import."""
    site = tmp_path / "site"
    dist = site / "te_broken_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: te-broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tornado_engine]\nbroken = te_broken_plugin\n")
    (site / "te_broken_plugin.py").write_text(
        "raise ImportError('needs solana-py, which is not installed')\n"
    )
    monkeypatch.syspath_prepend(str(site))
    return "broken"


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(broken_entry_point, caplog):
    host = PluginHost()
    status = host.plugins["broken"]
    assert status.state == "failed"
    assert status.errors == ["could not be imported: ImportError: needs solana-py, which is not installed"]
    assert status.source == "te-broken-plugin 1.0 (te_broken_plugin)"
    assert {"mock-raydium", "mock-meteora"} <= set(host.kinds)
    assert "plugin broken (te-broken-plugin 1.0 (te_broken_plugin)) failed to load" in caplog.text


def test_a_venue_of_a_plugin_that_failed_to_import_is_unavailable_not_fatal(broken_entry_point, tmp_path):
    engine = engine_for(tmp_path, venues_yaml(solana={"plugin": "broken-kind"}))
    assert list(engine.venues) == ["meteora"]
    state, error = states(engine)["solana"]
    assert state == "unavailable"
    assert error.startswith("no installed plugin provides 'broken-kind'")
    assert error.endswith("; broken is failed")


def test_a_plugin_raising_in_register_venues_is_reported_and_registers_nothing(tmp_path):
    plugin = RaisesInRegister()
    engine = engine_for(tmp_path, venues_yaml(), plugins=[plugin])
    status = engine.plugins.plugins["raises-in-register"]
    assert (status.state, status.errors) == ("failed", ["register_venues raised RuntimeError: boom"])
    assert "half-registered" not in engine.plugins.kinds
    assert list(engine.venues) == ["meteora"]


def test_garbage_registrations_are_ignored_and_reported(tmp_path, caplog):
    engine = engine_for(tmp_path, venues_yaml(good={"plugin": "good-kind"}), plugins=[RegistersGarbage()])
    status = engine.plugins.plugins["registers-garbage"]
    assert status.state == "loaded"
    assert status.kinds == ["good-kind"]
    assert status.errors == [
        "registered a venue kind that is not a name: 42 (ignored)",
        "registered 'not-callable' with a factory that is not callable (ignored)",
    ]
    assert sorted(engine.venues) == ["good", "meteora"]
    assert "plugin registers-garbage registered a venue kind that is not a name: 42" in caplog.text


def test_a_factory_that_raises_makes_only_its_venue_unavailable(tmp_path, caplog):
    engine = engine_for(tmp_path, venues_yaml(crashy={"plugin": "crashy"}), plugins=[FactoryRaises()])
    assert list(engine.venues) == ["meteora"]
    assert states(engine)["crashy"] == (
        "unavailable",
        "plugin factory-raises could not create the venue: RuntimeError: cannot reach the RPC node",
    )
    assert any(
        r.levelno == logging.ERROR and "venue crashy is unavailable" in r.message for r in caplog.records
    )


def test_a_factory_returning_garbage_makes_only_its_venue_unavailable(tmp_path):
    engine = engine_for(tmp_path, venues_yaml(junk={"plugin": "garbage"}), plugins=[FactoryReturnsGarbage()])
    assert list(engine.venues) == ["meteora"]
    assert states(engine)["junk"] == (
        "unavailable",
        "plugin factory-returns-garbage returned dict, not a Venue (no quote, build, swap, supports method)",
    )


def test_two_plugins_claiming_one_kind_make_its_venues_unavailable(tmp_path):
    engine = engine_for(tmp_path, venues_yaml(raydium={"plugin": "mock-raydium"}), plugins=[ClaimsRaydium()])
    assert list(engine.venues) == ["meteora"]
    assert states(engine)["raydium"] == (
        "unavailable",
        "venue kind 'mock-raydium' is registered by mock-raydium and claims-raydium; "
        "disable all but one in engine.yaml plugins.disabled",
    )


def test_an_operator_disables_a_plugin_by_name(tmp_path):
    engine = engine_for(
        tmp_path,
        venues_yaml(raydium={"plugin": "mock-raydium"}),
        engine={"plugins": {"disabled": ["mock-raydium"]}},
    )
    assert engine.plugins.plugins["mock-raydium"].state == "disabled"
    assert "mock-raydium" not in engine.plugins.kinds
    assert list(engine.venues) == ["meteora"]
    state, error = states(engine)["raydium"]
    assert state == "unavailable"
    assert error.endswith("; mock-raydium is disabled")


def test_a_misspelt_disabled_plugin_gets_did_you_mean(tmp_path):
    directory = write_config(tmp_path / "config", {"plugins": {"disabled": ["mock-raydum"]}}, venues_yaml())
    with pytest.raises(ConfigError) as info:
        Engine(load_config(directory))
    installed = ", ".join(sorted(PluginHost().plugins))
    assert str(info.value) == (
        f"{directory / 'engine.yaml'}, line 4: plugins.disabled: no installed plugin is named "
        f"'mock-raydum'; did you mean 'mock-raydium'? (installed: {installed})"
    )


def test_when_no_venue_can_run_the_error_lists_why(tmp_path):
    venues = venues_yaml(crashy={"plugin": "crashy"})
    venues["venues"]["meteora"]["enabled"] = False
    with pytest.raises(ConfigError) as info:
        engine_for(tmp_path, venues, plugins=[FactoryRaises()])
    assert info.value.message == (
        "no venue is available (crashy: plugin factory-raises could not create the venue: "
        "RuntimeError: cannot reach the RPC node)"
    )


def test_a_bad_option_is_still_the_operators_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"venues\.meteora\.fee: expected a number at most 0\.5, got 3"):
        engine_for(tmp_path, {**venues_yaml(), "venues": {"meteora": {"plugin": "mock-meteora", "fee": 3}}})


@pytest.fixture
def venues_config() -> dict:
    return venues_yaml(crashy={"plugin": "crashy"})


@pytest.fixture
def extra_plugins() -> list:
    return [FactoryRaises(), RaisesInRegister()]


@pytest.mark.gen_test(timeout=15)
async def test_orders_complete_on_the_healthy_venues_when_a_plugin_is_broken(client):
    frames = await client.run_order()
    assert frames[-1]["status"] == "confirmed"
    routing = next(f for f in frames if f["status"] == "routing")
    assert [q["dex"] for q in routing["quotes"]] == ["meteora"]
