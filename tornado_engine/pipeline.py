"""Executing one order: routing, building, submission, confirmation, retries.

Every stage is an event recorded in Redis through an :class:`Emitter`; the
worker never talks to a socket. A failure is retried only when it is
retryable and attempts remain, with exponential backoff, and the client sees
each decision as a ``retrying`` or ``failed`` frame that says why. A swap
whose fate is unclear (a timeout, a worker that died after submitting) is
looked up at the venue by its idempotency key before anything is resent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tornado_engine.config import WorkerConfig
from tornado_engine.frames import dumps, order_frame
from tornado_engine.orders import Order
from tornado_engine.router import QuoteOutcome, best_quote, gather_quotes
from tornado_engine.statuses import Status
from tornado_engine.store import OrderStore
from tornado_engine.venue import Quote, QuoteRequest, SwapRequest, SwapResult, Venue, VenueError

log = logging.getLogger(__name__)


class OwnershipLost(Exception):
    """Another worker recorded this order's next event first: stop, it owns the order now."""


class StageError(Exception):
    """An attempt failed. ``ambiguous``: a swap call ended without saying whether it executed."""

    def __init__(self, message: str, retryable: bool, ambiguous: bool = False, **fields: Any) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.ambiguous = ambiguous
        self.fields = fields


class Emitter:
    """Numbers and records an order's events; seq continues from what Redis holds."""

    observer: Callable[[Status], None] | None = None  # metrics: told of every recorded event

    def __init__(self, store: OrderStore, order_id: str, last_seq: int) -> None:
        self.store = store
        self.order_id = order_id
        self.seq = last_seq

    async def emit(self, status: Status, state: dict[str, str] | None = None, **fields: Any) -> None:
        """Record the next frame; ``state`` goes to the order hash in the same step."""
        frame = order_frame(self.order_id, status, self.seq + 1, **fields)
        if not await self.store.append(self.order_id, frame, state):
            raise OwnershipLost(f"seq {self.seq + 1} of orderId={self.order_id} was already recorded")
        self.seq += 1
        log.info("event orderId=%s status=%s seq=%s", self.order_id, status, self.seq)
        if self.observer is not None:
            self.observer(status)


def backoff_ms(config: WorkerConfig, attempt: int) -> float:
    """Delay before attempt ``attempt + 1``: base, 2x base, 4x base ... capped."""
    return min(config.backoff_base_ms * 2 ** (attempt - 1), config.backoff_max_ms)


async def _call_venue(venue: Venue, stage: str, call: Awaitable[Any], timeout_s: float) -> Any:
    """Run one venue call under a timeout and classify whatever goes wrong."""
    try:
        return await asyncio.wait_for(call, timeout_s)
    except asyncio.TimeoutError:
        raise StageError(
            f"{venue.name} did not answer {stage} within {timeout_s * 1000:g} ms", True, ambiguous=True
        ) from None
    except VenueError as exc:
        raise StageError(f"{venue.name}: {exc}", exc.retryable) from exc
    except Exception as exc:
        log.exception("venue %s raised during %s", venue.name, stage)
        raise StageError(
            f"{venue.name}: internal error in venue plugin ({type(exc).__name__})", True, ambiguous=True
        ) from exc


class OrderExecutor:
    # Metrics hooks, set by the engine: a per-order event observer, and every routing's quotes.
    observe_order: Callable[[], Callable[[Status], None]] | None = None
    observe_quotes: Callable[[list[QuoteOutcome]], None] | None = None

    def __init__(
        self,
        venues: Callable[[], Mapping[str, Venue]],
        config: WorkerConfig,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.venues = venues
        self.config = config
        self.sleep = sleep

    async def execute(self, order: Order, emitter: Emitter, state: Mapping[str, str] | None = None) -> Status:
        """Drive ``order`` to a terminal status and return it.

        ``state`` is the order hash. When a worker takes over an order another
        worker left unfinished, execution resumes where the hash says it
        stopped, and a swap already submitted is looked up, never resent blindly.
        """
        state = state or {}
        if self.observe_order is not None:
            emitter.observer = self.observe_order()
        attempt = max(1, int(state.get("attempt") or 1))
        status = state.get("status")
        resume_submitted = status == Status.SUBMITTED.value and "swap" in state
        if status == Status.RETRYING.value:
            attempt += 1
        while True:
            try:
                if resume_submitted:
                    resume_submitted = False
                    await self._finish_submitted(order, emitter, json.loads(state["swap"]))
                else:
                    await self._attempt(order, emitter, attempt)
                return Status.CONFIRMED
            except StageError as exc:
                log.warning("attempt %s of orderId=%s failed: %s", attempt, order.order_id, exc)
                if exc.retryable and attempt < self.config.max_attempts:
                    delay = backoff_ms(self.config, attempt)
                    await emitter.emit(
                        Status.RETRYING,
                        state={"attempt": str(attempt)},
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
        if self.observe_quotes is not None:
            self.observe_quotes(outcomes)
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
        await emitter.emit(Status.BUILDING, state={"attempt": str(attempt)}, dex=venue.name, attempt=attempt)
        await _call_venue(venue, "building", venue.build(swap), self.config.swap_timeout_ms / 1000)
        submission = {"dex": venue.name, "key": swap.idempotency_key, "quote": best.as_frame()}
        await emitter.emit(
            Status.SUBMITTED,
            state={"attempt": str(attempt), "swap": dumps(submission)},
            dex=venue.name,
            attempt=attempt,
        )
        await self._swap_and_confirm(venue, swap, emitter)

    async def _finish_submitted(self, order: Order, emitter: Emitter, submission: dict[str, Any]) -> None:
        """Take over a swap a dead worker submitted: ask the venue before anything else."""
        venue = self.venues().get(submission["dex"])
        if venue is None:
            raise StageError(
                f"venue {submission['dex']} is no longer configured; "
                "the outcome of the submitted swap is unknown",
                False,
            )
        key = submission["key"]
        result = await self._lookup(venue, key)
        if result is not None:
            log.warning("orderId=%s: swap %s had executed before the takeover", order.order_id, key)
            await self._confirm(venue, result, emitter)
            return
        log.warning("orderId=%s: swap %s never reached %s; resubmitting it", order.order_id, key, venue.name)
        quote = submission["quote"]
        swap = SwapRequest(
            order_id=order.order_id,
            idempotency_key=key,
            from_token=order.from_token,
            to_token=order.to_token,
            amount=order.amount,
            quote=Quote(venue.name, quote["price"], quote["fee"], quote["amountOut"]),
        )
        await self._swap_and_confirm(venue, swap, emitter)

    async def _lookup(self, venue: Venue, key: str) -> SwapResult | None:
        """The venue's word on swap ``key``; a venue that cannot tell fails the order."""
        try:
            result = await asyncio.wait_for(venue.status(key), self.config.swap_timeout_ms / 1000)
        except NotImplementedError:
            raise StageError(
                f"{venue.name} cannot report a swap's status; the outcome of swap {key} is unknown",
                False,
            ) from None
        except VenueError as exc:  # the swap itself failed: nothing executed
            raise StageError(f"{venue.name}: {exc}", exc.retryable) from exc
        except Exception as exc:  # no answer: we must not guess
            log.exception("venue %s: status lookup of swap %s failed", venue.name, key)
            raise StageError(
                f"{venue.name} could not report the status of swap {key} "
                f"({type(exc).__name__}); its outcome is unknown",
                False,
            ) from exc
        if result is not None and not isinstance(result, SwapResult):
            raise StageError(f"{venue.name}: status lookup returned {type(result).__name__}", False)
        return result

    async def _swap_and_confirm(self, venue: Venue, swap: SwapRequest, emitter: Emitter) -> None:
        try:
            result = await _call_venue(
                venue, "the swap", venue.swap(swap), self.config.swap_timeout_ms / 1000
            )
        except StageError as exc:
            if not exc.ambiguous:
                raise
            # A timeout or a crash inside the plugin: did the swap execute anyway?
            result = await self._lookup(venue, swap.idempotency_key)
            if result is None:
                raise
        if not isinstance(result, SwapResult):
            raise StageError(
                f"{venue.name}: venue plugin returned {type(result).__name__}, not a SwapResult", False
            )
        await self._confirm(venue, result, emitter)

    async def _confirm(self, venue: Venue, result: SwapResult, emitter: Emitter) -> None:
        await emitter.emit(
            Status.CONFIRMED,
            dex=venue.name,
            txHash=result.tx_hash,
            executionPrice=result.execution_price,
            amountOut=result.amount_out,
        )
