"""A mock Meteora-like venue: bin-based concentrated liquidity (DLMM), a 0.2 % base fee plus a
variable fee that rises with volatility, slower quotes.

Built exactly as a third-party plugin is: a module with a ``register_venues``
hook implementation, listed under the ``tornado_engine`` entry-point group,
importing only tornado-engine's public API and the simulation toolkit.
"""

from collections.abc import Callable

from tornado_engine_simulation import SimulatedVenue, SimulationOptions

from tornado_engine import Venue, VenueSettings, hookimpl


class MeteoraLikeVenue(SimulatedVenue):
    pool_model = "bins"
    defaults = SimulationOptions(
        fee=0.002,
        price_variance=0.0,
        quote_latency_ms=(200, 300),
        build_latency_ms=(50, 150),
        swap_latency_ms=(2000, 3000),
        quote_failure_rate=0.0,
        failure_rate=0.05,
        slippage_variance=0.001,
    )


@hookimpl
def register_venues(register: Callable[[str, Callable[[VenueSettings], Venue]], None]) -> None:
    register("mock-meteora", MeteoraLikeVenue)
