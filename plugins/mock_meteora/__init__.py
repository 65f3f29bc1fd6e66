"""A mock Meteora-like venue: lower fees (0.2 %), wider price spread, slower quotes.

Built exactly as a third-party plugin is: a module with a ``register_venues``
hook implementation, listed under the ``tornado_engine`` entry-point group.
"""

from tornado_engine import hookimpl
from tornado_engine.simulation import SimulatedVenue, SimulationOptions


class MeteoraLikeVenue(SimulatedVenue):
    defaults = SimulationOptions(
        fee=0.002,
        price_variance=0.03,
        quote_latency_ms=(200, 300),
        build_latency_ms=(50, 150),
        swap_latency_ms=(2000, 3000),
        quote_failure_rate=0.0,
        failure_rate=0.05,
        slippage_variance=0.005,
    )


@hookimpl
def register_venues(register):
    register("mock-meteora", MeteoraLikeVenue)
