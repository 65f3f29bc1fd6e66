"""A simulated venue that plugins build on: latencies, fees, variance, failures.

Both bundled mock venues are thin subclasses; a third-party plugin may use it
too. Every random decision draws from ``VenueSettings.random_for`` so a seeded
engine gives the same quotes and outcomes for the same order every run.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from tornado_engine.config import ConfigSection
from tornado_engine.venue import (
    FinalVenueError,
    Quote,
    QuoteRequest,
    RetryableVenueError,
    SwapRequest,
    SwapResult,
    Venue,
    VenueSettings,
)


@dataclass(frozen=True)
class SimulationOptions:
    fee: float
    price_variance: float
    quote_latency_ms: tuple[float, float]
    build_latency_ms: tuple[float, float]
    swap_latency_ms: tuple[float, float]
    quote_failure_rate: float
    failure_rate: float
    slippage_variance: float

    @classmethod
    def read(cls, options: ConfigSection, defaults: SimulationOptions) -> SimulationOptions:
        return cls(
            fee=options.get_number("fee", defaults.fee, minimum=0, maximum=0.5),
            price_variance=options.get_number(
                "price_variance", defaults.price_variance, minimum=0, maximum=0.5
            ),
            quote_latency_ms=options.get_range("quote_latency_ms", defaults.quote_latency_ms),
            build_latency_ms=options.get_range("build_latency_ms", defaults.build_latency_ms),
            swap_latency_ms=options.get_range("swap_latency_ms", defaults.swap_latency_ms),
            quote_failure_rate=options.get_number(
                "quote_failure_rate", defaults.quote_failure_rate, minimum=0, maximum=1
            ),
            failure_rate=options.get_number("failure_rate", defaults.failure_rate, minimum=0, maximum=1),
            slippage_variance=options.get_number(
                "slippage_variance", defaults.slippage_variance, minimum=0, maximum=0.5
            ),
        )


class SimulatedVenue(Venue):
    """Prices from the configured reference prices, moved by a random variance."""

    defaults = SimulationOptions(
        fee=0.003,
        price_variance=0.02,
        quote_latency_ms=(150, 250),
        build_latency_ms=(50, 150),
        swap_latency_ms=(2000, 3000),
        quote_failure_rate=0.0,
        failure_rate=0.1,
        slippage_variance=0.005,
    )

    def __init__(self, settings: VenueSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.tokens = settings.tokens
        self.options = SimulationOptions.read(settings.options, self.defaults)
        # The ledger of executed swaps, by idempotency key: what really "hit the chain".
        self.ledger: dict[str, SwapResult] = {}

    async def _delay(self, span: tuple[float, float], *parts: object) -> None:
        scale = self.settings.latency_scale
        if scale <= 0:
            return
        await asyncio.sleep(self.settings.random_for("latency", *parts).uniform(*span) * scale / 1000)

    def reference_price(self, from_token: str, to_token: str) -> float:
        prices = self.settings.reference_prices
        return prices[from_token] / prices[to_token]

    async def quote(self, request: QuoteRequest) -> Quote:
        if not self.supports(request.from_token, request.to_token):
            raise FinalVenueError(f"{self.name} does not trade {request.from_token}/{request.to_token}")
        await self._delay(self.options.quote_latency_ms, "quote", request.order_id)
        rng = self.settings.random_for("quote", request.order_id)
        if rng.random() < self.options.quote_failure_rate:
            raise RetryableVenueError(f"{self.name} RPC error while quoting")
        variance = self.options.price_variance
        price = self.reference_price(request.from_token, request.to_token) * (
            1 + rng.uniform(-variance, variance)
        )
        fee = self.options.fee
        return Quote(venue=self.name, price=price, fee=fee, amount_out=request.amount * price * (1 - fee))

    async def build(self, request: SwapRequest) -> None:
        await self._delay(self.options.build_latency_ms, "build", request.idempotency_key)

    async def swap(self, request: SwapRequest) -> SwapResult:
        if request.idempotency_key in self.ledger:
            return self.ledger[request.idempotency_key]
        await self._delay(self.options.swap_latency_ms, "swap", request.idempotency_key)
        rng = self.settings.random_for("swap", request.idempotency_key)
        if rng.random() < self.options.failure_rate:
            raise RetryableVenueError(f"{self.name} transaction was not confirmed (simulated RPC failure)")
        slip = self.options.slippage_variance
        execution_price = request.quote.price * (1 + rng.uniform(-slip, slip))
        digest = hashlib.sha256(f"{self.name}:{request.idempotency_key}".encode()).digest()
        result = SwapResult(
            tx_hash=_base58(digest),
            execution_price=execution_price,
            amount_out=request.amount * execution_price * (1 - request.quote.fee),
        )
        self.ledger[request.idempotency_key] = result
        return result


_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    """Solana signatures are base58; make the simulated ones look the part."""
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out)) or "1"
