"""tornado-engine: order execution for crypto swaps over Tornado, Redis and pluggy venues."""

from tornado_engine.venues.api import (
    FinalVenueError,
    Quote,
    QuoteRequest,
    RetryableVenueError,
    SwapRequest,
    SwapResult,
    Venue,
    VenueError,
    VenueSettings,
)
from tornado_engine.venues.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "FinalVenueError",
    "Quote",
    "QuoteRequest",
    "RetryableVenueError",
    "SwapRequest",
    "SwapResult",
    "Venue",
    "VenueError",
    "VenueSettings",
    "__version__",
    "hookimpl",
]
