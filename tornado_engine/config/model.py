"""What the engine can be configured with: frozen dataclasses, each default written here once.

Every field declared with :func:`setting` is a key of its section in
``engine.yaml`` (or a token in ``venues.yaml``), with its default and bounds;
the loader reads these declarations and repeats none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tornado_engine.config.section import ConfigSection
from tornado_engine.config.settings import setting
from tornado_engine.orders.amounts import DEFAULT_DECIMALS

ENGINE_FILE = "engine.yaml"
VENUES_FILE = "venues.yaml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class ServerConfig:
    port: int = setting(3000, minimum=0, maximum=65535)
    max_body_bytes: int = setting(65536, minimum=1)
    websocket_ping_interval: float = setting(20.0, minimum=0)
    websocket_max_buffer_bytes: int = setting(1_048_576, minimum=1024)
    websocket_stall_seconds: float = setting(10.0, minimum=0, exclusive_minimum=True)
    allowed_origins: tuple[str, ...] = setting(("*",))
    header_timeout_seconds: float = setting(30.0, minimum=0, exclusive_minimum=True)
    body_timeout_seconds: float = setting(30.0, minimum=0, exclusive_minimum=True)
    max_header_bytes: int = setting(65536, minimum=1024)
    allowed_hosts: tuple[str, ...] = setting(())


@dataclass(frozen=True)
class AuthConfig:
    """API keys (``tornado-engine keys``): off by default, so the original service's clients work."""

    required: bool = setting(False)
    cache_seconds: float = setting(5.0, minimum=0)


@dataclass(frozen=True)
class LimitsConfig:
    """Per-client order limits: for each API key when keys are on; per address only when asked."""

    per_address: bool = setting(False)
    orders_per_second: float = setting(10.0, minimum=0)
    burst: int = setting(100, minimum=1)
    max_in_flight: int = setting(1000, minimum=0)
    max_waiting: int = setting(200, minimum=0)


@dataclass(frozen=True)
class RedisConfig:
    url: str | None = setting(None)
    key_prefix: str = setting("te")
    max_connections: int = setting(64, minimum=2)


@dataclass(frozen=True)
class OrdersConfig:
    max_amount: float = setting(1_000_000.0, minimum=0, exclusive_minimum=True)
    waiting_ttl_seconds: float = setting(60.0, minimum=0, exclusive_minimum=True)
    retention_seconds: int = setting(86_400, minimum=1)
    waiting_store: str = setting("auto", choices=("auto", "memory", "redis"))
    default_slippage_bps: int = setting(50, minimum=0, maximum=10_000)
    max_slippage_bps: int = setting(5_000, minimum=0, maximum=10_000)
    max_wait_seconds: float = setting(3_600.0, minimum=0, exclusive_minimum=True)
    waiting_interval_ms: float = setting(1_000.0, minimum=10)
    admin_api: bool = setting(False)
    idempotency_window_seconds: int = setting(86_400, minimum=1)


@dataclass(frozen=True)
class RoutingConfig:
    """How orders are routed: split across venues, hop through intermediates, refresh stale quotes."""

    split: bool = setting(True)
    split_step_percent: int = setting(10, minimum=1, maximum=50)
    split_min_gain_bps: float = setting(1.0, minimum=0)
    multi_hop: bool = setting(True)
    intermediate_tokens: tuple[str, ...] = setting(("USDC", "SOL"))
    quote_ttl_ms: float = setting(10_000.0, minimum=0, exclusive_minimum=True)
    max_requotes: int = setting(2, minimum=0)


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = setting(100, minimum=1)
    max_attempts: int = setting(3, minimum=1)
    backoff_base_ms: float = setting(500.0, minimum=0)
    backoff_max_ms: float = setting(10_000.0, minimum=0)
    quote_timeout_ms: float = setting(2_000.0, minimum=0, exclusive_minimum=True)
    swap_timeout_ms: float = setting(30_000.0, minimum=0, exclusive_minimum=True)
    visibility_timeout_seconds: float = setting(60.0, minimum=0, exclusive_minimum=True)
    shutdown_grace_seconds: float = setting(5.0, minimum=0)
    loop_stall_threshold_ms: float = setting(100.0, minimum=0, exclusive_minimum=True)


@dataclass(frozen=True)
class SimulationConfig:
    latency_scale: float = setting(1.0, minimum=0)
    seed: int | None = setting(None)


@dataclass(frozen=True)
class LoggingConfig:
    level: str = setting("INFO", choices=LOG_LEVELS, any_case=True)
    format: str = setting("plain", choices=("plain", "json"))


@dataclass(frozen=True)
class PluginsConfig:
    """Plugins the operator switched off, by entry-point name (``tornado-engine venues`` lists them)."""

    disabled: tuple[str, ...] = setting(())
    file: str = ENGINE_FILE  # where ``disabled`` was written, for errors about its names
    line: int | None = None


@dataclass(frozen=True)
class TokenConfig:
    """One entry of ``tokens:`` in venues.yaml."""

    reference_price: float = setting(minimum=0, exclusive_minimum=True)
    decimals: int = setting(DEFAULT_DECIMALS, minimum=0, maximum=18)


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
    auth: AuthConfig = AuthConfig()
    limits: LimitsConfig = LimitsConfig()

    def replace(self, **sections: Any) -> EngineConfig:
        """A copy with some sections swapped, e.g. ``worker=WorkerConfig(...)``."""
        return EngineConfig(**{**self.__dict__, **sections})
