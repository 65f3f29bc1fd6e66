"""The live page at ``/``: its static files and the two small endpoints it polls.

The page itself is plain static files (no build step, nothing fetched from
elsewhere). ``GET /api/venues`` tells it what it may submit; ``GET
/api/activity`` shows what this API process has seen finish lately, taken
from the live updates every API process already receives, and, asked with
``fromToken``, ``toToken`` and ``amount``, the price a limit order for them
would be compared against now (so the form's limit "at market" can fill).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tornado.web
from redis.exceptions import RedisError

from tornado_engine.auth import READ
from tornado_engine.engine import Engine
from tornado_engine.orders.amounts import AmountPrecisionError
from tornado_engine.orders.order import SUPPORTED_ORDER_TYPES
from tornado_engine.orders.statuses import TERMINAL_VALUES, Status
from tornado_engine.storage.store import StoredEvent
from tornado_engine.storage.updates import UpdateHub
from tornado_engine.web.base import ApiError, JsonErrors, JsonHandler

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
RECENT_LIMIT = 30

# The page loads only its own files and talks only to its own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)


# A file name never holds a control character (a NUL makes the OS refuse the path) or a ``..`` segment.
_NOT_A_FILE = re.compile(r"[\x00-\x1f\x7f]|(^|/)\.\.(/|$)")


class PageFileHandler(JsonErrors, tornado.web.StaticFileHandler):
    """Serves ``static/``; revalidated on every load so an upgrade shows at once."""

    def parse_url_path(self, url_path: str) -> str:
        if _NOT_A_FILE.search(url_path):
            raise ApiError(404, f"no such file: {url_path!r}")
        return super().parse_url_path(url_path)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")


@dataclass
class VenueActivity:
    """What routing frames say about one venue: does it quote, does it win."""

    quotes: int = 0
    quote_errors: int = 0
    routes_won: int = 0
    last_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "quotes": self.quotes,
            "quoteErrors": self.quote_errors,
            "routesWon": self.routes_won,
            "lastError": self.last_error,
        }


@dataclass
class ActivityLog:
    """Recent terminal outcomes and per-venue quoting, as this API process saw them.

    Fed by :meth:`UpdateHub.watch`; best effort by design (a dashboard, not a
    record): the per-order event streams in Redis remain the record.
    """

    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_LIMIT))
    totals: Counter = field(default_factory=Counter)
    venues: dict[str, VenueActivity] = field(default_factory=dict)

    def observe(self, order_id: str, event: StoredEvent) -> None:
        if event.status != Status.ROUTING and event.status not in TERMINAL_VALUES:
            return  # the frequent frames cost nothing beyond this check
        try:
            frame = json.loads(event.frame)
            if event.status == Status.ROUTING:
                self._routing(frame)
            else:
                self._terminal(order_id, event.status, frame)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("activity log skipped a frame of orderId=%s: %s", order_id, exc)

    def _routing(self, frame: dict[str, Any]) -> None:
        for quote in frame.get("quotes", []):
            venue = self.venues.setdefault(str(quote["dex"]), VenueActivity())
            if "error" in quote:
                venue.quote_errors += 1
                venue.last_error = str(quote["error"])
            else:
                venue.quotes += 1
        # Every venue with a leg in the route took part (a split has several); bestDex otherwise.
        routed = {str(leg["dex"]) for leg in frame.get("routePlan") or []}
        if not routed and frame.get("bestDex") is not None:
            routed = {str(frame["bestDex"])}
        for name in routed:
            self.venues.setdefault(name, VenueActivity()).routes_won += 1

    def _terminal(self, order_id: str, status: str, frame: dict[str, Any]) -> None:
        self.totals[status] += 1
        entry = {"orderId": order_id, "status": status, "ts": frame.get("ts")}
        for key in ("dex", "executionPrice", "error"):
            if frame.get(key) is not None:
                entry[key] = frame[key]
        self.recent.appendleft(entry)

    def as_json(self) -> dict[str, Any]:
        return {
            "recent": list(self.recent),
            "totals": {status: self.totals[status] for status in sorted(TERMINAL_VALUES)},
            "venues": {name: stats.as_json() for name, stats in sorted(self.venues.items())},
        }


def follow_activity(updates: UpdateHub) -> ActivityLog:
    """An activity log fed by every live update this API process receives."""
    activity = ActivityLog()
    updates.watch(activity.observe)
    return activity


class VenuesHandler(JsonHandler):
    """``GET /api/venues``: what the order form may offer, from the loaded config."""

    scope = READ

    def get(self) -> None:
        config = self.engine.config
        running = self.engine.venues
        venues = [
            {
                "name": venue.name,
                "plugin": venue.plugin,
                "enabled": venue.enabled and venue.name in running,
                "tokens": list(venue.tokens),
            }
            for venue in config.venues.venues
        ]
        self.write_json(
            {
                "venues": venues,
                "tokens": sorted(self.engine.rules.tokens),
                "pairs": sorted([a, b] for a, b in self.engine.rules.pairs),
                "referencePrices": dict(config.venues.reference_prices),
                "maxAmount": config.orders.max_amount,
                "orderTypes": list(SUPPORTED_ORDER_TYPES),
                "defaultSlippageBps": config.orders.default_slippage_bps,
                "maxSlippageBps": config.orders.max_slippage_bps,
                # For operators (as `tornado-engine venues`): plugin and venue states, with errors.
                "plugins": self.engine.plugins.report()["plugins"],
                "venueStates": self.engine.plugins.report()["venues"],
            }
        )


# ``GET /api/activity?fromToken=SOL&toToken=USDC&amount=1`` adds ``marketPrice``.
MARKET_PRICE_ARGUMENTS = ("fromToken", "toToken", "amount")


class ActivityHandler(JsonHandler):
    """``GET /api/activity``: recent terminal outcomes and how the venues quote.

    With keys on, ``recent`` lists only the caller's orders (all of them for an admin key).
    """

    scope = READ

    def initialize(self, engine: Engine, activity: ActivityLog) -> None:  # type: ignore[override]
        super().initialize(engine)
        self.activity = activity

    async def get(self) -> None:
        body = self.activity.as_json()
        if self.caller is not None and not self.caller.is_admin:
            try:
                mine = set(
                    await self.engine.desk.visible([e["orderId"] for e in body["recent"]], self.caller)
                )
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                log.error("GET /api/activity: Redis unavailable: %s", exc)
                raise ApiError(503, "order storage is unavailable; try again shortly") from None
            body["recent"] = [entry for entry in body["recent"] if entry["orderId"] in mine]
        asked = {name: self.get_query_argument(name, "") for name in MARKET_PRICE_ARGUMENTS}
        if any(asked.values()):
            body["marketPrice"] = await self.market_price(*asked.values())
        self.write_json(body)

    async def market_price(self, from_token: str, to_token: str, amount: str) -> dict[str, Any]:
        """What a limit order's check compares now: the best route's output per unit of input, after fees.

        Plans a route as a waiting limit order's check does and divides its output by the
        amount, as that check does, so a limit set at this price fills if the market holds.
        """
        for name, value in zip(MARKET_PRICE_ARGUMENTS, (from_token, to_token, amount), strict=True):
            if not value:
                raise ApiError(400, f"{name} is required with {', '.join(MARKET_PRICE_ARGUMENTS)}", name)
        if (from_token, to_token) not in self.engine.rules.pairs:
            raise ApiError(400, f"no venue trades {from_token}/{to_token}", "toToken")
        try:
            size = float(amount)
        except ValueError:
            raise ApiError(400, f"amount must be a number, got {amount!r}", "amount") from None
        max_amount = self.engine.config.orders.max_amount
        if not math.isfinite(size) or not 0 < size <= max_amount:
            raise ApiError(400, f"amount must be greater than 0 and at most {max_amount:g}", "amount")
        planner = self.engine.executor.planner
        try:
            units = planner.units(from_token, size)
        except AmountPrecisionError as exc:
            raise ApiError(400, f"amount has too many decimals for {from_token}: {exc}", "amount") from None
        route = await planner.plan(
            self.engine.venues.values(), "market-price", from_token, to_token, size, units
        )
        return {
            "fromToken": from_token,
            "toToken": to_token,
            "amount": size,
            "price": route.amount_out / size if route.legs else None,  # None: no venue can fill it now
            "dex": route.main.venue if route.legs else None,
        }
