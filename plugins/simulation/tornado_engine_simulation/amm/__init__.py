"""Pool math for the simulated venues: pure functions over integer base units.

Nothing here does I/O or keeps time; venues own the pools and call these.
Every rounding goes in the pool's favour (outputs down, fees up), so a pool
can never be drained by rounding.
"""

from tornado_engine_simulation.amm.errors import InsufficientLiquidity

__all__ = ["InsufficientLiquidity"]
