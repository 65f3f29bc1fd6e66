"""Loading a config directory: engine.yaml and venues.yaml into one :class:`EngineConfig`.

Values and their defaults come from the dataclasses in :mod:`.model`; this
module only walks the files and checks what spans entries (a venue's tokens
must be listed under ``tokens``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tornado_engine.config.errors import ConfigError
from tornado_engine.config.hints import did_you_mean
from tornado_engine.config.model import (
    ENGINE_FILE,
    VENUES_FILE,
    AuthConfig,
    EngineConfig,
    LimitsConfig,
    LoggingConfig,
    OrdersConfig,
    PluginsConfig,
    RedisConfig,
    RoutingConfig,
    ServerConfig,
    SimulationConfig,
    TokenConfig,
    VenueConfig,
    VenuesConfig,
    WorkerConfig,
)
from tornado_engine.config.section import ConfigSection
from tornado_engine.config.settings import read_settings
from tornado_engine.config.yaml_file import read_yaml_file

# engine.yaml's sections besides ``plugins``, in the order they are read (and errors reported).
ENGINE_SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "redis": RedisConfig,
    "orders": OrdersConfig,
    "routing": RoutingConfig,
    "worker": WorkerConfig,
    "simulation": SimulationConfig,
    "logging": LoggingConfig,
    "auth": AuthConfig,
    "limits": LimitsConfig,
}


def parse_engine(root: ConfigSection) -> dict[str, Any]:
    """engine.yaml's sections as keyword arguments of :class:`EngineConfig`."""
    sections: dict[str, Any] = {
        name: read_settings(root.section(name), cls) for name, cls in ENGINE_SECTIONS.items()
    }
    plugins = root.section("plugins")
    sections["plugins"] = read_settings(
        plugins, PluginsConfig, file=plugins.file, line=plugins.line_of("disabled")
    )
    root.finish()
    return sections


def parse_venues(root: ConfigSection, file: str) -> VenuesConfig:
    """venues.yaml: the tokens with their prices and decimals, and the venue entries."""
    tokens = root.section("tokens")
    venues_section = root.section("venues")
    # Unknown top-level keys first: a misspelt "venue:" must be named, not reported as "no venues".
    root.finish()
    prices: dict[str, float] = {}
    decimals: dict[str, int] = {}
    for symbol in tokens.names():
        token = read_settings(tokens.section(symbol), TokenConfig)
        prices[symbol], decimals[symbol] = token.reference_price, token.decimals
    if not prices:
        raise root.error("tokens", "expected at least one token, e.g. SOL: {reference_price: 150}")
    venues = []
    for name in venues_section.names():
        entry = venues_section.section(name)
        plugin = entry.get_str("plugin")
        enabled = entry.get_bool("enabled", True)
        if "tokens" in entry.names() and not entry.raw("tokens", None):
            raise entry.error(
                "tokens",
                "is empty: list the venue's tokens, e.g. [SOL, USDC], "
                "or remove the key to trade every token under tokens",
            )
        venue_tokens = entry.get_str_list("tokens", sorted(prices))
        for symbol in venue_tokens:
            if symbol not in prices:
                hint = did_you_mean(symbol, prices)
                raise entry.error("tokens", f"token {symbol!r} is not listed under tokens{hint}")
        venues.append(VenueConfig(name, plugin, enabled, tuple(venue_tokens), entry))
    if not venues:
        raise root.error("venues", "expected at least one venue")
    return VenuesConfig(reference_prices=prices, venues=tuple(venues), file=file, decimals=decimals)


# A copy of the repository's config/ ships in the package, so an installed wheel starts
# without the source tree; tests/test_config_defaults.py keeps the two copies identical.
BUILT_IN_CONFIG_DIR = Path(__file__).with_name("defaults")


def resolve_config_dir(path: str | os.PathLike | None) -> Path:
    """``--config`` may name the directory or its engine.yaml; default ``./config``, else the built-in one."""
    if not path and not Path("config").is_dir():
        return BUILT_IN_CONFIG_DIR
    candidate = Path(path) if path else Path("config")
    if candidate.is_file() or candidate.suffix in (".yaml", ".yml"):
        candidate = candidate.parent
    return candidate


def load_config(path: str | os.PathLike | None = None) -> EngineConfig:
    """Read ``engine.yaml`` and ``venues.yaml`` from a config directory."""
    directory = resolve_config_dir(path)
    if not directory.is_dir():
        raise ConfigError(
            str(directory),
            "",
            "config directory not found; pass --config DIR (it holds engine.yaml and venues.yaml)",
        )
    engine_file = directory / ENGINE_FILE
    engine = parse_engine(read_yaml_file(engine_file)) if engine_file.exists() else {}
    venues_file = directory / VENUES_FILE
    venues = parse_venues(read_yaml_file(venues_file), str(venues_file))
    return EngineConfig(venues=venues, **engine)
