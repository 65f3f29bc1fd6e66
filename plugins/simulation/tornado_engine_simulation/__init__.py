"""A toolkit for simulated DEX venues: pools, pool math, latencies, failures, a ledger.

Built on tornado-engine's public plugin API only, as any third-party plugin
is. :class:`SimulatedVenue` implements the whole venue interface (and the
optional pool admin) on simulated pools; the bundled ``mock-raydium`` and
``mock-meteora`` plugins are small subclasses of it, and a plugin of yours
may subclass it too.
"""

from tornado_engine_simulation.amm import InsufficientLiquidity
from tornado_engine_simulation.pools import MODELS, PoolBook, PoolDefaults, parse_pair
from tornado_engine_simulation.venue import Ledger, SimulatedVenue, SimulationOptions

__all__ = [
    "MODELS",
    "InsufficientLiquidity",
    "Ledger",
    "PoolBook",
    "PoolDefaults",
    "SimulatedVenue",
    "SimulationOptions",
    "parse_pair",
]
