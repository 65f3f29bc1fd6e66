"""Configuration: YAML files parsed into frozen dataclasses at start-up.

Every mistake an operator can make is reported as a :class:`ConfigError` that
names the file, the line, the key path, the value and what was expected, with
a did-you-mean for misspelt keys. Plugins validate their own venue options
through the same :class:`ConfigSection`, so their errors read the same way.

The package, one job a module: :mod:`.errors` (the exception), :mod:`.hints`
(did-you-mean), :mod:`.section` (typed reads of one mapping), :mod:`.yaml_file`
(a file with line numbers), :mod:`.env` (``${NAME}`` references),
:mod:`.settings` (a setting declared once on its field), :mod:`.model` (the
dataclasses and their defaults), :mod:`.loader` (a directory into an
:class:`EngineConfig`).
"""

from tornado_engine.config.errors import ConfigError
from tornado_engine.config.loader import load_config, resolve_config_dir
from tornado_engine.config.model import (
    ENGINE_FILE,
    LOG_LEVELS,
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

__all__ = [
    "ENGINE_FILE",
    "LOG_LEVELS",
    "VENUES_FILE",
    "AuthConfig",
    "ConfigError",
    "ConfigSection",
    "EngineConfig",
    "LimitsConfig",
    "LoggingConfig",
    "OrdersConfig",
    "PluginsConfig",
    "RedisConfig",
    "RoutingConfig",
    "ServerConfig",
    "SimulationConfig",
    "TokenConfig",
    "VenueConfig",
    "VenuesConfig",
    "WorkerConfig",
    "load_config",
    "resolve_config_dir",
]
