"""A constant-price venue: quotes the reference price less a fixed spread, never fails.

Written against the bare :class:`tornado_engine.Venue` interface (not the
simulation toolkit, ``tornado_engine_simulation``) to show everything an adapter must do itself:
read and validate its options, classify its errors, make ``swap`` idempotent
by ``idempotency_key`` (even for two concurrent calls) and answer ``status``.
"""

from __future__ import annotations

import asyncio
import hashlib

from tornado_engine import (
    FinalVenueError,
    Quote,
    QuoteRequest,
    SwapRequest,
    SwapResult,
    Venue,
    VenueSettings,
    hookimpl,
)


class OrcaLikeVenue(Venue):
    """Options in venues.yaml: ``fee`` (0.0025), ``spread`` (0.001), ``latency_ms`` (20)."""

    def __init__(self, settings: VenueSettings) -> None:
        options = settings.options
        self.name = settings.name
        self.tokens = settings.tokens
        self.prices = settings.reference_prices
        self.fee = options.get_number("fee", 0.0025, minimum=0, maximum=0.5)
        self.spread = options.get_number("spread", 0.001, minimum=0, maximum=0.5)
        self.latency_s = options.get_number("latency_ms", 20, minimum=0) / 1000 * settings.latency_scale
        self.executed: dict[str, SwapResult] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _price(self, from_token: str, to_token: str) -> float:
        return self.prices[from_token] / self.prices[to_token] * (1 - self.spread)

    async def quote(self, request: QuoteRequest) -> Quote:
        if not self.supports(request.from_token, request.to_token):
            raise FinalVenueError(f"{self.name} does not trade {request.from_token}/{request.to_token}")
        await asyncio.sleep(self.latency_s)
        price = self._price(request.from_token, request.to_token)
        return Quote(self.name, price, self.fee, request.amount * price * (1 - self.fee))

    async def build(self, request: SwapRequest) -> None:
        await asyncio.sleep(self.latency_s)

    async def swap(self, request: SwapRequest) -> SwapResult:
        # One lock per key: a second call waits for the first and returns its result.
        async with self._locks.setdefault(request.idempotency_key, asyncio.Lock()):
            done = self.executed.get(request.idempotency_key)
            if done is not None:
                return done
            await asyncio.sleep(self.latency_s)
            if request.past_deadline():  # the engine may already have resent it elsewhere
                raise FinalVenueError(f"{self.name}: the swap arrived after its deadline; nothing traded")
            digest = hashlib.sha256(f"{self.name}:{request.idempotency_key}".encode()).hexdigest()
            price = request.quote.price
            result = SwapResult(digest, price, request.amount * price * (1 - request.quote.fee))
            self.executed[request.idempotency_key] = result
            return result

    async def status(self, idempotency_key: str) -> SwapResult | None:
        return self.executed.get(idempotency_key)


@hookimpl
def register_venues(register):
    register("mock-orca", OrcaLikeVenue)
