"""A mock Raydium-like venue: AMM fees of 0.3 %, quick quotes, occasional RPC failures.

Built exactly as a third-party plugin is: a module with a ``register_venues``
hook implementation, listed under the ``tornado_engine`` entry-point group.
"""

from tornado_engine import hookimpl
from tornado_engine.simulation import SimulatedVenue, SimulationOptions


class RaydiumLikeVenue(SimulatedVenue):
    defaults = SimulationOptions(
        fee=0.003,
        price_variance=0.02,
        quote_latency_ms=(150, 250),
        build_latency_ms=(50, 150),
        swap_latency_ms=(2000, 3000),
        quote_failure_rate=0.0,
        failure_rate=0.05,
        slippage_variance=0.005,
    )


@hookimpl
def register_venues(register):
    register("mock-raydium", RaydiumLikeVenue)
