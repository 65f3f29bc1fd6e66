"""A conformance suite any venue adapter can run: subclass, give it a venue, run pytest.

The engine trusts a venue for very little, but for these it must: a quote of
the right shape, prompt answers under a deadline, failures classified as
:class:`VenueError` subclasses, swaps idempotent by ``idempotency_key`` and
looked up by it, no trade past a swap's ``deadline``, and no damage when a
call is cancelled half-way (the engine cancels every call that overruns its
timeout). A plugin author writes::

    from tornado_engine.testing import VenueConformance, venue_settings

    class TestMyVenue(VenueConformance):
        @pytest.fixture
        def venue(self):
            return MyVenue(venue_settings("my-kind", {"failure_rate": 0}))

and gets every check below as a test of their own. The tests run each call on
a fresh asyncio loop under a hard limit, so a hanging venue fails its test
instead of hanging the run, and a venue that blocks the loop (``time.sleep``
in an async method) fails every test it blocks in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import pytest

from tornado_engine.config import ConfigSection
from tornado_engine.venues.api import (
    FinalVenueError,
    Quote,
    QuoteRequest,
    SwapRequest,
    SwapResult,
    Venue,
    VenueError,
    VenueSettings,
)

T = TypeVar("T")

DEFAULT_PRICES: Mapping[str, float] = {"SOL": 150.0, "USDC": 1.0, "USDT": 1.0}
# How long a venue call may hold the loop at a time. The engine's watchdog logs from
# worker.loop_stall_threshold_ms (100 ms); the kit allows more so a busy CI machine never fails it.
LOOP_HOLD_LIMIT_S = 0.25
HEARTBEAT_S = 0.005


def venue_settings(
    kind: str,
    options: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    tokens: Iterable[str] | None = None,
    reference_prices: Mapping[str, float] = DEFAULT_PRICES,
    latency_scale: float = 0.0,
    seed: int | None = 7,
) -> VenueSettings:
    """The :class:`VenueSettings` the engine would hand a factory for one ``venues.yaml`` entry.

    ``options`` are the entry's own keys (as a plugin reads them, through a
    :class:`ConfigSection`, so a bad option fails exactly as it would at start-up).
    """
    return VenueSettings(
        name=name or kind,
        kind=kind,
        tokens=frozenset(tokens if tokens is not None else reference_prices),
        options=ConfigSection(dict(options or {}), "venues.yaml", f"venues.{name or kind}"),
        reference_prices=dict(reference_prices),
        latency_scale=latency_scale,
        seed=seed,
    )


def registered_kinds(plugin: object) -> dict[str, Callable[[VenueSettings], Venue]]:
    """Call a plugin's ``register_venues`` hook as the engine does; return kind -> factory."""
    kinds: dict[str, Callable[[VenueSettings], Venue]] = {}

    def register(kind: str, factory: Callable[[VenueSettings], Venue]) -> None:
        assert isinstance(kind, str) and kind, f"kind must be a non-empty string, got {kind!r}"
        assert callable(factory), f"factory for {kind!r} is not callable"
        assert kind not in kinds, f"kind {kind!r} registered twice"
        kinds[kind] = factory

    plugin.register_venues(register=register)  # type: ignore[attr-defined]
    return kinds


def run_limited(awaitable: Awaitable[T], limit_s: float, hold_limit_s: float = LOOP_HOLD_LIMIT_S) -> T:
    """Run ``awaitable`` on a fresh loop; fail the test if it takes longer than ``limit_s``,
    or if it holds the loop for longer than ``hold_limit_s`` at a time (a blocking call).

    A heartbeat on the same loop measures the holding: a venue that blocks is
    not interrupted by a timeout, it finishes late, so only the heartbeat sees it.
    """

    async def limited() -> T:
        held = 0.0
        beat = time.monotonic()

        async def heartbeat() -> None:
            nonlocal held, beat
            while True:
                await asyncio.sleep(HEARTBEAT_S)
                now = time.monotonic()
                held, beat = max(held, now - beat - HEARTBEAT_S), now

        watcher = asyncio.ensure_future(heartbeat())
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(awaitable, limit_s)
        except asyncio.TimeoutError:
            pytest.fail(f"the venue did not answer within {limit_s:g}s")
        finally:
            held = max(held, time.monotonic() - beat - HEARTBEAT_S)
            watcher.cancel()
        if held > hold_limit_s:
            pytest.fail(
                f"the venue held the event loop for {held * 1000:.0f} ms at a time (limit "
                f"{hold_limit_s * 1000:g} ms): an async method made a blocking call (time.sleep, a "
                "blocking HTTP client, heavy CPU work?). In the engine every order and socket waits "
                "meanwhile, and the loop watchdog discards such a venue's quotes"
            )
        if time.monotonic() - started > limit_s:
            pytest.fail(f"the venue did not answer within {limit_s:g}s")
        return result

    return asyncio.run(limited())


def check_quote(venue: Venue, quote: object, request: QuoteRequest) -> Quote:
    """Assert ``quote`` is what the router accepts; return it."""
    assert isinstance(quote, Quote), f"quote() returned {type(quote).__name__}, expected a Quote"
    assert quote.venue == venue.name, f"Quote.venue is {quote.venue!r}, expected the venue name"
    for field in ("price", "fee", "amount_out"):
        value = getattr(quote, field)
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{field}={value!r}"
        assert math.isfinite(value), f"Quote.{field} is not finite: {value!r}"
    assert quote.price > 0, f"Quote.price must be > 0, got {quote.price}"
    assert quote.amount_out > 0, f"Quote.amount_out must be > 0, got {quote.amount_out}"
    assert 0 <= quote.fee < 1, f"Quote.fee is a fraction of the input in [0, 1), got {quote.fee}"
    # amount_out is in toToken; it cannot exceed the input at the quoted price.
    assert quote.amount_out <= request.amount * quote.price * (1 + 1e-9), (
        f"amount_out {quote.amount_out} exceeds amount x price {request.amount * quote.price}"
    )
    return quote


class VenueConformance:
    """The venue contract as tests. Subclass it as ``TestSomething`` and provide fixtures:

    - ``venue`` (required): an adapter that quotes and swaps ``pair`` and does
      not fail at random (e.g. ``failure_rate: 0``);
    - ``slow_venue`` (optional): the same adapter taking real time to answer
      (e.g. ``latency_scale=1``), so cancelling a call really cuts it short;
    - ``failing_venue`` (optional): one whose quotes and swaps always fail, to
      check the failures are classified.

    Class attributes tune the checks: ``pair``, ``amount``, ``unsupported_pair``
    (a pair the venue does not trade), ``deadline_s`` (how long a call may take
    on ``venue``; the engine's default quote timeout is 2 s).
    """

    pair: tuple[str, str] = ("SOL", "USDC")
    amount: float = 1.0
    unsupported_pair: tuple[str, str] = ("SOL", "NOT-A-TOKEN")
    deadline_s: float = 2.0
    cancel_after_s: float = 0.01

    @pytest.fixture
    def venue(self) -> Venue:
        pytest.fail("a VenueConformance subclass must provide a `venue` fixture")

    @pytest.fixture
    def slow_venue(self, venue: Venue) -> Venue:
        return venue

    @pytest.fixture
    def failing_venue(self) -> Venue | None:
        return None

    def quote_request(self, pair: tuple[str, str] | None = None) -> QuoteRequest:
        from_token, to_token = pair or self.pair
        return QuoteRequest(str(uuid.uuid4()), from_token, to_token, self.amount)

    def swap_request(self, quote: Quote, request: QuoteRequest, key: str | None = None) -> SwapRequest:
        return SwapRequest(
            order_id=request.order_id,
            idempotency_key=key or f"{request.order_id}:1",
            from_token=request.from_token,
            to_token=request.to_token,
            amount=request.amount,
            quote=quote,
        )

    def executed(self, venue: Venue, key: str) -> int | None:
        """How many times ``key`` traded, when the venue can tell (a ``ledger``); else None."""
        ledger = getattr(venue, "ledger", None)
        if ledger is None or not hasattr(ledger, "entries"):
            return None
        return sum(1 for entry in ledger.entries() if entry.get("key") == key)

    async def _quote_and_swap(self, venue: Venue, key: str | None = None) -> tuple[SwapRequest, SwapResult]:
        request = self.quote_request()
        quote = check_quote(venue, await venue.quote(request), request)
        swap = self.swap_request(quote, request, key)
        await venue.build(swap)
        return swap, await venue.swap(swap)

    # -- shape -----------------------------------------------------------------

    def test_venue_has_name_and_tokens(self, venue: Venue) -> None:
        assert isinstance(venue.name, str) and venue.name, "venue.name must be a non-empty string"
        tokens = set(venue.tokens)
        assert tokens and all(isinstance(t, str) for t in tokens), "venue.tokens: a set of symbols"
        assert venue.supports(*self.pair), f"venue does not support {self.pair}; set `pair`"
        for method in ("quote", "build", "swap", "status"):
            assert inspect.iscoroutinefunction(getattr(venue, method)), f"{method} must be async"

    def test_quote_has_the_contract_shape(self, venue: Venue) -> None:
        request = self.quote_request()
        quote = run_limited(venue.quote(request), self.deadline_s)
        check_quote(venue, quote, request)

    def test_quote_answers_within_the_deadline(self, venue: Venue) -> None:
        async def many() -> list[Quote]:
            return await asyncio.gather(*(venue.quote(self.quote_request()) for _ in range(5)))

        for quote in run_limited(many(), self.deadline_s):
            assert isinstance(quote, Quote)

    def test_swap_answers_within_the_deadline(self, venue: Venue) -> None:
        _, result = run_limited(self._quote_and_swap(venue), self.deadline_s)
        assert isinstance(result, SwapResult), f"swap() returned {type(result).__name__}"
        assert isinstance(result.tx_hash, str) and result.tx_hash, "SwapResult.tx_hash must be a string"
        assert math.isfinite(result.execution_price) and result.execution_price > 0
        assert math.isfinite(result.amount_out) and result.amount_out > 0

    # -- errors ----------------------------------------------------------------

    def test_unsupported_pair_is_a_final_error(self, venue: Venue) -> None:
        assert not venue.supports(*self.unsupported_pair), "set `unsupported_pair` to a pair it lacks"
        with pytest.raises(FinalVenueError) as caught:
            run_limited(venue.quote(self.quote_request(self.unsupported_pair)), self.deadline_s)
        assert str(caught.value), "a VenueError needs a message: it reaches the client"

    def test_failures_are_classified(self, failing_venue: Venue | None) -> None:
        if failing_venue is None:
            pytest.skip("provide a `failing_venue` fixture to check failure classification")
        request = self.quote_request()
        with pytest.raises(VenueError) as caught:
            run_limited(failing_venue.quote(request), self.deadline_s)
        assert str(caught.value), "a VenueError needs a message: it reaches the client"
        quote = Quote(failing_venue.name, 150.0, 0.003, 149.55)
        with pytest.raises(VenueError) as caught:
            run_limited(failing_venue.swap(self.swap_request(quote, request)), self.deadline_s)
        assert str(caught.value)

    # -- idempotency and status ----------------------------------------------------

    def test_swap_is_idempotent_by_key(self, venue: Venue) -> None:
        async def twice() -> tuple[SwapResult, SwapResult, SwapRequest]:
            swap, first = await self._quote_and_swap(venue)
            return first, await venue.swap(swap), swap

        first, second, swap = run_limited(twice(), self.deadline_s * 2)
        assert second == first, "a second swap with the same idempotency_key must return the first result"
        count = self.executed(venue, swap.idempotency_key)
        assert count in (None, 1), f"idempotency_key {swap.idempotency_key!r} traded {count} times"

    def test_concurrent_swaps_with_one_key_execute_once(self, venue: Venue) -> None:
        async def together() -> tuple[list[SwapResult], SwapRequest]:
            request = self.quote_request()
            quote = await venue.quote(request)
            swap = self.swap_request(quote, request)
            return list(await asyncio.gather(venue.swap(swap), venue.swap(swap))), swap

        results, swap = run_limited(together(), self.deadline_s * 2)
        assert results[0] == results[1], "two swaps with one key must agree on the one execution"
        assert self.executed(venue, swap.idempotency_key) in (None, 1)

    def test_status_finds_a_swap_by_key(self, venue: Venue) -> None:
        async def swap_then_status() -> tuple[SwapResult, SwapResult | None]:
            swap, result = await self._quote_and_swap(venue)
            return result, await venue.status(swap.idempotency_key)

        try:
            result, status = run_limited(swap_then_status(), self.deadline_s * 2)
        except NotImplementedError:
            pytest.skip("status() is not implemented: taken-over orders fail as 'outcome unknown'")
        assert status == result, "status(key) must return the result of the swap sent with key"

    def test_status_of_an_unknown_key_is_none(self, venue: Venue) -> None:
        try:
            status = run_limited(venue.status(f"never-sent-{uuid.uuid4()}"), self.deadline_s)
        except NotImplementedError:
            pytest.skip("status() is not implemented")
        assert status is None, "status() of a key never sent must be None (the engine may resend it)"

    def test_swap_past_its_deadline_trades_nothing(self, venue: Venue) -> None:
        """The engine resends a swap a stalled worker sent only after that swap's deadline."""

        async def late_swap() -> tuple[SwapRequest, SwapResult | None]:
            request = self.quote_request()
            quote = check_quote(venue, await venue.quote(request), request)
            swap = dataclasses.replace(self.swap_request(quote, request), deadline=time.time() - 1)
            with pytest.raises(FinalVenueError) as caught:
                await venue.swap(swap)
            assert str(caught.value), "a VenueError needs a message: it reaches the client"
            try:
                return swap, await venue.status(swap.idempotency_key)
            except NotImplementedError:
                return swap, None

        swap, status = run_limited(late_swap(), self.deadline_s * 2)
        assert status is None, "a swap refused for its deadline must not be reported as executed"
        assert self.executed(venue, swap.idempotency_key) in (None, 0), "a swap past its deadline traded"

    # -- cancellation --------------------------------------------------------------

    def _cancel_midway(self, make_call: Callable[[], Awaitable[Any]]) -> None:
        async def cancel() -> None:
            task = asyncio.ensure_future(make_call())
            done, _ = await asyncio.wait({task}, timeout=self.cancel_after_s)
            if done:
                task.result()
                return  # answered before the deadline: nothing to cut short
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task  # a venue must not swallow the engine's cancellation

        run_limited(cancel(), self.deadline_s)

    def test_cancelled_quote_leaves_the_venue_usable(self, slow_venue: Venue) -> None:
        self._cancel_midway(lambda: slow_venue.quote(self.quote_request()))
        request = self.quote_request()
        check_quote(slow_venue, run_limited(slow_venue.quote(request), self.deadline_s * 5), request)

    def test_cancelled_swap_can_be_resolved_by_key(self, slow_venue: Venue) -> None:
        request = self.quote_request()
        quote = run_limited(slow_venue.quote(request), self.deadline_s * 5)
        swap = self.swap_request(quote, request)
        self._cancel_midway(lambda: slow_venue.swap(swap))
        # Whatever the cancelled call did, retrying the key trades at most once.
        result = run_limited(slow_venue.swap(swap), self.deadline_s * 5)
        assert isinstance(result, SwapResult)
        assert self.executed(slow_venue, swap.idempotency_key) in (None, 1)
