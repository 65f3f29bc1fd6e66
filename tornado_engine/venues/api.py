"""The venue adapter interface: what a plugin's venue object must provide.

Adapters do their I/O in async methods; the engine wraps every call in a
timeout, so an adapter never needs to guard against hanging itself, but it
must classify its failures: a :class:`RetryableVenueError` may succeed on a
later attempt (a timeout, an RPC error), a :class:`FinalVenueError` will not
(insufficient liquidity, an unsupported pair). Any other exception is treated
as retryable and logged as a plugin bug.

A venue may also offer optional capabilities, each a small Protocol the
engine checks for (:class:`PoolAdmin`), so the engine never needs to know
which plugin built the venue.
"""

from __future__ import annotations

import abc
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tornado_engine.config import ConfigSection
from tornado_engine.orders.amounts import DEFAULT_DECIMALS


class VenueError(Exception):
    """A venue could not quote or swap; ``retryable`` says whether to try again."""

    retryable = True


class RetryableVenueError(VenueError):
    retryable = True


class FinalVenueError(VenueError):
    retryable = False


class InsufficientLiquidityError(FinalVenueError):
    """The pool cannot fill the amount; trying again will not help."""


class SlippageError(FinalVenueError):
    """The swap would have paid less than the order's ``min_amount_out``; nothing was traded."""


@dataclass(frozen=True)
class VenueSettings:
    """What the engine hands a venue factory: the operator's config for one venue.

    ``options`` holds every key of the venue's ``venues.yaml`` entry except the
    ones the engine itself reads (``plugin``, ``enabled``, ``tokens``); the
    factory reads them through it, so a bad one raises a ``ConfigError``
    naming the file, line and key.
    """

    name: str
    kind: str
    tokens: frozenset[str]
    options: ConfigSection
    reference_prices: Mapping[str, float]
    latency_scale: float = 1.0
    seed: int | None = None
    decimals: Mapping[str, int] = field(default_factory=dict)

    def decimals_of(self, token: str) -> int:
        """The token's decimals from ``venues.yaml`` (default 9, as SOL)."""
        return self.decimals.get(token, DEFAULT_DECIMALS)

    def random_for(self, *parts: object) -> random.Random:
        """A generator for one decision: seeded from ``seed`` and ``parts`` when a
        seed is set, so outcomes do not depend on how concurrent orders interleave."""
        if self.seed is None:
            return random.Random()
        return random.Random(":".join(str(p) for p in (self.seed, self.name, *parts)))


@dataclass(frozen=True)
class QuoteRequest:
    """``amount`` in token units; ``amount_units`` the same amount exactly, in base units."""

    order_id: str
    from_token: str
    to_token: str
    amount: float
    amount_units: int | None = None


@dataclass(frozen=True)
class Quote:
    """A venue's offer: ``price`` is toToken per fromToken, ``fee`` a fraction of the input.

    ``amount_out == amount * price * (1 - fee)``. The optional fields are what
    a pool-backed venue knows besides (all default to None, so an adapter
    written for the first four keeps working): ``in_amount``/``out_amount``
    and ``fee_amount`` exactly in base units, ``price_impact_pct`` (percent,
    like Jupiter's), ``liquidity`` (toToken units the pool could pay out) and
    ``expires_at`` (epoch seconds after which the venue no longer stands by it).
    """

    venue: str
    price: float
    fee: float
    amount_out: float
    in_amount: int | None = None
    out_amount: int | None = None
    fee_amount: int | None = None
    price_impact_pct: float | None = None
    liquidity: float | None = None
    expires_at: float | None = field(default=None, compare=False)

    def as_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "dex": self.venue,
            "price": self.price,
            "fee": self.fee,
            "amountOut": self.amount_out,
        }
        if self.in_amount is not None:
            frame["inAmount"] = str(self.in_amount)
        if self.out_amount is not None:
            frame["outAmount"] = str(self.out_amount)
        if self.fee_amount is not None:
            frame["feeAmount"] = str(self.fee_amount)
        if self.price_impact_pct is not None:
            frame["priceImpactPct"] = self.price_impact_pct
        if self.liquidity is not None:
            frame["liquidity"] = self.liquidity
        return frame


@dataclass(frozen=True)
class SwapRequest:
    """A swap to execute; ``idempotency_key`` is unique per order, attempt and leg.

    ``deadline`` (epoch seconds, set on every ``swap`` call, None on ``build``)
    is the venue's fence: after it the venue must not execute the swap, so
    the engine can trust ``status`` once the deadline has passed (a worker
    that stalled mid-call cannot trade after another worker resent the swap).
    It is left out of equality: one swap resent later is the same swap.
    """

    order_id: str
    idempotency_key: str
    from_token: str
    to_token: str
    amount: float
    quote: Quote
    amount_units: int | None = None
    min_amount_out: int | None = None
    deadline: float | None = field(default=None, compare=False)

    def past_deadline(self, now: float | None = None) -> bool:
        """True once ``deadline`` has passed: raise :class:`FinalVenueError` and trade nothing."""
        return self.deadline is not None and (time.time() if now is None else now) > self.deadline


@dataclass(frozen=True)
class SwapResult:
    """What executed; ``out_amount`` is ``amount_out`` exactly in base units, when known."""

    tx_hash: str
    execution_price: float
    amount_out: float
    out_amount: int | None = None


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

        When ``request.min_amount_out`` is set (base units of toToken) and the
        swap would pay less, raise :class:`SlippageError` and trade nothing.

        When ``request.past_deadline()`` at the moment it would execute, raise
        :class:`FinalVenueError` and trade nothing: the engine may already
        have resent the swap from another worker.

        Must be idempotent by ``request.idempotency_key``: a second call with a
        key that already executed returns the first result and trades nothing.
        The engine does not rely on it alone: it never sends a key again
        while an earlier call with it may still execute.
        """

    async def status(self, idempotency_key: str) -> SwapResult | None:
        """The outcome of the swap submitted with ``idempotency_key``.

        Returns the result when it executed, None when it did not (the engine
        may then resubmit it), or raises :class:`VenueError` when it failed.
        None must be final once the swap call has ended or its ``deadline``
        has passed. The engine calls it after every failed or timed-out swap
        (whatever the error claimed: a swap found here is confirmed, not
        retried) and when it takes over an order whose previous worker may
        have sent a swap, so a swap is never sent twice. Adapters that cannot
        tell raise :class:`NotImplementedError`: their errors are then taken
        at their word, and a swap whose call timed out, crashed or was taken
        over fails with "outcome unknown" instead of being resubmitted blindly.
        """
        raise NotImplementedError

    def supports(self, from_token: str, to_token: str) -> bool:
        return from_token in self.tokens and to_token in self.tokens


@runtime_checkable
class PoolAdmin(Protocol):
    """Optional: a venue whose pools can be listed and opened while the engine runs.

    ``/api/admin/pools`` serves the venues that have both methods; subclass it
    next to :class:`Venue` (as the simulated venues do) or just provide them.
    """

    def describe_pools(self) -> list[dict[str, Any]]:
        """Every pool with its current state, one JSON object each."""

    def add_pool(self, pair: tuple[str, str], options: ConfigSection) -> None:
        """Open (or replace) the pool for ``pair`` (base, quote) configured by ``options``.

        Raises ``ConfigError`` (``options.error(key, message)``) naming a bad key.
        """
