"""Executing one order: routing, building, submission, confirmation, retries.

Every stage is an event recorded in Redis through an :class:`Emitter`; the
worker never talks to a socket. A failure is retried only when it is
retryable and attempts remain, with exponential backoff, and the client sees
each decision as a ``retrying`` or ``failed`` frame that says why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tornado_engine.config import WorkerConfig
from tornado_engine.frames import order_frame
from tornado_engine.orders import Order
from tornado_engine.router import best_quote, gather_quotes
from tornado_engine.statuses import Status
from tornado_engine.store import OrderStore
from tornado_engine.venue import QuoteRequest, SwapRequest, SwapResult, Venue, VenueError

log = logging.getLogger(__name__)


class OwnershipLost(Exception):
    """Another worker recorded this order's next event first: stop, it owns the order now."""


class StageError(Exception):
    def __init__(self, message: str, retryable: bool, **fields: Any) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.fields = fields


class Emitter:
    """Numbers and records an order's events; seq continues from what Redis holds."""

    def __init__(self, store: OrderStore, order_id: str, last_seq: int) -> None:
        self.store = store
        self.order_id = order_id
        self.seq = last_seq

    async def emit(self, status: Status, **fields: Any) -> None:
        frame = order_frame(self.order_id, status, self.seq + 1, **fields)
        if not await self.store.append(self.order_id, frame):
            raise OwnershipLost(f"seq {self.seq + 1} of orderId={self.order_id} was already recorded")
        self.seq += 1
        log.info("event orderId=%s status=%s seq=%s", self.order_id, status, self.seq)


def backoff_ms(config: WorkerConfig, attempt: int) -> float:
    """Delay before attempt ``attempt + 1``: base, 2x base, 4x base ... capped."""
    return min(config.backoff_base_ms * 2 ** (attempt - 1), config.backoff_max_ms)


async def _call_venue(venue: Venue, stage: str, call: Awaitable[Any], timeout_s: float) -> Any:
    """Run one venue call under a timeout and classify whatever goes wrong."""
    try:
        return await asyncio.wait_for(call, timeout_s)
    except asyncio.TimeoutError:
        raise StageError(
            f"{venue.name} did not answer {stage} within {timeout_s * 1000:g} ms", True
        ) from None
    except VenueError as exc:
        raise StageError(f"{venue.name}: {exc}", exc.retryable) from exc
    except Exception as exc:
        log.exception("venue %s raised during %s", venue.name, stage)
        raise StageError(
            f"{venue.name}: internal error in venue plugin ({type(exc).__name__})", True
        ) from exc


class OrderExecutor:
    def __init__(
        self,
        venues: Callable[[], Mapping[str, Venue]],
        config: WorkerConfig,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.venues = venues
        self.config = config
        self.sleep = sleep

    async def execute(self, order: Order, emitter: Emitter, first_attempt: int = 1) -> Status:
        """Drive ``order`` to a terminal status and return it."""
        attempt = first_attempt
        while True:
            try:
                await self._attempt(order, emitter, attempt)
                return Status.CONFIRMED
            except StageError as exc:
                log.warning("attempt %s of orderId=%s failed: %s", attempt, order.order_id, exc)
                if exc.retryable and attempt < self.config.max_attempts:
                    delay = backoff_ms(self.config, attempt)
                    await emitter.emit(
                        Status.RETRYING,
                        attempt=attempt,
                        nextAttemptInMs=round(delay),
                        error=str(exc),
                        **exc.fields,
                    )
                    await self.sleep(delay / 1000)
                    attempt += 1
                    continue
                reason = str(exc) if not exc.retryable else f"{exc} (after {attempt} attempts)"
                await emitter.emit(Status.FAILED, error=reason, attempts=attempt, **exc.fields)
                return Status.FAILED

    async def _attempt(self, order: Order, emitter: Emitter, attempt: int) -> None:
        venues = self.venues()
        request = QuoteRequest(order.order_id, order.from_token, order.to_token, order.amount)
        outcomes = await gather_quotes(venues.values(), request, self.config.quote_timeout_ms / 1000)
        best = best_quote(outcomes)
        quotes = [o.as_frame() for o in outcomes]
        if best is None:
            detail = "; ".join(f"{o.venue}: {o.error}" for o in outcomes) or "no venue trades this pair"
            raise StageError(f"no venue returned a quote ({detail})", True, quotes=quotes)
        await emitter.emit(
            Status.ROUTING, bestDex=best.venue, bestPrice=best.price, quotes=quotes, attempt=attempt
        )
        venue = venues[best.venue]
        swap = SwapRequest(
            order_id=order.order_id,
            idempotency_key=f"{order.order_id}:{attempt}",
            from_token=order.from_token,
            to_token=order.to_token,
            amount=order.amount,
            quote=best,
        )
        timeout_s = self.config.swap_timeout_ms / 1000
        await emitter.emit(Status.BUILDING, dex=venue.name)
        await _call_venue(venue, "building", venue.build(swap), timeout_s)
        await emitter.emit(Status.SUBMITTED, dex=venue.name)
        result = await _call_venue(venue, "the swap", venue.swap(swap), timeout_s)
        if not isinstance(result, SwapResult):
            raise StageError(
                f"{venue.name}: venue plugin returned {type(result).__name__}, not a SwapResult", True
            )
        await emitter.emit(
            Status.CONFIRMED,
            dex=venue.name,
            txHash=result.tx_hash,
            executionPrice=result.execution_price,
            amountOut=result.amount_out,
        )
