"""Route planning: the best net output for an order, whole, split across venues, or through a hop.

Three shapes, as Jupiter's ``routePlan`` has them:

- direct: the whole amount on the venue that pays the most;
- split: parts on several venues when that pays at least
  ``routing.split_min_gain_bps`` more than the best venue alone (venues are
  quoted at every ``split_step_percent`` of the amount and the best
  allocation is found by dynamic programming over those steps);
- multi-hop: when no venue has a pool for the pair, through an intermediate
  token (``routing.intermediate_tokens``), each hop on its best venue.

Quotes never change a venue's state, so pricing a split costs only quotes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tornado_engine.config import RoutingConfig
from tornado_engine.execution.quoting import QuoteOutcome, best_quote, gather_quotes
from tornado_engine.orders.amounts import DEFAULT_DECIMALS, to_units
from tornado_engine.venues.api import Quote, QuoteRequest, Venue
from tornado_engine.venues.watchdog import LoopWatchdog


@dataclass(frozen=True)
class Leg:
    """One swap of a route: ``amount_units`` of ``from_token`` on ``venue``, priced by ``quote``."""

    venue: str
    from_token: str
    to_token: str
    amount: float
    amount_units: int
    percent: int
    quote: Quote

    def out_units(self, decimals: Mapping[str, int]) -> int:
        if self.quote.out_amount is not None:
            return self.quote.out_amount
        return int(self.quote.amount_out * 10 ** decimals.get(self.to_token, DEFAULT_DECIMALS))

    def as_frame(self, decimals: Mapping[str, int]) -> dict[str, Any]:
        frame = {
            "dex": self.venue,
            "percent": self.percent,
            "fromToken": self.from_token,
            "toToken": self.to_token,
            "amountIn": self.amount,
            "amountOut": self.quote.amount_out,
            "inAmount": str(self.amount_units),
            "outAmount": str(self.out_units(decimals)),
        }
        if self.quote.fee_amount is not None:
            frame["feeAmount"] = str(self.quote.fee_amount)
        if self.quote.price_impact_pct is not None:
            frame["priceImpactPct"] = self.quote.price_impact_pct
        return frame


@dataclass(frozen=True)
class Route:
    """Legs run in order; ``kind`` is direct, split or multi-hop. ``quotes``: every direct quote."""

    kind: str
    legs: tuple[Leg, ...]
    quotes: tuple[QuoteOutcome, ...]
    best: Quote | None
    created: float = field(default_factory=time.time)

    @property
    def amount_out(self) -> float:
        """toToken units the trader receives."""
        if self.kind == "multi-hop":
            return self.legs[-1].quote.amount_out
        return sum(leg.quote.amount_out for leg in self.legs)

    def out_units(self, decimals: Mapping[str, int]) -> int:
        if self.kind == "multi-hop":
            return self.legs[-1].out_units(decimals)
        return sum(leg.out_units(decimals) for leg in self.legs)

    @property
    def main(self) -> Leg:
        """The leg that carries most of the order (the first hop of a multi-hop route)."""
        return max(self.legs, key=lambda leg: leg.percent)

    def expires_at(self, ttl_s: float) -> float:
        """When a leg's quote stops standing, or ``ttl_s`` after planning, whichever is first."""
        ends = [leg.quote.expires_at for leg in self.legs if leg.quote.expires_at is not None]
        return min([self.created + ttl_s, *ends])

    def price_impact_pct(self) -> float | None:
        impacts = [leg.quote.price_impact_pct for leg in self.legs if leg.quote.price_impact_pct is not None]
        if not impacts:
            return None
        if self.kind == "multi-hop":
            return round(sum(impacts), 6)
        return round(sum(i * leg.percent for i, leg in zip(impacts, self.legs, strict=False)) / 100, 6)


def best_split(table: Mapping[str, Sequence[float]], steps: int) -> tuple[float, dict[str, int]]:
    """Allocate ``steps`` equal parts across venues to maximise the total output.

    ``table[venue][k]`` is the output for ``k`` parts (``[0]`` is 0; a missing
    quote is ``-inf``). Returns the best total and parts per venue (venues with
    none left out). Dynamic programming: exact for the given grid.
    """
    none: dict[str, int] = {}
    best: list[tuple[float, dict[str, int]]] = [(0.0, none)] + [(float("-inf"), none)] * steps
    for venue, outputs in table.items():
        nxt = list(best)
        for used in range(steps + 1):
            base, plan = best[used]
            if base == float("-inf"):
                continue
            for k in range(1, steps - used + 1):
                total = base + outputs[k]
                if total > nxt[used + k][0]:
                    nxt[used + k] = (total, {**plan, venue: k})
        best = nxt
    return best[steps]


class RoutePlanner:
    def __init__(
        self,
        routing: RoutingConfig,
        decimals: Mapping[str, int],
        quote_timeout_s: float,
        watchdog: LoopWatchdog | None = None,
    ) -> None:
        self.routing = routing
        self.decimals = decimals
        self.timeout_s = quote_timeout_s
        self.watchdog = watchdog or LoopWatchdog()

    def units(self, token: str, amount: float) -> int:
        return to_units(amount, self.decimals.get(token, DEFAULT_DECIMALS))

    async def plan(
        self,
        venues: Iterable[Venue],
        order_id: str,
        from_token: str,
        to_token: str,
        amount: float,
        units: int,
    ) -> Route:
        """The best route; one with no legs (kind ``none``) when no venue or hop can fill the order."""
        venues = list(venues)
        request = QuoteRequest(order_id, from_token, to_token, amount, units)
        outcomes = await gather_quotes(venues, request, self.timeout_s, self.watchdog)
        best = best_quote(outcomes)
        if best is not None:
            direct = Leg(best.venue, from_token, to_token, amount, units, 100, best)
            route = Route("direct", (direct,), tuple(outcomes), best)
            quoted = [o.venue for o in outcomes if o.quote is not None]
            if self.routing.split and len(quoted) > 1 and self.split_could_pay(request, outcomes, best):
                split = await self._split(venues, quoted, request, route)
                if split is not None:
                    return split
            return route
        if self.routing.multi_hop:
            hopped = await self._multi_hop(venues, request, tuple(outcomes))
            if hopped is not None:
                return hopped
        return Route("none", (), tuple(outcomes), None)

    async def _split(
        self, venues: list[Venue], quoted: list[str], request: QuoteRequest, direct: Route
    ) -> Route | None:
        step = self.routing.split_step_percent
        steps = 100 // step
        by_name = {v.name: v for v in venues if v.name in quoted}
        parts = {(name, k): self._part(request, k * step) for name in by_name for k in range(1, steps)}
        answers = await asyncio.gather(
            *(
                gather_quotes([by_name[name]], req, self.timeout_s, self.watchdog)
                for (name, _), req in parts.items()
            )
        )
        quotes: dict[tuple[str, int], Quote] = {}
        for key, answer in zip(parts, answers, strict=True):
            if answer and answer[0].quote is not None:
                quotes[key] = answer[0].quote
        for outcome in direct.quotes:
            if outcome.quote is not None:
                quotes[(outcome.venue, steps)] = outcome.quote
        table = {
            name: [0.0]
            + [
                quotes[(name, k)].amount_out if (name, k) in quotes else float("-inf")
                for k in range(1, steps + 1)
            ]
            for name in by_name
        }
        total, allocation = best_split(table, steps)
        if len(allocation) < 2 or total <= direct.amount_out * (1 + self.routing.split_min_gain_bps / 10_000):
            return None
        legs = []
        remaining = request.amount_units or 0
        names = [n for n in by_name if n in allocation]
        for i, name in enumerate(names):
            k = allocation[name]
            part = self._part(request, k * step)
            units = (part.amount_units or 0) if i < len(names) - 1 else remaining
            remaining -= units
            quote = quotes[(name, k)]
            legs.append(Leg(name, request.from_token, request.to_token, part.amount, units, k * step, quote))
        return Route("split", tuple(legs), direct.quotes, direct.best)

    def split_could_pay(self, request: QuoteRequest, outcomes: Sequence[QuoteOutcome], best: Quote) -> bool:
        """Whether any split could beat ``best`` by the minimum gain; if not, skip the search.

        Output is concave in input on a pool, so no split pays more than the
        whole amount at the best venue's spot rate after fees (spot =
        price / (1 - impact)). Most orders are far too small to move a pool,
        and this bound spares them the search's dozens of extra quotes.
        """
        bound = 0.0
        for outcome in outcomes:
            quote = outcome.quote
            if quote is None:
                continue
            if quote.price_impact_pct is None or quote.price_impact_pct >= 100:
                return True  # the venue does not say: search
            spot = quote.price / (1 - quote.price_impact_pct / 100)
            bound = max(bound, spot * (1 - quote.fee))
        return request.amount * bound > best.amount_out * (1 + self.routing.split_min_gain_bps / 10_000)

    def _part(self, request: QuoteRequest, percent: int) -> QuoteRequest:
        units = (request.amount_units or 0) * percent // 100
        decimals = self.decimals.get(request.from_token, DEFAULT_DECIMALS)
        return QuoteRequest(
            request.order_id, request.from_token, request.to_token, units / 10**decimals, units
        )

    async def _multi_hop(
        self, venues: list[Venue], request: QuoteRequest, direct: tuple[QuoteOutcome, ...]
    ) -> Route | None:
        best: Route | None = None
        for via in self.routing.intermediate_tokens:
            if via in (request.from_token, request.to_token):
                continue
            first = best_quote(
                await gather_quotes(
                    venues,
                    QuoteRequest(
                        request.order_id, request.from_token, via, request.amount, request.amount_units
                    ),
                    self.timeout_s,
                    self.watchdog,
                )
            )
            if first is None:
                continue
            hop1 = Leg(
                first.venue, request.from_token, via, request.amount, request.amount_units or 0, 100, first
            )
            mid_units = hop1.out_units(self.decimals)
            second = best_quote(
                await gather_quotes(
                    venues,
                    QuoteRequest(request.order_id, via, request.to_token, first.amount_out, mid_units),
                    self.timeout_s,
                    self.watchdog,
                )
            )
            if second is None:
                continue
            hop2 = Leg(second.venue, via, request.to_token, first.amount_out, mid_units, 100, second)
            route = Route("multi-hop", (hop1, hop2), direct, None)
            if best is None or route.amount_out > best.amount_out:
                best = route
        return best
