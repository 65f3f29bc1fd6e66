"""Configuration: YAML files parsed into frozen dataclasses at start-up.

Every mistake an operator can make is reported as a :class:`ConfigError` that
names the file, the line, the key path, the value and what was expected, with
a did-you-mean for misspelt keys. Plugins validate their own venue options
through the same :class:`ConfigSection`, so their errors read the same way.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tornado_engine.config.env import substitute as substitute_env

ENGINE_FILE = "engine.yaml"
VENUES_FILE = "venues.yaml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_MISSING = object()


class ConfigError(Exception):
    """A config file is wrong; the message says where and how to fix it."""

    def __init__(self, file: str, key: str, message: str, line: int | None = None) -> None:
        self.file, self.key, self.line, self.message = file, key, line, message
        where = f"{file}, line {line}" if line else file
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


class _LineDict(dict):
    """A mapping that remembers the line each key was written on."""

    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        mapping = _LineDict(super().construct_mapping(node, deep=deep))
        mapping.key_lines = {str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value}
        return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)


def _describe(value: Any) -> str:
    return "nothing" if value is None else f"{value!r} ({type(value).__name__})"


class ConfigSection:
    """One mapping of a config file, read key by key; unread keys are errors."""

    def __init__(self, data: Any, file: str, path: str = "", line: int | None = None) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(file, path, f"expected a mapping of keys, got {_describe(data)}", line)
        self._data = data
        self._file = file
        self._path = path
        self._line = line
        self._read: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    @property
    def file(self) -> str:
        return self._file

    def line_of(self, key: str) -> int | None:
        return getattr(self._data, "key_lines", {}).get(key, self._line)

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self._file, self._key(key), message, self.line_of(key))

    def as_dict(self) -> dict[str, Any]:
        """The raw mapping, as written (reload compares venue entries with it)."""
        return dict(self._data)

    def names(self) -> list[str]:
        return [str(k) for k in self._data]

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._read.add(key)
        if key in self._data and self._data[key] is not None:
            return self._data[key]
        if default is _MISSING:
            raise self.error(key, "is required")
        return default

    def section(self, key: str) -> ConfigSection:
        value = self.raw(key, None)
        return ConfigSection(value, self._file, self._key(key), self.line_of(key))

    def get_str(self, key: str, default: Any = _MISSING, choices: Iterable[str] = ()) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {_describe(value)}")
        choices = list(choices)
        if choices and value not in choices:
            hint = difflib.get_close_matches(value, choices, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise self.error(key, f"expected one of {', '.join(choices)}, got {value!r}{extra}")
        return value

    def get_bool(self, key: str, default: Any = _MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_describe(value)}")
        return value

    def get_number(
        self,
        key: str,
        default: Any = _MISSING,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
        exclusive_minimum: bool = False,
    ) -> Any:
        value = self.raw(key, default)
        if value is None:
            return None
        kind = "an integer" if integer else "a number"
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or not math.isfinite(value):
            raise self.error(key, f"expected {kind}, got {_describe(value)}")
        if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
            bound = "greater than" if exclusive_minimum else "at least"
            raise self.error(key, f"expected {kind} {bound} {minimum}, got {value!r}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"expected {kind} at most {maximum}, got {value!r}")
        return value

    def get_range(self, key: str, default: tuple[float, float], minimum: float = 0) -> tuple[float, float]:
        value = self.raw(key, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value, value]
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise self.error(key, f"expected [low, high] (two numbers), got {_describe(value)}")
        low, high = value
        if low < minimum or high < low:
            raise self.error(key, f"expected {minimum} <= low <= high, got [{low}, {high}]")
        return (float(low), float(high))

    def get_str_list(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, f"expected a list of strings, got {_describe(value)}")
        return value

    def unread(self) -> list[str]:
        return [k for k in self.names() if k not in self._read]

    def finish(self) -> None:
        """Reject every key nobody read: a misspelt key must not be silently ignored."""
        for key in self.unread():
            known = sorted(self._read)
            hint = difflib.get_close_matches(key, known, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise self.error(key, f"unknown key{extra} (known keys: {', '.join(known)})")


@dataclass(frozen=True)
class ServerConfig:
    port: int = 3000
    max_body_bytes: int = 65536
    websocket_ping_interval: float = 20.0
    websocket_max_buffer_bytes: int = 1_048_576
    websocket_stall_seconds: float = 10.0
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class RedisConfig:
    url: str | None = None
    key_prefix: str = "te"
    max_connections: int = 64


@dataclass(frozen=True)
class OrdersConfig:
    max_amount: float = 1_000_000.0
    waiting_ttl_seconds: float = 60.0
    retention_seconds: int = 86_400
    waiting_store: str = "memory"
    default_slippage_bps: int = 50
    max_slippage_bps: int = 5_000
    max_wait_seconds: float = 3_600.0
    waiting_interval_ms: float = 1_000.0
    admin_api: bool = False


@dataclass(frozen=True)
class RoutingConfig:
    """How orders are routed: split across venues, hop through intermediates, refresh stale quotes."""

    split: bool = True
    split_step_percent: int = 10
    split_min_gain_bps: float = 1.0
    multi_hop: bool = True
    intermediate_tokens: tuple[str, ...] = ("USDC", "SOL")
    quote_ttl_ms: float = 10_000.0
    max_requotes: int = 2


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 100
    max_attempts: int = 3
    backoff_base_ms: float = 500.0
    backoff_max_ms: float = 10_000.0
    quote_timeout_ms: float = 2_000.0
    swap_timeout_ms: float = 30_000.0
    visibility_timeout_seconds: float = 60.0
    shutdown_grace_seconds: float = 5.0


@dataclass(frozen=True)
class SimulationConfig:
    latency_scale: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    format: str = "plain"


@dataclass(frozen=True)
class PluginsConfig:
    """Plugins the operator switched off, by entry-point name (``tornado-engine venues`` lists them)."""

    disabled: tuple[str, ...] = ()
    file: str = ENGINE_FILE
    line: int | None = None


@dataclass(frozen=True)
class VenueConfig:
    """One entry of ``venues:``; ``options`` is validated by the venue's plugin."""

    name: str
    plugin: str
    enabled: bool
    tokens: tuple[str, ...]
    options: ConfigSection = field(compare=False, repr=False)


@dataclass(frozen=True)
class VenuesConfig:
    reference_prices: Mapping[str, float]
    venues: tuple[VenueConfig, ...]
    file: str = VENUES_FILE
    decimals: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineConfig:
    server: ServerConfig = ServerConfig()
    redis: RedisConfig = RedisConfig()
    orders: OrdersConfig = OrdersConfig()
    worker: WorkerConfig = WorkerConfig()
    simulation: SimulationConfig = SimulationConfig()
    logging: LoggingConfig = LoggingConfig()
    plugins: PluginsConfig = PluginsConfig()
    venues: VenuesConfig = VenuesConfig(reference_prices={}, venues=())
    routing: RoutingConfig = RoutingConfig()

    def replace(self, **sections: Any) -> EngineConfig:
        """A copy with some sections swapped, e.g. ``worker=WorkerConfig(...)``."""
        return EngineConfig(**{**self.__dict__, **sections})


def _read_yaml(path: Path) -> ConfigSection:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            str(path), "", f"not valid YAML: {problem}", mark.line + 1 if mark else None
        ) from None
    data = substitute_env(data, str(path), ConfigError)
    return ConfigSection(data, str(path))


def _parse_engine(root: ConfigSection) -> dict[str, Any]:
    s = root.section("server")
    server = ServerConfig(
        port=s.get_number("port", 3000, minimum=0, maximum=65535, integer=True),
        max_body_bytes=s.get_number("max_body_bytes", 65536, minimum=1, integer=True),
        websocket_ping_interval=s.get_number("websocket_ping_interval", 20.0, minimum=0),
        websocket_max_buffer_bytes=s.get_number(
            "websocket_max_buffer_bytes", 1_048_576, minimum=1024, integer=True
        ),
        websocket_stall_seconds=s.get_number(
            "websocket_stall_seconds", 10.0, minimum=0, exclusive_minimum=True
        ),
        allowed_origins=tuple(s.get_str_list("allowed_origins", [])),
    )
    s.finish()
    r = root.section("redis")
    redis = RedisConfig(
        url=r.get_str("url", None),
        key_prefix=r.get_str("key_prefix", "te"),
        max_connections=r.get_number("max_connections", 64, minimum=2, integer=True),
    )
    r.finish()
    o = root.section("orders")
    orders = OrdersConfig(
        max_amount=o.get_number("max_amount", 1_000_000.0, minimum=0, exclusive_minimum=True),
        waiting_ttl_seconds=o.get_number("waiting_ttl_seconds", 60.0, minimum=0, exclusive_minimum=True),
        retention_seconds=o.get_number("retention_seconds", 86_400, minimum=1, integer=True),
        waiting_store=o.get_str("waiting_store", "memory", choices=["memory", "redis"]),
        default_slippage_bps=o.get_number(
            "default_slippage_bps", 50, minimum=0, maximum=10_000, integer=True
        ),
        max_slippage_bps=o.get_number("max_slippage_bps", 5_000, minimum=0, maximum=10_000, integer=True),
        max_wait_seconds=o.get_number("max_wait_seconds", 3_600.0, minimum=0, exclusive_minimum=True),
        waiting_interval_ms=o.get_number("waiting_interval_ms", 1_000.0, minimum=10),
        admin_api=o.get_bool("admin_api", False),
    )
    o.finish()
    rt = root.section("routing")
    routing = RoutingConfig(
        split=rt.get_bool("split", True),
        split_step_percent=rt.get_number("split_step_percent", 10, minimum=1, maximum=50, integer=True),
        split_min_gain_bps=rt.get_number("split_min_gain_bps", 1.0, minimum=0),
        multi_hop=rt.get_bool("multi_hop", True),
        intermediate_tokens=tuple(rt.get_str_list("intermediate_tokens", ["USDC", "SOL"])),
        quote_ttl_ms=rt.get_number("quote_ttl_ms", 10_000.0, minimum=0, exclusive_minimum=True),
        max_requotes=rt.get_number("max_requotes", 2, minimum=0, integer=True),
    )
    rt.finish()
    w = root.section("worker")
    worker = WorkerConfig(
        concurrency=w.get_number("concurrency", 100, minimum=1, integer=True),
        max_attempts=w.get_number("max_attempts", 3, minimum=1, integer=True),
        backoff_base_ms=w.get_number("backoff_base_ms", 500.0, minimum=0),
        backoff_max_ms=w.get_number("backoff_max_ms", 10_000.0, minimum=0),
        quote_timeout_ms=w.get_number("quote_timeout_ms", 2_000.0, minimum=0, exclusive_minimum=True),
        swap_timeout_ms=w.get_number("swap_timeout_ms", 30_000.0, minimum=0, exclusive_minimum=True),
        visibility_timeout_seconds=w.get_number(
            "visibility_timeout_seconds", 60.0, minimum=0, exclusive_minimum=True
        ),
        shutdown_grace_seconds=w.get_number("shutdown_grace_seconds", 5.0, minimum=0),
    )
    w.finish()
    sim = root.section("simulation")
    simulation = SimulationConfig(
        latency_scale=sim.get_number("latency_scale", 1.0, minimum=0),
        seed=sim.get_number("seed", None, integer=True),
    )
    sim.finish()
    lg = root.section("logging")
    level = lg.get_str("level", "INFO")
    if level.upper() not in LOG_LEVELS:  # any case: operators write "debug" as often as "DEBUG"
        hint = difflib.get_close_matches(level.upper(), LOG_LEVELS, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise lg.error("level", f"expected one of {', '.join(LOG_LEVELS)}, got {level!r}{extra}")
    logging_config = LoggingConfig(
        level=level.upper(), format=lg.get_str("format", "plain", choices=["plain", "json"])
    )
    lg.finish()
    pl = root.section("plugins")
    plugins = PluginsConfig(
        disabled=tuple(pl.get_str_list("disabled", [])), file=pl.file, line=pl.line_of("disabled")
    )
    pl.finish()
    root.finish()
    return dict(
        server=server,
        redis=redis,
        orders=orders,
        worker=worker,
        simulation=simulation,
        logging=logging_config,
        plugins=plugins,
        routing=routing,
    )


def _parse_venues(root: ConfigSection, file: str) -> VenuesConfig:
    tokens = root.section("tokens")
    venues_section = root.section("venues")
    # Unknown top-level keys first: a misspelt "venue:" must be named, not reported as "no venues".
    root.finish()
    prices: dict[str, float] = {}
    decimals: dict[str, int] = {}
    for symbol in tokens.names():
        token = tokens.section(symbol)
        prices[symbol] = token.get_number("reference_price", minimum=0, exclusive_minimum=True)
        decimals[symbol] = token.get_number("decimals", 9, minimum=0, maximum=18, integer=True)
        token.finish()
    if not prices:
        raise root.error("tokens", "expected at least one token, e.g. SOL: {reference_price: 150}")
    venues = []
    for name in venues_section.names():
        entry = venues_section.section(name)
        plugin = entry.get_str("plugin")
        enabled = entry.get_bool("enabled", True)
        venue_tokens = entry.get_str_list("tokens", sorted(prices))
        for symbol in venue_tokens:
            if symbol not in prices:
                hint = difflib.get_close_matches(symbol, list(prices), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                raise entry.error("tokens", f"token {symbol!r} is not listed under tokens{extra}")
        venues.append(VenueConfig(name, plugin, enabled, tuple(venue_tokens), entry))
    if not venues:
        raise root.error("venues", "expected at least one venue")
    return VenuesConfig(reference_prices=prices, venues=tuple(venues), file=file, decimals=decimals)


def resolve_config_dir(path: str | os.PathLike | None) -> Path:
    """``--config`` may name the directory or its engine.yaml; default ``./config``."""
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
    engine = _parse_engine(_read_yaml(engine_file)) if engine_file.exists() else {}
    venues_file = directory / VENUES_FILE
    venues = _parse_venues(_read_yaml(venues_file), str(venues_file))
    return EngineConfig(venues=venues, **engine)
