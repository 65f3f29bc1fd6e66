"""Routing: ask every venue for a quote at once and pick the best net output."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tornado_engine.venues.api import Quote, QuoteRequest, Venue, VenueError
from tornado_engine.venues.watchdog import LoopWatchdog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuoteOutcome:
    """One venue's answer: a quote, or the reason there is none."""

    venue: str
    quote: Quote | None = None
    error: str | None = None
    seconds: float = field(default=0.0, compare=False)  # how long the venue took (metrics); not in frames

    def as_frame(self) -> dict[str, Any]:
        return self.quote.as_frame() if self.quote else {"dex": self.venue, "error": self.error}


def _check_quote(venue: Venue, quote: object) -> Quote:
    """A plugin may return garbage; never let it reach the best-price choice."""
    if not isinstance(quote, Quote):
        raise VenueError(f"returned {type(quote).__name__} instead of a Quote")
    for name in ("price", "amount_out", "fee"):
        value = getattr(quote, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise VenueError(f"returned a quote with an invalid {name}: {value!r}")
    if quote.price <= 0:
        raise VenueError(f"returned a quote with a price of {quote.price!r}: a price must be above 0")
    if quote.amount_out <= 0:
        raise VenueError(
            f"returned a quote paying out {quote.amount_out!r}: a quote must pay out more than 0"
        )
    if not 0 <= quote.fee < 1:
        raise VenueError(
            f"returned a quote with a fee of {quote.fee!r}: the fee is a fraction of the input, "
            "at least 0 and below 1 (0.003 is 0.3%)"
        )
    if quote.venue != venue.name:  # credit it to the venue that gave it; keep every other field
        quote = dataclasses.replace(quote, venue=venue.name)
    return quote


async def _quote_one(
    venue: Venue, request: QuoteRequest, timeout_s: float, watchdog: LoopWatchdog
) -> QuoteOutcome:
    started = time.monotonic()
    try:
        quote = await watchdog.call(
            venue.name, "quote", venue.quote(request), timeout_s, reject_blocking=True
        )
        return QuoteOutcome(venue.name, quote=_check_quote(venue, quote), seconds=time.monotonic() - started)
    except asyncio.TimeoutError:
        error = f"no quote within {timeout_s * 1000:g} ms"
    except VenueError as exc:
        error = str(exc) or type(exc).__name__
    except Exception as exc:
        log.exception("venue %s raised while quoting orderId=%s", venue.name, request.order_id)
        error = f"internal error in venue plugin: {type(exc).__name__}"
    log.warning("venue %s gave no quote for orderId=%s: %s", venue.name, request.order_id, error)
    return QuoteOutcome(venue.name, error=error, seconds=time.monotonic() - started)


async def gather_quotes(
    venues: Iterable[Venue], request: QuoteRequest, timeout_s: float, watchdog: LoopWatchdog | None = None
) -> list[QuoteOutcome]:
    """Quote on every venue that trades the pair, concurrently, each under ``timeout_s``.

    ``watchdog`` runs each call (the engine's, so stalls are named and counted).
    """
    watchdog = watchdog or LoopWatchdog()
    eligible = [v for v in venues if v.supports(request.from_token, request.to_token)]
    return list(await asyncio.gather(*(_quote_one(v, request, timeout_s, watchdog) for v in eligible)))


def best_quote(outcomes: Iterable[QuoteOutcome]) -> Quote | None:
    """The quote giving the most of toToken after fees; ties go to the first venue."""
    quotes = [o.quote for o in outcomes if o.quote is not None]
    return max(quotes, key=lambda q: q.amount_out, default=None)
