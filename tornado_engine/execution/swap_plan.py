"""The swaps an attempt sends, fixed once from its route: what build, swap and a takeover all use.

A :class:`SwapPlan` is recorded in the order hash (its ``swap`` field) before
the first swap is sent, so a worker that takes over after a crash asks the
venue about the very swaps, and resends the very requests, that were planned,
quote and all. Its record is written and read here only; it keeps the keys
older versions wrote (and read), so workers of either version can take over
each other's orders.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tornado_engine.execution.routing import Route
from tornado_engine.orders.amounts import DEFAULT_DECIMALS, to_decimal
from tornado_engine.orders.frames import dumps
from tornado_engine.orders.order import Order
from tornado_engine.venues.api import Quote, SwapRequest, SwapResult


def min_amount_out(order: Order, out_units: int, decimals: Mapping[str, int], share: int = 100) -> int:
    """The least a route (or a ``share`` percent leg of it) may pay: slippage, and a limit price."""
    least = out_units * (10_000 - order.slippage_bps) // 10_000
    if order.limit_price is not None:
        limit = to_decimal(order.amount) * to_decimal(order.limit_price) * share / 100
        least = max(least, math.ceil(limit.scaleb(decimals.get(order.to_token, DEFAULT_DECIMALS))))
    return least


@dataclass(frozen=True)
class PlannedSwap:
    """One swap: the venue it goes to and the exact request that venue's build and swap receive."""

    venue: str
    request: SwapRequest

    def after_hop(self, previous: SwapResult) -> PlannedSwap:
        """This hop, spending what the hop before it actually paid (not what it was quoted)."""
        request = dataclasses.replace(
            self.request, amount=previous.amount_out, amount_units=previous.out_amount
        )
        return PlannedSwap(self.venue, request)


@dataclass(frozen=True)
class SwapPlan:
    """The swaps of one attempt, run in order; ``kind`` is the route's: direct, split or multi-hop."""

    kind: str
    swaps: tuple[PlannedSwap, ...]

    @classmethod
    def from_route(cls, order: Order, route: Route, attempt: int, decimals: Mapping[str, int]) -> SwapPlan:
        """Idempotency keys and least outputs for each leg of ``route``, on attempt ``attempt``."""
        swaps = []
        last = len(route.legs) - 1
        for i, leg in enumerate(route.legs):
            key = f"{order.order_id}:{attempt}" if last == 0 else f"{order.order_id}:{attempt}:{i + 1}"
            out_units = leg.out_units(decimals)
            if route.kind != "multi-hop":
                least = min_amount_out(order, out_units, decimals, leg.percent)
            elif i == last:  # the order's own bound applies to what the last hop pays
                least = min_amount_out(order, route.out_units(decimals), decimals)
            else:
                least = out_units * (10_000 - order.slippage_bps) // 10_000
            request = SwapRequest(
                order_id=order.order_id,
                idempotency_key=key,
                from_token=leg.from_token,
                to_token=leg.to_token,
                amount=leg.amount,
                quote=leg.quote,
                amount_units=leg.amount_units,
                min_amount_out=least,
            )
            swaps.append(PlannedSwap(leg.venue, request))
        return cls(route.kind, tuple(swaps))

    def dumps(self) -> str:
        """The order hash's ``swap`` field."""
        record: dict[str, Any] = {"kind": self.kind, "legs": [_swap_record(s) for s in self.swaps]}
        if len(self.swaps) == 1:  # the single-leg format older versions read on takeover
            only = record["legs"][0]
            record.update(dex=only["dex"], key=only["key"], quote=only["quote"])
        return dumps(record)

    @classmethod
    def loads(cls, text: str, order: Order) -> SwapPlan:
        """Read a ``swap`` field, including the single-leg ``dex``/``key``/``quote`` of older versions."""
        record = json.loads(text)
        if "legs" not in record:  # one leg, the order's own amount
            legacy = {
                "dex": record["dex"],
                "key": record["key"],
                "fromToken": order.from_token,
                "toToken": order.to_token,
                "amount": order.amount,
                "amountUnits": order.amount_units or None,
                "minAmountOut": None,
                "quote": record["quote"],
            }
            return cls("direct", (_swap_from_record(legacy, order.order_id),))
        return cls(record["kind"], tuple(_swap_from_record(leg, order.order_id) for leg in record["legs"]))


def _swap_record(swap: PlannedSwap) -> dict[str, Any]:
    request = swap.request
    return {
        "dex": swap.venue,
        "key": request.idempotency_key,
        "fromToken": request.from_token,
        "toToken": request.to_token,
        "amount": request.amount,
        "amountUnits": request.amount_units,
        "minAmountOut": request.min_amount_out,
        "quote": _quote_record(request.quote),
    }


def _swap_from_record(record: Mapping[str, Any], order_id: str) -> PlannedSwap:
    venue = record["dex"]
    request = SwapRequest(
        order_id=order_id,
        idempotency_key=record["key"],
        from_token=record["fromToken"],
        to_token=record["toToken"],
        amount=record["amount"],
        quote=_quote_from_record(record["quote"], venue),
        amount_units=record.get("amountUnits"),
        min_amount_out=record.get("minAmountOut"),
    )
    return PlannedSwap(venue, request)


# Exact base-unit amounts are kept as strings, as the frames have them: JSON readers lose big ints.
_UNIT_FIELDS = {"in_amount": "inAmount", "out_amount": "outAmount", "fee_amount": "feeAmount"}
_NUMBER_FIELDS = {"price_impact_pct": "priceImpactPct", "liquidity": "liquidity", "expires_at": "expiresAt"}


def _quote_record(quote: Quote) -> dict[str, Any]:
    """Every field of ``quote``; the optional ones only when set."""
    record: dict[str, Any] = {
        "dex": quote.venue,
        "price": quote.price,
        "fee": quote.fee,
        "amountOut": quote.amount_out,
    }
    for name, key in _UNIT_FIELDS.items():
        value = getattr(quote, name)
        if value is not None:
            record[key] = str(value)
    for name, key in _NUMBER_FIELDS.items():
        value = getattr(quote, name)
        if value is not None:
            record[key] = value
    return record


def _quote_from_record(record: Mapping[str, Any], venue: str) -> Quote:
    """The quote back; a record of an older version may hold only price, fee and amountOut."""
    optional: dict[str, Any] = {
        name: int(record[key]) for name, key in _UNIT_FIELDS.items() if record.get(key) is not None
    }
    optional.update(
        {name: record[key] for name, key in _NUMBER_FIELDS.items() if record.get(key) is not None}
    )
    return Quote(venue, record["price"], record["fee"], record["amountOut"], **optional)
