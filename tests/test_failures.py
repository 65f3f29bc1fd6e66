"""Failures, seen through the client contract: timeouts, retries with backoff, final errors.

Misbehaving venues come from a tiny plugin registered the way any plugin is
(a ``register_venues`` hook), and are named in venues.yaml like real ones.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from tornado_engine import (
    FinalVenueError,
    Quote,
    QuoteRequest,
    RetryableVenueError,
    SwapRequest,
    SwapResult,
    Venue,
    VenueSettings,
    hookimpl,
)
from tornado_engine.orders.statuses import TERMINAL_VALUES
from tornado_engine.testing import EngineClient

TOKENS = {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}}


class StubVenue(Venue):
    """Quotes a fixed price and swaps at it; subclasses break one thing each."""

    def __init__(self, settings: VenueSettings) -> None:
        self.name = settings.name
        self.tokens = settings.tokens
        self.swaps = 0
        self.executed: dict[str, SwapResult] = {}

    async def quote(self, request: QuoteRequest) -> Quote:
        return Quote(self.name, 140.0, 0.003, request.amount * 140.0 * 0.997)

    async def build(self, request: SwapRequest) -> None:
        return None

    async def swap(self, request: SwapRequest) -> SwapResult:
        self.swaps += 1
        result = SwapResult("tx" + request.idempotency_key, request.quote.price, request.quote.amount_out)
        self.executed[request.idempotency_key] = result
        return result

    async def status(self, idempotency_key: str) -> SwapResult | None:
        return self.executed.get(idempotency_key)


class HangingQuote(StubVenue):
    async def quote(self, request: QuoteRequest) -> Quote:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class FailingQuote(StubVenue):
    async def quote(self, request: QuoteRequest) -> Quote:
        raise RetryableVenueError("RPC node unreachable")


class GarbageQuote(StubVenue):
    async def quote(self, request: QuoteRequest) -> Quote:
        return Quote(self.name, math.nan, 0.003, 1e300)


class FinalSwap(StubVenue):
    async def swap(self, request: SwapRequest) -> SwapResult:
        self.swaps += 1
        raise FinalVenueError("insufficient liquidity")


class CrashOnceSwap(StubVenue):
    """Its first swap raises something no adapter should; it never executed (status says so)."""

    async def swap(self, request: SwapRequest) -> SwapResult:
        if self.swaps == 0:
            self.swaps += 1
            raise RuntimeError("plugin bug")
        return await super().swap(request)


class AlwaysCrashSwap(StubVenue):
    async def swap(self, request: SwapRequest) -> SwapResult:
        self.swaps += 1
        raise RuntimeError("plugin bug")


class CrashSwapWithoutStatus(AlwaysCrashSwap):
    async def status(self, idempotency_key: str) -> SwapResult | None:
        raise NotImplementedError


KINDS = {
    "test-stub": StubVenue,
    "test-hanging-quote": HangingQuote,
    "test-failing-quote": FailingQuote,
    "test-garbage-quote": GarbageQuote,
    "test-final-swap": FinalSwap,
    "test-crash-once-swap": CrashOnceSwap,
    "test-always-crash-swap": AlwaysCrashSwap,
    "test-crash-swap-without-status": CrashSwapWithoutStatus,
}


class MisbehavingVenues:
    """A plugin, registered with pluggy like any other; remembers the venues it made."""

    def __init__(self) -> None:
        self.venues: dict[str, StubVenue] = {}

    @hookimpl
    def register_venues(self, register: Any) -> None:
        for kind, cls in KINDS.items():
            register(kind, self._factory(cls))

    def _factory(self, cls: type[StubVenue]):
        def make(settings: VenueSettings) -> StubVenue:
            venue = self.venues[settings.name] = cls(settings)
            return venue

        return make


@pytest.fixture
def plugin() -> MisbehavingVenues:
    return MisbehavingVenues()


@pytest.fixture
def extra_plugins(plugin) -> list:
    return [plugin]


@pytest.fixture
def venues_config(request) -> dict | None:
    """What the test's ``with_venues`` says; the kit's mock venues otherwise."""
    return getattr(request, "param", None)


@pytest.fixture
def engine_overrides(request) -> dict:
    return getattr(request, "param", {})


@pytest.fixture
def client(engine, http_server, base_url) -> EngineClient:
    """As conftest's, with ``engine`` named so pytest sees the fixtures parametrized above."""
    return EngineClient(base_url)


def with_venues_config(config: dict, label: str = "venues"):
    return pytest.mark.parametrize("venues_config", [config], ids=[label], indirect=True)


def with_venues(**plugins: str):
    """Run the test with these venues: ``name=plugin kind``."""
    config = {"tokens": TOKENS, "venues": {name: {"plugin": kind} for name, kind in plugins.items()}}
    return with_venues_config(config)


def with_engine(**worker: Any):
    """Run the test with these ``worker:`` settings."""
    return pytest.mark.parametrize("engine_overrides", [{"worker": worker}], ids=["worker"], indirect=True)


def statuses(frames: list[dict]) -> list[str]:
    return [f["status"] for f in frames]


async def finished(client, order_id: str) -> list[dict]:
    """The order's frames; checks the stream ends in exactly one terminal frame, as Redis says."""
    frames = await client.frames(order_id)
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    terminal = [f for f in frames if f["status"] in TERMINAL_VALUES]
    assert len(terminal) == 1 and terminal[0] is frames[-1], statuses(frames)
    assert client.last_close[0] == 1000
    code, body = await client.get_json(f"/api/orders/{order_id}")
    assert code == 200 and body["status"] == frames[-1]["status"]
    assert body["events"] == frames
    return frames


# -- quotes ------------------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
@with_venues(stuck="test-hanging-quote", good="test-stub")
@with_engine(quote_timeout_ms=50)
async def test_venue_whose_quote_hangs_is_left_out_and_listed_with_its_error(client):
    frames = await finished(client, await client.submit())
    assert statuses(frames) == ["pending", "routing", "building", "submitted", "confirmed"]
    routing = frames[1]
    assert routing["bestDex"] == "good"
    assert {"dex": "stuck", "error": "no quote within 50 ms"} in routing["quotes"]
    assert frames[-1]["dex"] == "good"


@pytest.mark.gen_test(timeout=15)
@with_venues(broken="test-failing-quote", good="test-stub")
async def test_venue_whose_quote_fails_is_left_out_and_listed_with_its_error(client):
    frames = await finished(client, await client.submit())
    routing = frames[1]
    assert routing["bestDex"] == "good"
    assert {"dex": "broken", "error": "RPC node unreachable"} in routing["quotes"]


@pytest.mark.gen_test(timeout=15)
@with_venues(liar="test-garbage-quote", good="test-stub")
async def test_venue_returning_a_garbage_quote_cannot_win(client):
    frames = await finished(client, await client.submit())
    routing = frames[1]
    assert routing["bestDex"] == "good"
    assert {"dex": "liar", "error": "returned a quote with an invalid price: nan"} in routing["quotes"]
    assert frames[-1]["status"] == "confirmed"


@pytest.mark.gen_test(timeout=15)
@with_venues(stuck="test-hanging-quote", broken="test-failing-quote")
@with_engine(quote_timeout_ms=50, max_attempts=3, backoff_base_ms=1)
async def test_when_no_venue_quotes_the_order_retries_then_fails_naming_the_venues(client, plugin):
    frames = await finished(client, await client.submit())
    assert statuses(frames) == ["pending", "retrying", "retrying", "failed"]
    error = frames[-1]["error"]
    assert error.startswith("no venue returned a quote (")
    assert "stuck: no quote within 50 ms" in error
    assert "broken: RPC node unreachable" in error
    assert error.endswith("(after 3 attempts)")
    for retry in frames[1:3]:
        assert retry["error"].startswith("no venue returned a quote")
        assert {q["dex"] for q in retry["quotes"]} == {"stuck", "broken"}
    assert all(v.swaps == 0 for v in plugin.venues.values())


# -- swaps that fail ---------------------------------------------------------------------------------


ALWAYS_FAILS = {
    "tokens": TOKENS,
    "venues": {"raydium": {"plugin": "mock-raydium", "failure_rate": 1}},
}


@pytest.mark.gen_test(timeout=15)
@with_venues_config(ALWAYS_FAILS, "failure_rate-1")
@with_engine(max_attempts=3, backoff_base_ms=20, backoff_max_ms=1000)
async def test_venue_that_always_fails_retries_with_exponential_backoff_then_fails(client):
    frames = await finished(client, await client.submit())
    attempt = ["routing", "building", "submitted"]
    assert statuses(frames) == ["pending", *attempt, "retrying", *attempt, "retrying", *attempt, "failed"]
    retries = [f for f in frames if f["status"] == "retrying"]
    assert [(r["attempt"], r["nextAttemptInMs"]) for r in retries] == [(1, 20), (2, 40)]
    for retry in retries:
        assert retry["error"] == "raydium: raydium transaction was not confirmed (simulated RPC failure)"
    failed = frames[-1]
    assert failed["error"] == (
        "raydium: raydium transaction was not confirmed (simulated RPC failure) (after 3 attempts)"
    )


@pytest.mark.gen_test(timeout=15)
@with_venues_config(ALWAYS_FAILS, "failure_rate-1")
@with_engine(max_attempts=4, backoff_base_ms=10, backoff_max_ms=15)
async def test_backoff_is_capped_at_backoff_max_ms(client):
    frames = await finished(client, await client.submit())
    retries = [f for f in frames if f["status"] == "retrying"]
    assert [(r["attempt"], r["nextAttemptInMs"]) for r in retries] == [(1, 10), (2, 15), (3, 15)]
    assert frames[-1]["status"] == "failed"


@pytest.mark.gen_test(timeout=15)
@with_venues_config(ALWAYS_FAILS, "failure_rate-1")
@with_engine(max_attempts=1)
async def test_max_attempts_one_fails_without_retrying(client):
    frames = await finished(client, await client.submit())
    assert statuses(frames) == ["pending", "routing", "building", "submitted", "failed"]
    assert frames[-1]["error"].endswith("(after 1 attempts)")


@pytest.mark.gen_test(timeout=15)
@with_venues(dry="test-final-swap")
@with_engine(max_attempts=3)
async def test_final_venue_error_fails_at_once_without_retrying(client, plugin):
    frames = await finished(client, await client.submit())
    assert statuses(frames) == ["pending", "routing", "building", "submitted", "failed"]
    assert frames[-1]["error"] == "dry: insufficient liquidity"
    assert plugin.venues["dry"].swaps == 1


@pytest.mark.gen_test(timeout=15)
@with_venues(crashy="test-crash-once-swap")
@with_engine(max_attempts=3, backoff_base_ms=1)
async def test_unexpected_exception_in_swap_is_retried_and_the_order_completes(client, plugin, caplog):
    order_id = await client.submit()
    frames = await finished(client, order_id)
    attempt = ["routing", "building", "submitted"]
    assert statuses(frames) == ["pending", *attempt, "retrying", *attempt, "confirmed"]
    retry = frames[4]
    assert retry["error"] == "crashy: internal error in venue plugin (RuntimeError)"
    assert plugin.venues["crashy"].swaps == 2
    assert "plugin bug" in caplog.text  # the traceback is in the log, not in a frame
    assert all("Traceback" not in str(f) for f in frames)


@pytest.mark.gen_test(timeout=15)
@with_venues(crashy="test-always-crash-swap")
@with_engine(max_attempts=2, backoff_base_ms=1)
async def test_swap_that_always_crashes_fails_after_max_attempts(client, plugin):
    frames = await finished(client, await client.submit())
    assert statuses(frames).count("retrying") == 1
    assert frames[-1]["status"] == "failed"
    assert frames[-1]["error"] == "crashy: internal error in venue plugin (RuntimeError) (after 2 attempts)"
    assert plugin.venues["crashy"].swaps == 2


@pytest.mark.gen_test(timeout=15)
@with_venues(crashy="test-crash-swap-without-status")
@with_engine(max_attempts=3, backoff_base_ms=1)
async def test_crashed_swap_on_a_venue_that_cannot_report_status_fails_rather_than_resend(client, plugin):
    frames = await finished(client, await client.submit())
    assert statuses(frames) == ["pending", "routing", "building", "submitted", "failed"]
    assert "outcome of swap" in frames[-1]["error"] and "unknown" in frames[-1]["error"]
    assert plugin.venues["crashy"].swaps == 1


# -- many orders -------------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
@with_venues(stuck="test-hanging-quote", good="test-stub", dry="test-final-swap")
@with_engine(quote_timeout_ms=50)
async def test_every_order_ends_in_exactly_one_terminal_frame(client):
    ids = [await client.submit() for _ in range(10)]
    for order_id in ids:
        await finished(client, order_id)
