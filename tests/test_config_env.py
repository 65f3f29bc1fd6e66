"""${NAME} and ${NAME:-default} fill config values from the environment; a missing one is named."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tornado_engine.config import ConfigError, load_config

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


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("TE_REDIS_URL", "TE_PORT", "TE_FEE", "TE_DEBUG", "TE_PREFIX"):
        monkeypatch.delenv(name, raising=False)


def test_a_variable_fills_a_value(write, monkeypatch):
    monkeypatch.setenv("TE_REDIS_URL", "rediss://:secret@redis.example:6380/0")
    config = load_config(write(engine="redis:\n  url: ${TE_REDIS_URL}\n"))
    assert config.redis.url == "rediss://:secret@redis.example:6380/0"


def test_a_lone_reference_takes_the_type_of_its_text(write, monkeypatch):
    monkeypatch.setenv("TE_PORT", "8080")
    monkeypatch.setenv("TE_FEE", "0.001")
    config = load_config(
        write(
            engine="server:\n  port: ${TE_PORT}\n",
            venues=VENUES + "    fee: ${TE_FEE}\n    enabled: ${TE_DEBUG:-true}\n",
        )
    )
    assert config.server.port == 8080
    venue = config.venues.venues[0]
    assert venue.enabled is True
    assert venue.options.get_number("fee") == 0.001


def test_the_default_applies_when_unset_or_empty(write, monkeypatch):
    assert load_config(write(engine="server:\n  port: ${TE_PORT:-3001}\n")).server.port == 3001
    monkeypatch.setenv("TE_PORT", "")
    assert load_config(write(engine="server:\n  port: ${TE_PORT:-3002}\n")).server.port == 3002


def test_a_reference_inside_text_is_pasted_in(write, monkeypatch):
    monkeypatch.setenv("TE_PREFIX", "blue")
    config = load_config(write(engine="redis:\n  key_prefix: te-${TE_PREFIX}-${TE_PORT:-1}\n"))
    assert config.redis.key_prefix == "te-blue-1"


def test_a_double_dollar_is_a_literal(write):
    config = load_config(write(engine="redis:\n  key_prefix: cost$${TE_PORT}\n"))
    assert config.redis.key_prefix == "cost${TE_PORT}"


def test_an_unset_variable_without_default_names_file_line_and_key(write):
    directory = write(engine="server:\n  port: 3000\nredis:\n  url: ${TE_REDIS_URL}\n")
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert str(info.value) == (
        f"{directory / 'engine.yaml'}, line 4: redis.url: environment variable TE_REDIS_URL is not set "
        "(set it, or write ${TE_REDIS_URL:-default})"
    )


def test_an_unset_variable_in_a_list_names_the_item(write):
    directory = write(engine="server:\n  allowed_origins: [https://a.example, '${TE_ORIGIN_X}']\n")
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert (info.value.key, info.value.line) == ("server.allowed_origins[1]", 2)


def test_a_malformed_reference_says_how_to_write_one(write):
    directory = write(engine="redis:\n  url: ${TE REDIS}\n")
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert str(info.value) == (
        f"{directory / 'engine.yaml'}, line 2: redis.url: '${{TE REDIS}}' is not a valid reference: "
        "write ${NAME} or ${NAME:-default}"
    )


def test_a_filled_value_is_still_validated(write, monkeypatch):
    monkeypatch.setenv("TE_PORT", "eighty")
    with pytest.raises(ConfigError) as info:
        load_config(write(engine="server:\n  port: ${TE_PORT}\n"))
    assert info.value.message == "expected an integer, got 'eighty' (str)"


def test_check_config_exits_non_zero_with_the_message(write):
    directory = write(engine="redis:\n  url: ${TE_REDIS_URL}\n")
    env = {k: v for k, v in os.environ.items() if k != "TE_REDIS_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "tornado_engine", "check-config", str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"config error: {directory / 'engine.yaml'}, line 2: redis.url: environment variable TE_REDIS_URL "
        "is not set (set it, or write ${TE_REDIS_URL:-default})\n"
    )
