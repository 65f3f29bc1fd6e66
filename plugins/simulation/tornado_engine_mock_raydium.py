"""A mock Raydium-like venue: constant-product pools (x * y = k), a 0.3 % fee taken from the input.

Built exactly as a third-party plugin is: a module with a ``register_venues``
hook implementation, listed under the ``tornado_engine`` entry-point group,
importing only tornado-engine's public API and the simulation toolkit.
"""

from collections.abc import Callable

from tornado_engine_simulation import SimulatedVenue, SimulationOptions

from tornado_engine import Venue, VenueSettings, hookimpl


class RaydiumLikeVenue(SimulatedVenue):
    pool_model = "constant_product"
    defaults = SimulationOptions(
        fee=0.003,
        price_variance=0.0,
        quote_latency_ms=(150, 250),
        build_latency_ms=(50, 150),
        swap_latency_ms=(2000, 3000),
        quote_failure_rate=0.0,
        failure_rate=0.05,
        slippage_variance=0.001,
    )


@hookimpl
def register_venues(register: Callable[[str, Callable[[VenueSettings], Venue]], None]) -> None:
    register("mock-raydium", RaydiumLikeVenue)
