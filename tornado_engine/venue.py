"""The venue adapter interface: what a plugin's venue object must provide.

Adapters do their I/O in async methods; the engine wraps every call in a
timeout, so an adapter never needs to guard against hanging itself, but it
must classify its failures: a :class:`RetryableVenueError` may succeed on a
later attempt (a timeout, an RPC error), a :class:`FinalVenueError` will not
(insufficient liquidity, an unsupported pair). Any other exception is treated
as retryable and logged as a plugin bug.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class VenueError(Exception):
    """A venue could not quote or swap; ``retryable`` says whether to try again."""

    retryable = True


class RetryableVenueError(VenueError):
    retryable = True


class FinalVenueError(VenueError):
    retryable = False


@dataclass(frozen=True)
class VenueSettings:
    """What the engine hands a venue factory: the operator's config for one venue.

    ``options`` holds every key of the venue's ``venues.yaml`` entry except the
    ones the engine itself reads (``plugin``, ``enabled``, ``tokens``); the
    factory validates them and raises ``ValueError`` naming the key on a bad one.
    """

    name: str
    kind: str
    tokens: frozenset[str]
    options: Mapping[str, Any]
    reference_prices: Mapping[str, float]
    latency_scale: float = 1.0
    seed: int | None = None

    def random_for(self, *parts: object) -> random.Random:
        """A generator for one decision: seeded from ``seed`` and ``parts`` when a
        seed is set, so outcomes do not depend on how concurrent orders interleave."""
        if self.seed is None:
            return random.Random()
        return random.Random(":".join(str(p) for p in (self.seed, self.name, *parts)))


@dataclass(frozen=True)
class QuoteRequest:
    order_id: str
    from_token: str
    to_token: str
    amount: float


@dataclass(frozen=True)
class Quote:
    """A venue's offer: ``price`` is toToken per fromToken, ``fee`` a fraction of the input."""

    venue: str
    price: float
    fee: float
    amount_out: float

    def as_frame(self) -> dict[str, Any]:
        return {"dex": self.venue, "price": self.price, "fee": self.fee, "amountOut": self.amount_out}


@dataclass(frozen=True)
class SwapRequest:
    """A swap to execute; ``idempotency_key`` is unique per order and attempt."""

    order_id: str
    idempotency_key: str
    from_token: str
    to_token: str
    amount: float
    quote: Quote


@dataclass(frozen=True)
class SwapResult:
    tx_hash: str
    execution_price: float
    amount_out: float


class Venue(abc.ABC):
    """One configured venue. Subclass it, or provide the same attributes and methods."""

    name: str
    tokens: frozenset[str]

    @abc.abstractmethod
    async def quote(self, request: QuoteRequest) -> Quote:
        """Price ``request`` on this venue, or raise :class:`VenueError`."""

    @abc.abstractmethod
    async def build(self, request: SwapRequest) -> None:
        """Prepare the transaction for ``request`` (simulated), or raise :class:`VenueError`."""

    @abc.abstractmethod
    async def swap(self, request: SwapRequest) -> SwapResult:
        """Submit and confirm ``request``, or raise :class:`VenueError`.

        Must be idempotent by ``request.idempotency_key``: a second call with a
        key that already executed returns the first result and trades nothing.
        """

    async def status(self, idempotency_key: str) -> SwapResult | None:
        """The outcome of the swap submitted with ``idempotency_key``.

        Returns the result when it executed, None when the venue never saw it
        (the engine may then resubmit it), or raises :class:`VenueError` when
        it failed. The engine calls it when it takes over an order whose
        previous worker died after submitting, so a swap is never sent twice.
        Adapters that cannot tell raise :class:`NotImplementedError`, and such
        orders fail with "outcome unknown" instead of being resubmitted blindly.
        """
        raise NotImplementedError

    def supports(self, from_token: str, to_token: str) -> bool:
        return from_token in self.tokens and to_token in self.tokens
