"""Executing one order: routing, building, submission, confirmation, retries.

Every stage is an event recorded in Redis through an :class:`Emitter`; the
worker never talks to a socket. A failure is retried only when it is
retryable and attempts remain, with exponential backoff, and the client sees
each decision as a ``retrying`` or ``failed`` frame that says why.

No swap executes twice: every swap call is preceded by a fence (the worker
still holds the order's lease, and the key and its deadline are recorded),
every failed swap is looked up at the venue by its idempotency key whatever
its error claimed, and a worker that takes an order over asks the venue about
every swap its predecessor may have sent, waiting out the swap's deadline when
that call may still be running, before anything is resent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tornado_engine.config import EngineConfig, WorkerConfig
from tornado_engine.execution.quoting import QuoteOutcome
from tornado_engine.execution.routing import Route, RoutePlanner
from tornado_engine.execution.swap_plan import PlannedSwap, SwapPlan, min_amount_out
from tornado_engine.orders.amounts import to_units
from tornado_engine.orders.frames import order_frame
from tornado_engine.orders.order import Order, iso
from tornado_engine.orders.statuses import Status
from tornado_engine.storage.store import OrderStore, sent_swaps
from tornado_engine.venues.api import SwapRequest, SwapResult, Venue, VenueError
from tornado_engine.venues.watchdog import LoopWatchdog

log = logging.getLogger(__name__)

# How long past a swap's deadline the engine waits before trusting a venue's
# "never executed": room for the venue's clock to run behind the engine's.
DEADLINE_GRACE_S = 1.0


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
    """Numbers and records an order's events; seq continues from what Redis holds.

    ``lease`` is the fencing token the worker took the order with: every event
    and every swap is refused once another worker has taken the order over.
    ``observer`` (metrics) is told of every event once it is recorded.
    """

    def __init__(
        self,
        store: OrderStore,
        order_id: str,
        last_seq: int,
        observer: Callable[[Status], None] | None = None,
        lease: int = 0,
    ) -> None:
        self.store = store
        self.order_id = order_id
        self.seq = last_seq
        self.observer = observer
        self.lease = lease

    async def emit(self, status: Status, state: dict[str, str] | None = None, **fields: Any) -> None:
        """Record the next frame; ``state`` goes to the order hash in the same step."""
        frame = order_frame(self.order_id, status, self.seq + 1, **fields)
        if not await self.store.append(self.order_id, frame, state, self.lease):
            raise OwnershipLost(
                f"seq {self.seq + 1} of orderId={self.order_id} was already recorded, "
                f"or the order was taken over (lease {self.lease})"
            )
        self.seq += 1
        log.info("event orderId=%s status=%s seq=%s", self.order_id, status, self.seq)
        if self.observer is not None:
            self.observer(status)

    async def fence(self, key: str, deadline: float) -> None:
        """Just before swap ``key``: raise :class:`OwnershipLost` unless this worker still owns the order."""
        if not await self.store.fence(self.order_id, self.lease, key, deadline):
            raise OwnershipLost(
                f"orderId={self.order_id} was taken over before swap {key} (lease {self.lease})"
            )


def backoff_ms(config: WorkerConfig, attempt: int) -> float:
    """Delay before attempt ``attempt + 1``: base, 2x base, 4x base ... capped."""
    return min(config.backoff_base_ms * 2 ** (attempt - 1), config.backoff_max_ms)


async def _call_venue(
    venue: Venue, stage: str, call: Awaitable[Any], timeout_s: float, watchdog: LoopWatchdog
) -> Any:
    """Run one venue call under a timeout and classify whatever goes wrong."""
    try:
        return await watchdog.call(venue.name, stage, call, timeout_s)
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
    """Runs orders on the venues ``venues()`` returns at the time (a reload may change them).

    ``observe_quotes`` (metrics) is given every routing's quotes.
    """

    def __init__(
        self,
        venues: Callable[[], Mapping[str, Venue]],
        config: WorkerConfig,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        settings: EngineConfig | None = None,
        clock: Callable[[], float] = time.time,
        observe_quotes: Callable[[list[QuoteOutcome]], None] | None = None,
        watchdog: LoopWatchdog | None = None,
    ) -> None:
        self.venues = venues
        self.config = config
        self.sleep = sleep
        self.clock = clock
        self.observe_quotes = observe_quotes
        settings = settings or EngineConfig()
        self.orders = settings.orders
        self.routing = settings.routing
        self.decimals = settings.venues.decimals
        self.watchdog = watchdog or LoopWatchdog()
        self.planner = RoutePlanner(
            self.routing, self.decimals, config.quote_timeout_ms / 1000, self.watchdog
        )

    async def execute(
        self,
        order: Order,
        emitter: Emitter,
        state: Mapping[str, str] | None = None,
        park: Callable[[float], Awaitable[None]] | None = None,
    ) -> Status:
        """Drive ``order`` to a terminal status and return it.

        ``state`` is the order hash. When a worker takes over an order another
        worker left unfinished, execution resumes where the hash says it
        stopped, and a swap already submitted is looked up, never resent blindly.
        ``park`` is how a waiting order idles between checks (the worker's
        frees the order's slot meanwhile); by default it sleeps.
        """
        state = state or {}
        attempt = max(1, int(state.get("attempt") or 1))
        status = state.get("status")
        resume_submitted = status == Status.SUBMITTED.value and "swap" in state
        if status == Status.RETRYING.value:
            attempt += 1
        waits = order.order_type != "market" and status in (None, Status.PENDING.value, Status.WAITING.value)
        if waits and not await self._wait(order, emitter, park or self.sleep):
            return Status.EXPIRED
        while True:
            try:
                if resume_submitted:
                    resume_submitted = False
                    # A dead worker submitted these swaps: ask the venue about each before anything else.
                    plan = SwapPlan.loads(state["swap"], order)
                    await self._run(order, emitter, plan, resume=sent_swaps(state))
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

    async def _wait(self, order: Order, emitter: Emitter, park: Callable[[float], Awaitable[None]]) -> bool:
        """Hold a limit or sniper order until its condition holds (True) or it expires (False).

        Streams a ``waiting`` frame every ``orders.waiting_interval_ms`` with the
        current best price. Bounded by the order's expiry (at most
        ``orders.max_wait_seconds``); a worker that takes the order over waits on
        from the expiry recorded in the order.
        """
        interval = self.orders.waiting_interval_ms / 1000
        expires_at = order.expires_at or self.clock()
        while True:
            route = await self._plan(order)
            reached, fields = self._condition(order, route)
            if reached:
                return True
            now = self.clock()
            fields["expiresAt"] = iso(expires_at)
            if now >= expires_at:
                what = "price" if order.order_type == "limit" else "pool"
                await emitter.emit(
                    Status.EXPIRED,
                    error=f"the {order.order_type} order expired before its {what} condition was met; "
                    "nothing was traded",
                    **fields,
                )
                return False
            await emitter.emit(Status.WAITING, **fields)
            await park(max(0.0, min(interval, expires_at - now)))

    def _condition(self, order: Order, route: Route) -> tuple[bool, dict[str, Any]]:
        """Whether a waiting order may execute now, and what its ``waiting`` frame says."""
        direct = [o.quote for o in route.quotes if o.quote is not None]
        best = route.best
        price = route.amount_out / order.amount if route.legs else None
        fields: dict[str, Any] = {"orderType": order.order_type, "currentPrice": price}
        if best is not None:
            fields["bestDex"] = best.venue
        if order.order_type == "limit":
            fields["limitPrice"] = order.limit_price
            reached = price is not None and order.limit_price is not None and price >= order.limit_price
            return reached, fields
        known = [q.liquidity for q in direct if q.liquidity is not None]
        liquidity = max(known) if known else None
        least = order.min_liquidity or 0.0
        fields.update(poolFound=bool(direct), liquidity=liquidity, minLiquidity=least)
        enough = least <= 0 or (liquidity is not None and liquidity >= least)
        return bool(direct) and enough, fields

    async def _plan(self, order: Order) -> Route:
        units = order.amount_units or to_units(order.amount, self.decimals.get(order.from_token, 9))
        route = await self.planner.plan(
            self.venues().values(), order.order_id, order.from_token, order.to_token, order.amount, units
        )
        if self.observe_quotes is not None:
            self.observe_quotes(list(route.quotes))
        return route

    async def quote(self, order: Order) -> dict[str, Any]:
        """The route the order would take now, as its ``routing`` frame says (``GET /api/quote``).

        Raises :class:`NoRoute` when no venue or hop can fill it.
        """
        route = await self._plan(order)
        quotes = [o.as_frame() for o in route.quotes]
        if not route.legs:
            raise NoRoute(_no_quote_detail(route))
        fields, *_ = self._route_fields(order, route, quotes, self.routing.quote_ttl_ms / 1000)
        return fields

    def _route_fields(
        self, order: Order, route: Route, quotes: list[dict[str, Any]], ttl_s: float
    ) -> tuple[dict[str, Any], int, int, float]:
        """The ``routing`` frame's fields for a route, with its output, minimum output and expiry."""
        out_units = route.out_units(self.decimals)
        least = min_amount_out(order, out_units, self.decimals)
        expires = route.expires_at(ttl_s)
        best = route.best
        fields: dict[str, Any] = {
            "bestDex": best.venue if best else route.main.venue,
            "bestPrice": best.price if best else route.amount_out / order.amount,
            "quotes": quotes,
            "routeType": route.kind,
            "routePlan": [leg.as_frame(self.decimals) for leg in route.legs],
            "amountOut": route.amount_out,
            "outAmount": str(out_units),
            "minAmountOut": str(least),
            "slippageBps": order.slippage_bps,
            "quoteExpiresAt": iso(expires),
        }
        impact = route.price_impact_pct()
        if impact is not None:
            fields["priceImpactPct"] = impact
        return fields, out_units, least, expires

    async def _attempt(self, order: Order, emitter: Emitter, attempt: int) -> None:
        ttl_s = self.routing.quote_ttl_ms / 1000
        requote = 0
        while True:
            route = await self._plan(order)
            quotes = [o.as_frame() for o in route.quotes]
            if not route.legs:
                raise StageError(
                    f"no venue returned a quote ({_no_quote_detail(route)})", True, quotes=quotes
                )
            fields, out_units, least, expires = self._route_fields(order, route, quotes, ttl_s)
            fields["attempt"] = attempt
            if requote:
                fields["requote"] = requote
            if out_units < least:  # a limit order whose price slipped away after it triggered
                raise StageError(
                    f"the best route pays {route.amount_out:g} {order.to_token}, below the limit of "
                    f"{order.limit_price:g} per {order.from_token}",
                    True,
                    quotes=quotes,
                )
            await emitter.emit(Status.ROUTING, **fields)
            plan = SwapPlan.from_route(order, route, attempt, self.decimals)
            await emitter.emit(
                Status.BUILDING, state={"attempt": str(attempt)}, dex=route.main.venue, attempt=attempt
            )
            removed = await self._build(plan)
            if removed:  # nothing was sent: route again over the venues that remain
                log.warning(
                    "orderId=%s: venue %s was removed by a reload before the swap was sent; re-routing",
                    order.order_id,
                    removed,
                )
                continue
            if self.clock() < expires:
                break
            requote += 1
            if requote > self.routing.max_requotes:
                raise StageError("the quotes kept expiring before submission", True)
            log.info("orderId=%s: the quote expired before submission; re-quoting", order.order_id)
        await emitter.emit(
            Status.SUBMITTED,
            state={"attempt": str(attempt), "swap": plan.dumps()},
            dex=route.main.venue,
            attempt=attempt,
        )
        await self._run(order, emitter, plan)

    async def _build(self, plan: SwapPlan) -> str | None:
        """Build each swap on its venue as configured now; the venue a reload removed meanwhile, if any."""
        for planned in plan.swaps:
            venue = self.venues().get(planned.venue)
            if venue is None:
                return planned.venue
            build = venue.build(planned.request)
            await _call_venue(venue, "building", build, self.config.swap_timeout_ms / 1000, self.watchdog)
        return next((p.venue for p in plan.swaps if p.venue not in self.venues()), None)

    async def _run(
        self, order: Order, emitter: Emitter, plan: SwapPlan, resume: Mapping[str, float] | None = None
    ) -> None:
        """Send each swap in turn (a hop's input is what the hop before it paid), then confirm.

        ``resume``: this worker took the order over; the predecessor's sent swaps,
        key to deadline. Every leg is looked up at its venue before it is (re)sent.
        """
        done: list[tuple[PlannedSwap, SwapResult]] = []
        for i, planned in enumerate(plan.swaps):
            venue = self.venues().get(planned.venue)
            if venue is None and resume is None and not done:  # removed since building: nothing was sent
                raise StageError(
                    f"venue {planned.venue} was removed by a reload before the swap was sent; "
                    "nothing was traded",
                    True,
                )
            if venue is None:
                raise StageError(
                    f"venue {planned.venue} is no longer configured; "
                    f"the outcome of the submitted swap {planned.request.idempotency_key} is unknown",
                    False,
                )
            if plan.kind == "multi-hop" and done:
                planned = planned.after_hop(done[-1][1])
            swap = planned.request
            try:
                result = None
                if resume is not None:
                    result = await self._settle(order, venue, swap.idempotency_key, resume)
                if result is None:
                    result = await self._swap(order, emitter, venue, swap)
            except StageError as exc:
                if not done:
                    raise
                filled = [_fill(p, r) for p, r in done]
                raise StageError(
                    f"{exc}; leg {i + 1} of {len(plan.swaps)} failed after "
                    f"{len(done)} executed (partially filled)",
                    False,
                    fills=filled,
                ) from exc
            done.append((planned, result))
        await self._confirm(plan.kind, done, emitter)

    async def _lookup(self, venue: Venue, key: str, trust: StageError | None = None) -> SwapResult | None:
        """The venue's word on swap ``key``; a venue that cannot tell fails the order.

        ``trust``: the swap call itself raised this venue error; a venue that
        cannot report a status is then taken at its word (None).
        """
        try:
            result = await self.watchdog.call(
                venue.name, "the status lookup", venue.status(key), self.config.swap_timeout_ms / 1000
            )
        except NotImplementedError:
            if trust is not None:
                return None
            raise StageError(
                f"{venue.name} cannot report a swap's status; the outcome of swap {key} is unknown",
                False,
            ) from None
        except VenueError as exc:  # the swap itself failed: nothing executed
            if trust is not None:
                return None
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

    async def _settle(
        self, order: Order, venue: Venue, key: str, sent: Mapping[str, float]
    ) -> SwapResult | None:
        """After a takeover: did swap ``key`` execute? None only once it never can.

        The predecessor may be stalled, not dead, with its call still running:
        a "never executed" is final only after the deadline that call carried.
        """
        result = await self._lookup(venue, key)
        deadline = sent.get(key)
        if result is None and deadline is not None:
            result = await self._after_deadline(order, venue, key, deadline)
        if result is not None:
            log.warning("orderId=%s: swap %s had executed before the takeover", order.order_id, key)
        elif key in sent:
            log.warning(
                "orderId=%s: swap %s never executed at %s; resubmitting it", order.order_id, key, venue.name
            )
        return result

    async def _after_deadline(
        self, order: Order, venue: Venue, key: str, deadline: float
    ) -> SwapResult | None:
        """Ask about swap ``key`` again once its deadline (and the clock-skew grace) has passed."""
        wait = deadline + DEADLINE_GRACE_S - self.clock()
        if wait <= 0:
            return None
        log.warning(
            "orderId=%s: swap %s may still be in flight at %s; waiting %.1fs for its deadline",
            order.order_id,
            key,
            venue.name,
            wait,
        )
        await self.sleep(wait)
        return await self._lookup(venue, key)

    async def _swap(self, order: Order, emitter: Emitter, venue: Venue, swap: SwapRequest) -> SwapResult:
        """One swap call, fenced; a failure is looked up by key before it is believed."""
        deadline = self.clock() + self.config.swap_timeout_ms / 1000
        swap = dataclasses.replace(swap, deadline=deadline)
        key = swap.idempotency_key
        await emitter.fence(key, deadline)
        try:
            result = await _call_venue(
                venue, "the swap", venue.swap(swap), self.config.swap_timeout_ms / 1000, self.watchdog
            )
        except StageError as exc:
            # Whatever the error says (a plugin may raise after its trade landed), ask the venue.
            found = await self._lookup(venue, key, trust=None if exc.ambiguous else exc)
            if found is None and exc.ambiguous and self.clock() >= deadline:
                # Timed out: the call may still land at a venue whose clock runs a little behind.
                found = await self._after_deadline(order, venue, key, deadline)
            if found is None:
                raise
            log.warning(
                "orderId=%s: %s failed swap %s (%s) but it executed; confirming it",
                order.order_id,
                venue.name,
                key,
                exc,
            )
            result = found
        if not isinstance(result, SwapResult):
            raise StageError(
                f"{venue.name}: venue plugin returned {type(result).__name__}, not a SwapResult", False
            )
        return result

    async def _confirm(self, kind: str, done: list[tuple[PlannedSwap, SwapResult]], emitter: Emitter) -> None:
        if len(done) == 1:
            planned, result = done[0]
            fields: dict[str, Any] = {}
            if result.out_amount is not None:
                fields["outAmount"] = str(result.out_amount)
            await emitter.emit(
                Status.CONFIRMED,
                dex=planned.venue,
                txHash=result.tx_hash,
                executionPrice=result.execution_price,
                amountOut=result.amount_out,
                **fields,
            )
            return
        fills = [_fill(p, r) for p, r in done]
        if kind == "multi-hop":
            main = done[0]
            price = math.prod(r.execution_price for _, r in done)
            amount_out = done[-1][1].amount_out
            units = done[-1][1].out_amount
        else:
            main = max(done, key=lambda d: d[0].request.amount)
            price = sum(r.execution_price * p.request.amount for p, r in done) / sum(
                p.request.amount for p, _ in done
            )
            amount_out = sum(r.amount_out for _, r in done)
            outs = [r.out_amount for _, r in done]
            units = None if None in outs else sum(outs)  # type: ignore[arg-type]
        fields = {"outAmount": str(units)} if units is not None else {}
        await emitter.emit(
            Status.CONFIRMED,
            dex=main[0].venue,
            txHash=main[1].tx_hash,
            executionPrice=price,
            amountOut=amount_out,
            routeType=kind,
            fills=fills,
            **fields,
        )


def _fill(planned: PlannedSwap, result: SwapResult) -> dict[str, Any]:
    """One executed swap as a ``fills`` entry of a frame."""
    swap = planned.request
    fill = {
        "dex": planned.venue,
        "txHash": result.tx_hash,
        "fromToken": swap.from_token,
        "toToken": swap.to_token,
        "amountIn": swap.amount,
        "amountOut": result.amount_out,
        "executionPrice": result.execution_price,
    }
    if result.out_amount is not None:
        fill["outAmount"] = str(result.out_amount)
    return fill


class NoRoute(Exception):
    """No venue or hop can fill the order now; the message says what each venue answered."""


def _no_quote_detail(route: Route) -> str:
    return "; ".join(f"{o.venue}: {o.error}" for o in route.quotes) or "no venue trades this pair"
