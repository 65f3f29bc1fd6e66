"""Mistakes that used to pass silently: duplicate keys, an empty token list, tabs, a ledger nowhere;
and ``tornado-engine config``, which shows every value in force and where it came from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tornado_engine.config import ConfigError, load_config
from tornado_engine.engine import Engine

VENUES = """\
tokens:
  SOL: {reference_price: 150}
  USDC: {reference_price: 1}
venues:
  raydium:
    plugin: mock-raydium
"""


@pytest.fixture
def write(tmp_path: Path):
    def make(engine: str = "", venues: str = VENUES) -> Path:
        (tmp_path / "engine.yaml").write_text(textwrap.dedent(engine), encoding="utf-8")
        (tmp_path / "venues.yaml").write_text(textwrap.dedent(venues), encoding="utf-8")
        return tmp_path

    return make


def config_error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Engine(load_config(directory))
    return info.value


def tornado_engine(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tornado_engine", *args], capture_output=True, text=True, timeout=60, env=env
    )


# -- duplicate keys --------------------------------------------------------------------------------


def test_a_venue_option_written_twice_is_an_error_naming_both_lines(write):
    error = config_error(write(venues=VENUES + "    fee: 0.003\n    fee: 0.03\n"))
    assert error.line == 8
    assert str(error).endswith(
        "fee: written twice, at lines 7 and 8 (YAML would silently keep the last one); keep one"
    )


def test_a_second_venues_section_is_an_error_naming_both_lines(write):
    error = config_error(write(venues=VENUES + "venues:\n  meteora:\n    plugin: mock-meteora\n"))
    assert (error.key, error.line) == ("venues", 7)
    assert "at lines 4 and 7" in str(error)


def test_a_duplicate_key_in_engine_yaml_is_an_error_too(write):
    error = config_error(write(engine="worker:\n  concurrency: 5\n  concurrency: 50\n"))
    assert error.file.endswith("engine.yaml") and "at lines 2 and 3" in str(error)


def test_keys_beside_a_yaml_merge_may_override_it(write):
    venues = VENUES + "    fee: 0.003\n    <<: {fee: 0.01, failure_rate: 0}\n"
    (venue,) = load_config(write(venues=venues)).venues.venues
    assert venue.options.as_dict()["fee"] == 0.003


# -- values that used to mean something else silently ----------------------------------------------


@pytest.mark.parametrize("written", ["tokens:", "tokens: []"])
def test_an_empty_venue_token_list_is_an_error_saying_to_omit_it(write, written):
    error = config_error(write(venues=VENUES + f"    {written}\n"))
    assert (error.key, error.line) == ("venues.raydium.tokens", 7)
    assert "remove the key to trade every token under tokens" in str(error)


def test_a_venue_without_tokens_trades_every_token(write):
    (venue,) = load_config(write()).venues.venues
    assert venue.tokens == ("SOL", "USDC")


def test_a_tab_in_yaml_gets_a_hint_to_use_spaces(write):
    error = config_error(write(engine="worker:\n\tconcurrency: 5\n"))
    assert error.line == 2 and "use spaces" in str(error)


def test_a_ledger_path_in_a_missing_directory_fails_check_config(write, tmp_path):
    missing = tmp_path / "no-such-dir" / "ledger.jsonl"
    directory = write(venues=VENUES + f"    ledger_path: {missing}\n")
    result = tornado_engine("check-config", str(directory))
    assert result.returncode == 2
    assert f"venues.raydium.ledger_path: directory {missing.parent} does not exist" in result.stderr


def test_a_ledger_path_in_an_existing_directory_is_accepted(write, tmp_path):
    config = load_config(write(venues=VENUES + f"    ledger_path: {tmp_path / 'ledger.jsonl'}\n"))
    assert set(Engine(config).venues) == {"raydium"}


# -- tornado-engine config -------------------------------------------------------------------------


def shown(directory: Path, **environ: str) -> dict[str, dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "REDIS_URL")}
    result = tornado_engine("config", str(directory), "--json", env={**env, **environ})
    assert result.returncode == 0, result.stderr
    return {row["key"]: row for row in json.loads(result.stdout)}


def test_config_shows_each_value_with_its_origin(write):
    directory = write(
        engine="worker:\n  concurrency: ${CONCURRENCY:-7}\n  max_attempts: 4\n",
        venues=VENUES + "    fee: 0.001\n",
    )
    rows = shown(directory, CONCURRENCY="12")
    assert rows["worker.concurrency"] == {
        "key": "worker.concurrency",
        "value": 12,
        "origin": "environment CONCURRENCY (via engine.yaml:2)",
    }
    assert rows["worker.max_attempts"]["origin"] == "engine.yaml:3"
    assert rows["worker.backoff_base_ms"] == {
        "key": "worker.backoff_base_ms",
        "value": 500.0,
        "origin": "default",
    }
    assert rows["venues.raydium.fee"] == {
        "key": "venues.raydium.fee",
        "value": 0.001,
        "origin": "venues.yaml:7",
    }
    assert rows["venues.raydium.tokens"] == {
        "key": "venues.raydium.tokens",
        "value": ["SOL", "USDC"],
        "origin": "default",
    }


def test_config_shows_port_and_redis_url_from_the_environment_with_the_password_masked(write):
    rows = shown(write(), PORT="4100", REDIS_URL="rediss://app:hunter2@redis.example:6380/0")
    assert rows["server.port"] == {"key": "server.port", "value": 4100, "origin": "environment PORT"}
    assert rows["redis.url"]["value"] == "rediss://app:***@redis.example:6380/0"
    assert rows["redis.url"]["origin"] == "environment REDIS_URL"


def test_config_text_masks_passwords_written_in_the_file(write):
    directory = write(engine="redis:\n  url: redis://:s3cret@localhost:6379/0\n")
    result = tornado_engine("config", str(directory))
    assert result.returncode == 0
    assert "s3cret" not in result.stdout
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("redis.url")]
    assert line.split() == ["redis.url", "=", "redis://:***@localhost:6379/0", "#", "engine.yaml:2"]
