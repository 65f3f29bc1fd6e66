"""Routing: concurrent quotes, the best net output wins, a bad venue is an error not a crash."""

from __future__ import annotations

import asyncio
import dataclasses
import math

import pytest

from tornado_engine.config import load_config
from tornado_engine.execution.quoting import QuoteOutcome, best_quote, gather_quotes
from tornado_engine.venues.api import (
    FinalVenueError,
    Quote,
    QuoteRequest,
    RetryableVenueError,
    SwapRequest,
    SwapResult,
    Venue,
)
from tornado_engine.venues.host import build_venues, plugin_manager

ORDER_ID = "6f1c1f63-4f0c-4c55-9a3e-0d7a4a0f5d11"
TIMEOUT_S = 0.5


@pytest.fixture
def build(make_config):
    """``build(seed=7, venues=...)``: the configured mock venues, as the engine builds them."""

    def make(seed: int | None = 7, venues: dict | None = None) -> dict[str, Venue]:
        directory = make_config(engine={"simulation": {"seed": seed, "latency_scale": 0}}, venues=venues)
        return build_venues(load_config(directory), plugin_manager())

    return make


def request(order_id: str = ORDER_ID, from_token: str = "SOL", to_token: str = "USDC") -> QuoteRequest:
    return QuoteRequest(order_id, from_token, to_token, 2.0)


async def quotes_for(venues: dict[str, Venue], req: QuoteRequest) -> list[QuoteOutcome]:
    return await gather_quotes(venues.values(), req, TIMEOUT_S)


# -- determinism -------------------------------------------------------------------------------------

# Pools alone price every order alike; price_variance gives each order its own view of the market.
VARIED = {
    "tokens": {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}},
    "venues": {
        "raydium": {"plugin": "mock-raydium", "failure_rate": 0, "price_variance": 0.02},
        "meteora": {"plugin": "mock-meteora", "failure_rate": 0, "price_variance": 0.03},
    },
}


@pytest.mark.gen_test(timeout=15)
async def test_seeded_routing_gives_the_same_quotes_for_the_same_order_every_time(build):
    first = await quotes_for(build(seed=7), request())
    again = await quotes_for(build(seed=7), request())
    assert first == again
    assert best_quote(first) == best_quote(again)


@pytest.mark.gen_test(timeout=15)
async def test_seeded_routing_does_not_depend_on_quoting_other_orders_first(build):
    venues = build(seed=7)
    alone = await quotes_for(build(seed=7), request())
    for i in range(5):
        await quotes_for(venues, request(order_id=f"other-{i}"))
    assert await quotes_for(venues, request()) == alone


@pytest.mark.gen_test(timeout=15)
async def test_seeded_routing_picks_the_same_best_venue_for_each_order(build):
    ids = [f"order-{i}" for i in range(20)]
    a, b = build(seed=7, venues=VARIED), build(seed=7, venues=VARIED)
    best_a = [best_quote(await quotes_for(a, request(i))).venue for i in ids]
    best_b = [best_quote(await quotes_for(b, request(i))).venue for i in ids]
    assert best_a == best_b
    assert set(best_a) == {"raydium", "meteora"}  # the seed decides per order, not once for all


@pytest.mark.gen_test(timeout=15)
async def test_different_orders_get_different_prices(build):
    venues = build(seed=7, venues=VARIED)
    one = await quotes_for(venues, request("order-a"))
    two = await quotes_for(venues, request("order-b"))
    assert [o.quote.price for o in one] != [o.quote.price for o in two]


@pytest.mark.gen_test(timeout=15)
async def test_a_different_seed_gives_different_prices(build):
    seven = await quotes_for(build(seed=7, venues=VARIED), request())
    eight = await quotes_for(build(seed=8, venues=VARIED), request())
    assert [o.quote.price for o in seven] != [o.quote.price for o in eight]


@pytest.mark.gen_test(timeout=15)
async def test_quotes_stay_within_the_configured_variance_and_fee(build):
    venues = build(seed=7, venues=VARIED)
    for i in range(20):
        for outcome in await quotes_for(venues, request(f"order-{i}")):
            quote = outcome.quote
            assert 150 * 0.97 <= quote.price <= 150 * 1.03
            assert quote.fee in (0.003, 0.002)
            assert quote.amount_out == pytest.approx(2.0 * quote.price * (1 - quote.fee))


@pytest.mark.gen_test(timeout=15)
async def test_routing_frame_is_what_the_seeded_venues_quote_for_that_order(client, build):
    frames = await client.run_order(amount=2.0)
    routing = next(f for f in frames if f["status"] == "routing")
    expected = await quotes_for(build(seed=7), request(routing["orderId"]))
    assert routing["quotes"] == [o.as_frame() for o in expected]
    best = best_quote(expected)
    assert (routing["bestDex"], routing["bestPrice"]) == (best.venue, best.price)


# -- best_quote --------------------------------------------------------------------------------------


def test_best_quote_is_the_largest_amount_out_not_the_best_price():
    cheap_fee = Quote("a", price=100.0, fee=0.001, amount_out=99.9)
    best_price = Quote("b", price=101.0, fee=0.02, amount_out=98.98)
    outcomes = [QuoteOutcome("b", quote=best_price), QuoteOutcome("a", quote=cheap_fee)]
    assert best_quote(outcomes) is cheap_fee


def test_best_quote_ignores_venues_that_gave_no_quote():
    only = Quote("b", 1.0, 0.0, 1.0)
    assert best_quote([QuoteOutcome("a", error="down"), QuoteOutcome("b", quote=only)]) is only


def test_best_quote_tie_goes_to_the_first_venue():
    first, second = Quote("a", 1.0, 0.0, 5.0), Quote("b", 1.0, 0.0, 5.0)
    assert best_quote([QuoteOutcome("a", quote=first), QuoteOutcome("b", quote=second)]) is first


def test_best_quote_of_no_quotes_is_none():
    assert best_quote([]) is None
    assert best_quote([QuoteOutcome("a", error="down"), QuoteOutcome("b", error="timeout")]) is None


def test_outcome_frame_is_the_quote_or_the_error():
    assert QuoteOutcome("a", quote=Quote("a", 2.0, 0.1, 3.0)).as_frame() == {
        "dex": "a",
        "price": 2.0,
        "fee": 0.1,
        "amountOut": 3.0,
    }
    assert QuoteOutcome("b", error="down").as_frame() == {"dex": "b", "error": "down"}


# -- which venues are asked --------------------------------------------------------------------------

SPLIT_VENUES = {
    "tokens": {
        "SOL": {"reference_price": 150},
        "USDC": {"reference_price": 1},
        "JUP": {"reference_price": 0.9},
    },
    "venues": {
        "raydium": {"plugin": "mock-raydium", "tokens": ["SOL", "USDC"]},
        "meteora": {"plugin": "mock-meteora", "tokens": ["SOL", "USDC", "JUP"]},
    },
}


@pytest.mark.gen_test(timeout=15)
async def test_gather_quotes_skips_venues_that_do_not_trade_the_pair(build):
    venues = build(venues=SPLIT_VENUES)
    outcomes = await quotes_for(venues, request(from_token="SOL", to_token="JUP"))
    assert [o.venue for o in outcomes] == ["meteora"]
    assert outcomes[0].quote is not None


@pytest.mark.gen_test(timeout=15)
async def test_gather_quotes_asks_every_venue_that_trades_the_pair(build):
    outcomes = await quotes_for(build(venues=SPLIT_VENUES), request())
    assert sorted(o.venue for o in outcomes) == ["meteora", "raydium"]


@pytest.mark.gen_test(timeout=15)
async def test_gather_quotes_with_no_venue_for_the_pair_is_empty(build):
    venues = build(venues=SPLIT_VENUES)
    assert await quotes_for(venues, request(from_token="USDC", to_token="BONK")) == []


# -- misbehaving venues ------------------------------------------------------------------------------


class StubVenue(Venue):
    """A venue whose quote() does whatever the test says."""

    def __init__(self, name: str, quote, tokens=("SOL", "USDC")) -> None:
        self.name = name
        self.tokens = frozenset(tokens)
        self._quote = quote
        self.calls = 0

    async def quote(self, request: QuoteRequest):
        self.calls += 1
        return await self._quote(request)

    async def build(self, request: SwapRequest) -> None:
        return None

    async def swap(self, request: SwapRequest) -> SwapResult:
        raise AssertionError("not used")


def good(name: str, amount_out: float = 290.0) -> StubVenue:
    async def quote(req: QuoteRequest) -> Quote:
        return Quote(name, 145.0, 0.003, amount_out)

    return StubVenue(name, quote)


def returning(value) -> StubVenue:
    async def quote(req: QuoteRequest):
        return value

    return StubVenue("bad", quote)


def raising(exc: BaseException) -> StubVenue:
    async def quote(req: QuoteRequest):
        raise exc

    return StubVenue("bad", quote)


async def route(*venues: Venue, timeout_s: float = TIMEOUT_S) -> dict[str, QuoteOutcome]:
    return {o.venue: o for o in await gather_quotes(venues, request(), timeout_s)}


FEE_ERROR = (
    "returned a quote with a fee of {!r}: the fee is a fraction of the input, "
    "at least 0 and below 1 (0.003 is 0.3%)"
)


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, "returned NoneType instead of a Quote"),
        ({"price": 1.0}, "returned dict instead of a Quote"),
        (145.0, "returned float instead of a Quote"),
        (Quote("bad", math.nan, 0.003, 290.0), "returned a quote with an invalid price: nan"),
        (Quote("bad", 145.0, 0.003, math.inf), "returned a quote with an invalid amount_out: inf"),
        (Quote("bad", True, 0.003, 290.0), "returned a quote with an invalid price: True"),
        (Quote("bad", "145", 0.003, 290.0), "returned a quote with an invalid price: '145'"),
        (
            Quote("bad", -145.0, 0.003, 290.0),
            "returned a quote with a price of -145.0: a price must be above 0",
        ),
        (
            Quote("bad", 145.0, 0.003, -1.0),
            "returned a quote paying out -1.0: a quote must pay out more than 0",
        ),
        (
            Quote("bad", 145.0, 0.003, 0.0),
            "returned a quote paying out 0.0: a quote must pay out more than 0",
        ),
        (Quote("bad", 145.0, 1.5, 290.0), FEE_ERROR.format(1.5)),
        (Quote("bad", 145.0, -0.1, 290.0), FEE_ERROR.format(-0.1)),
    ],
)
async def test_garbage_quote_is_that_venues_error_and_the_others_still_quote(value, error):
    outcomes = await route(returning(value), good("fine"))
    bad = outcomes["bad"]
    assert bad.quote is None
    assert bad.error == error
    assert outcomes["fine"].quote is not None
    assert best_quote(outcomes.values()).venue == "fine"


@pytest.mark.gen_test(timeout=15)
async def test_garbage_quote_cannot_win_even_with_a_huge_amount():
    outcomes = await route(returning(Quote("bad", math.nan, 0.0, 1e300)), good("fine"))
    assert best_quote(outcomes.values()).venue == "fine"


@pytest.mark.gen_test(timeout=15)
async def test_quote_claiming_another_venues_name_is_credited_to_the_venue_that_gave_it():
    outcomes = await route(returning(Quote("someone-else", 145.0, 0.003, 290.0)))
    assert outcomes["bad"].quote.venue == "bad"


@pytest.mark.gen_test(timeout=15)
async def test_quote_credited_to_the_venue_that_gave_it_keeps_every_other_field():
    full = Quote("someone-else", 145.0, 0.003, 290.0, 2, 290, 1, 0.5, 1000.0, expires_at=2e9)
    credited = (await route(returning(full)))["bad"].quote
    assert credited == dataclasses.replace(full, venue="bad")
    assert credited.expires_at == full.expires_at


@pytest.mark.gen_test(timeout=15)
async def test_venue_error_is_reported_with_its_message():
    outcomes = await route(raising(RetryableVenueError("RPC node unreachable")), good("fine"))
    assert outcomes["bad"].error == "RPC node unreachable"
    outcomes = await route(raising(FinalVenueError("pool drained")), good("fine"))
    assert outcomes["bad"].error == "pool drained"


@pytest.mark.gen_test(timeout=15)
async def test_plugin_crash_is_an_internal_error_logged_with_the_order_id(caplog):
    outcomes = await route(raising(ZeroDivisionError("oops")), good("fine"))
    assert outcomes["bad"].error == "internal error in venue plugin: ZeroDivisionError"
    assert outcomes["fine"].quote is not None
    assert any(f"orderId={ORDER_ID}" in r.getMessage() and r.exc_info for r in caplog.records)


@pytest.mark.gen_test(timeout=15)
async def test_quote_that_is_not_a_coroutine_is_an_internal_error():
    venue = good("sync")
    venue.quote = lambda req: Quote("sync", 145.0, 0.003, 290.0)
    outcomes = await route(venue, good("fine"))
    assert outcomes["sync"].error == "internal error in venue plugin: TypeError"


@pytest.mark.gen_test(timeout=15)
async def test_hanging_venue_is_left_out_after_the_timeout():
    async def hang(req: QuoteRequest):
        await asyncio.Event().wait()

    loop = asyncio.get_running_loop()
    started = loop.time()
    outcomes = await route(StubVenue("slow", hang), good("fine"), timeout_s=0.05)
    assert loop.time() - started < 1.0
    assert outcomes["slow"].error == "no quote within 50 ms"
    assert best_quote(outcomes.values()).venue == "fine"


@pytest.mark.gen_test(timeout=15)
async def test_venues_are_quoted_concurrently():
    both_started = asyncio.Event()
    started = 0

    async def wait_for_the_other(req: QuoteRequest) -> Quote:
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        await both_started.wait()
        return Quote("x", 145.0, 0.003, 290.0)

    outcomes = await route(StubVenue("a", wait_for_the_other), StubVenue("b", wait_for_the_other))
    assert outcomes["a"].quote is not None and outcomes["b"].quote is not None
