"""A wrong config gets a message naming the file, the line, the key and what was expected."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tornado_engine.config import ConfigError, load_config
from tornado_engine.engine import Engine
from tornado_engine.venues.host import plugin_manager, venue_kinds

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config"

VENUES = """\
tokens:
  SOL: {reference_price: 150}
  USDC: {reference_price: 1}
venues:
  raydium:
    plugin: mock-raydium
  meteora:
    plugin: mock-meteora
"""


@pytest.fixture
def write(tmp_path: Path):
    """``write(engine=..., venues=...)``: a config dir from YAML text (None leaves the file out)."""

    def make(engine: str | None = "", venues: str | None = VENUES) -> Path:
        if engine is not None:
            (tmp_path / "engine.yaml").write_text(textwrap.dedent(engine), encoding="utf-8")
        if venues is not None:
            (tmp_path / "venues.yaml").write_text(textwrap.dedent(venues), encoding="utf-8")
        return tmp_path

    return make


def config_error(directory: Path) -> ConfigError:
    """Load the config and build its venues (plugin errors surface there); return the error."""
    with pytest.raises(ConfigError) as info:
        Engine(load_config(directory))
    return info.value


# -- the shape of every message --------------------------------------------------------------------


def test_error_names_file_line_key_and_expected_value(write):
    directory = write(engine="worker:\n  concurrency: five\n")
    error = config_error(directory)
    assert (error.file, error.line, error.key) == (str(directory / "engine.yaml"), 2, "worker.concurrency")
    assert str(error) == (
        f"{directory / 'engine.yaml'}, line 2: worker.concurrency: expected an integer, got 'five' (str)"
    )


def test_misspelt_key_gets_did_you_mean_and_the_known_keys(write):
    directory = write(engine="worker: {concurency: 5}\n")
    assert str(config_error(directory)) == (
        f"{directory / 'engine.yaml'}, line 1: worker.concurency: unknown key; did you mean "
        "'concurrency'? (known keys: backoff_base_ms, backoff_max_ms, concurrency, loop_stall_threshold_ms, "
        "max_attempts, quote_timeout_ms, shutdown_grace_seconds, swap_timeout_ms, visibility_timeout_seconds)"
    )


def test_misspelt_section_gets_did_you_mean(write):
    directory = write(engine="server:\n  port: 3000\nworkers:\n  concurrency: 1\n")
    error = config_error(directory)
    assert (error.key, error.line) == ("workers", 3)
    assert "unknown key; did you mean 'worker'?" in error.message


def test_unknown_key_with_no_close_match_lists_the_known_keys(write):
    error = config_error(write(engine="orders:\n  colour: blue\n"))
    assert error.message == (
        "unknown key (known keys: admin_api, default_slippage_bps, idempotency_window_seconds, max_amount, "
        "max_slippage_bps, max_wait_seconds, retention_seconds, waiting_interval_ms, waiting_store, "
        "waiting_ttl_seconds)"
    )


def test_misspelt_plugin_name_gets_did_you_mean_and_the_installed_plugins(write):
    directory = write(venues=VENUES.replace("plugin: mock-raydium", "plugin: mock-raydum"))
    # Every installed kind is listed: the bundled ones, and any other plugin installed here (mock-orca).
    installed = ", ".join(sorted(venue_kinds(plugin_manager())))
    assert {"mock-meteora", "mock-raydium"} <= set(installed.split(", "))
    assert str(config_error(directory)) == (
        f"{directory / 'venues.yaml'}, line 6: venues.raydium.plugin: no installed plugin provides "
        f"'mock-raydum'; did you mean 'mock-raydium'? (installed: {installed})"
    )


def test_unknown_plugin_on_a_disabled_venue_is_only_a_warning(write, caplog):
    venues = VENUES + "  nowhere:\n    plugin: mock-nowhere\n    enabled: false\n"
    engine = Engine(load_config(write(venues=venues)))
    assert sorted(engine.venues) == ["meteora", "raydium"]
    assert "no installed plugin provides 'mock-nowhere'" in caplog.text


def test_misspelt_venue_option_gets_did_you_mean(write):
    directory = write(venues=VENUES.replace("plugin: mock-meteora", "plugin: mock-meteora\n    fees: 0.1"))
    error = config_error(directory)
    assert (error.file, error.key, error.line) == (str(directory / "venues.yaml"), "venues.meteora.fees", 9)
    assert error.message.startswith("unknown key; did you mean 'fee'?")


# -- wrong types and values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "key", "message"),
    [
        ("server:\n  port: 70000\n", "server.port", "expected an integer at most 65535, got 70000"),
        ("server:\n  port: '3000'\n", "server.port", "expected an integer, got '3000' (str)"),
        ("worker:\n  concurrency: 0\n", "worker.concurrency", "expected an integer at least 1, got 0"),
        ("worker:\n  max_attempts: 2.5\n", "worker.max_attempts", "expected an integer, got 2.5 (float)"),
        (
            "worker:\n  quote_timeout_ms: 0\n",
            "worker.quote_timeout_ms",
            "expected a number greater than 0, got 0",
        ),
        ("orders:\n  max_amount: -1\n", "orders.max_amount", "expected a number greater than 0, got -1"),
        ("orders:\n  max_amount: .nan\n", "orders.max_amount", "expected a number, got nan (float)"),
        (
            "simulation:\n  latency_scale: true\n",
            "simulation.latency_scale",
            "expected a number, got True (bool)",
        ),
        ("simulation:\n  seed: 1.5\n", "simulation.seed", "expected an integer, got 1.5 (float)"),
        (
            "logging:\n  level: verbose\n",
            "logging.level",
            "expected one of DEBUG, INFO, WARNING, ERROR, got 'verbose'",
        ),
        (
            "logging:\n  level: WARN\n",
            "logging.level",
            "expected one of DEBUG, INFO, WARNING, ERROR, got 'WARN'; did you mean 'WARNING'?",
        ),
        ("redis:\n  url: 6379\n", "redis.url", "expected a non-empty string, got 6379 (int)"),
        (
            "server:\n  allowed_origins: http://a\n",
            "server.allowed_origins",
            "expected a list of strings, got 'http://a' (str)",
        ),
        ("worker: [1, 2]\n", "worker", "expected a mapping of keys, got [1, 2] (list)"),
    ],
)
def test_wrong_value_names_key_line_and_expectation(write, engine, key, message):
    error = config_error(write(engine=engine))
    assert (error.key, error.message) == (key, message)
    assert error.line == engine.count("\n")


def test_log_level_is_case_insensitive(write):
    assert load_config(write(engine="logging:\n  level: debug\n")).logging.level == "DEBUG"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("fee: lots", "expected a number, got 'lots' (str)"),
        ("failure_rate: 2", "expected a number at most 1, got 2"),
        ("quote_latency_ms: [5, 1]", "expected 0 <= low <= high, got [5, 1]"),
        ("swap_latency_ms: fast", "expected [low, high] (two numbers), got 'fast' (str)"),
        ("enabled: yes please", "expected true or false, got 'yes please' (str)"),
        ("tokens: SOL", "expected a list of strings, got 'SOL' (str)"),
    ],
)
def test_wrong_venue_option_names_the_venue_key(write, option, message):
    directory = write(venues=VENUES.replace("plugin: mock-meteora", f"plugin: mock-meteora\n    {option}"))
    error = config_error(directory)
    assert error.key == f"venues.meteora.{option.split(':')[0]}"
    assert (error.line, error.message) == (9, message)


def test_venue_without_plugin_is_an_error_on_the_venue_line(write):
    error = config_error(write(venues=VENUES.replace("    plugin: mock-meteora\n", "    enabled: true\n")))
    assert (error.key, error.message, error.line) == ("venues.meteora.plugin", "is required", 7)


# -- files -----------------------------------------------------------------------------------------


def test_missing_venues_yaml_is_an_error_naming_it(write):
    directory = write(venues=None)
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert str(info.value) == f"{directory / 'venues.yaml'}: file not found"


def test_missing_engine_yaml_means_defaults(write):
    config = load_config(write(engine=None))
    assert config.worker.concurrency == 100
    assert config.orders.waiting_ttl_seconds == 60


def test_missing_config_directory_says_what_to_pass(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nowhere")
    assert "config directory not found; pass --config DIR" in str(info.value)


def test_invalid_yaml_names_the_line(write):
    directory = write(engine="worker:\n  concurrency: 5\n   bad: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert str(info.value) == (
        f"{directory / 'engine.yaml'}, line 3: not valid YAML: mapping values are not allowed here"
    )


def test_invalid_yaml_in_venues_names_the_line(write):
    directory = write(venues=VENUES + "  - orca\n")
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert info.value.file == str(directory / "venues.yaml")
    assert info.value.line == 9
    assert "not valid YAML" in info.value.message


def test_file_that_is_not_a_mapping_is_an_error(write):
    directory = write(engine="- worker\n- server\n")
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert str(info.value) == (
        f"{directory / 'engine.yaml'}: expected a mapping of keys, got ['worker', 'server'] (list)"
    )


# -- venues and tokens -----------------------------------------------------------------------------


def test_venue_token_not_listed_under_tokens_is_an_error(write):
    directory = write(
        venues=VENUES.replace("plugin: mock-raydium", "plugin: mock-raydium\n    tokens: [SOL, USDT]")
    )
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert str(info.value) == (
        f"{directory / 'venues.yaml'}, line 7: venues.raydium.tokens: "
        "token 'USDT' is not listed under tokens; did you mean 'USDC'?"
    )


def test_token_without_a_positive_reference_price_is_an_error(write):
    directory = write(venues=VENUES.replace("USDC: {reference_price: 1}", "USDC: {reference_price: 0}"))
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert (info.value.key, info.value.line) == ("tokens.USDC.reference_price", 3)
    assert info.value.message == "expected a number greater than 0, got 0"


def test_no_tokens_is_an_error(write):
    with pytest.raises(ConfigError) as info:
        load_config(write(venues="tokens: {}\nvenues:\n  r: {plugin: mock-raydium}\n"))
    assert (info.value.key, info.value.line) == ("tokens", 1)
    assert info.value.message == "expected at least one token, e.g. SOL: {reference_price: 150}"


def test_no_venues_is_an_error(write):
    with pytest.raises(ConfigError) as info:
        load_config(write(venues="tokens:\n  SOL: {reference_price: 150}\nvenues: {}\n"))
    assert (info.value.key, info.value.line, info.value.message) == (
        "venues",
        3,
        "expected at least one venue",
    )


def test_misspelt_venues_section_is_named_not_reported_as_empty(write):
    with pytest.raises(ConfigError) as info:
        load_config(write(venues=VENUES.replace("venues:", "venue:")))
    assert (info.value.key, info.value.line) == ("venue", 4)
    assert info.value.message.startswith("unknown key; did you mean 'venues'?")


def test_no_enabled_venue_is_an_error(write):
    venues = VENUES.replace("plugin: mock-raydium", "plugin: mock-raydium\n    enabled: false")
    venues = venues.replace("plugin: mock-meteora", "plugin: mock-meteora\n    enabled: false")
    error = config_error(write(venues=venues))
    assert error.file.endswith("venues.yaml")
    assert (error.key, error.message) == ("venues", "no venue is enabled: enable at least one")


# -- tornado-engine check-config -------------------------------------------------------------------


def check_config(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tornado_engine", "check-config", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_accepts_the_shipped_config():
    result = check_config(str(SHIPPED_CONFIG))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "config OK: 2 venues configured"


def test_check_config_rejects_a_bad_config_with_the_message(write):
    directory = write(engine="worker: {concurency: 5}\n")
    result = check_config(str(directory))
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"config error: {directory / 'engine.yaml'}, line 1: worker.concurency: unknown key; "
        "did you mean 'concurrency'?"
    )
    assert "Traceback" not in result.stderr


def test_check_config_reports_a_plugin_error(write):
    directory = write(venues=VENUES.replace("plugin: mock-raydium", "plugin: mock-raydum"))
    result = check_config(str(directory))
    assert result.returncode != 0
    assert "venues.raydium.plugin: no installed plugin provides 'mock-raydum'" in result.stderr
    assert "did you mean 'mock-raydium'?" in result.stderr


def test_check_config_accepts_the_path_of_engine_yaml(write):
    directory = write()
    result = check_config(str(directory / "engine.yaml"))
    assert result.returncode == 0, result.stderr
