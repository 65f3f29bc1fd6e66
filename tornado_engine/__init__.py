"""tornado-engine: order execution for crypto swaps over Tornado, Redis and pluggy venues.

This module is the public plugin API, the one place a venue plugin imports
from (its tests also use the kit in :mod:`tornado_engine.testing`); every
name here is documented in ``docs/plugins.rst``, and everything deeper is
the engine's own and may change.
"""

from tornado_engine.config import ConfigError, ConfigSection
from tornado_engine.orders.amounts import (
    DEFAULT_DECIMALS,
    AmountPrecisionError,
    from_units,
    to_decimal,
    to_units,
)
from tornado_engine.venues.api import (
    FinalVenueError,
    InsufficientLiquidityError,
    PoolAdmin,
    Quote,
    QuoteRequest,
    RetryableVenueError,
    SlippageError,
    SwapRequest,
    SwapResult,
    Venue,
    VenueError,
    VenueSettings,
)
from tornado_engine.venues.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DECIMALS",
    "AmountPrecisionError",
    "ConfigError",
    "ConfigSection",
    "FinalVenueError",
    "InsufficientLiquidityError",
    "PoolAdmin",
    "Quote",
    "QuoteRequest",
    "RetryableVenueError",
    "SlippageError",
    "SwapRequest",
    "SwapResult",
    "Venue",
    "VenueError",
    "VenueSettings",
    "__version__",
    "from_units",
    "hookimpl",
    "to_decimal",
    "to_units",
]
