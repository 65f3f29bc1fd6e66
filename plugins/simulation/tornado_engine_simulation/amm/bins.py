"""Bin-based concentrated liquidity (Meteora DLMM style), in integer base units.

Liquidity sits in discrete price bins; bin ``i`` trades at a fixed price
``base_price * (1 + bin_step)**i`` (b per a, as a Q64 fixed-point integer).
Bins below the active one hold b, bins above hold a, the active bin may hold
both. A swap walks the bins from the active one outwards, each at its own
price, so the price moves by one step per bin crossed. The fee is a base fee
plus a variable fee that rises with volatility: the bins crossed recently
(``volatility``, decaying over time) plus the bins this swap has crossed.
Outputs round down and fees round up, so no bin ever pays more than it holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from tornado_engine_simulation.amm.constant_product import SwapOutcome
from tornado_engine_simulation.amm.errors import InsufficientLiquidity
from tornado_engine_simulation.amm.fees import PPM

Q = 64
ONE = 1 << Q


@dataclass(frozen=True)
class FeeSchedule:
    """``base_ppm`` always; plus ``control * (v * bin_step_bps)**2 / 100`` ppm at volatility v."""

    base_ppm: int
    control: float = 0.0
    max_ppm: int = 100_000

    def rate_ppm(self, volatility: int, bin_step_bps: int) -> int:
        variable = int(self.control * (volatility * bin_step_bps) ** 2 / 100)
        return min(self.max_ppm, self.base_ppm + variable)


@dataclass(frozen=True)
class BinPool:
    """``bins`` maps bin id to (reserve of a, reserve of b); prices come from the id."""

    bins: Mapping[int, tuple[int, int]]
    active_id: int
    bin_step_bps: int
    base_price_q: int
    fees: FeeSchedule
    volatility: int = 0
    bins_crossed: int = field(default=0, compare=False)

    def price_q(self, bin_id: int) -> int:
        """Price of a in b at ``bin_id``, Q64 fixed point."""
        step = 10_000 + self.bin_step_bps
        if bin_id >= 0:
            return self.base_price_q * step**bin_id // 10_000**bin_id
        return self.base_price_q * 10_000 ** (-bin_id) // step ** (-bin_id)

    def spot_price(self, a_to_b: bool) -> float:
        price = self.price_q(self.active_id) / ONE
        return price if a_to_b else 1 / price

    def _walk(self, a_to_b: bool) -> Iterator[int]:
        """Bin ids holding the output token, nearest the active bin first."""
        ids = sorted(i for i in self.bins if (i <= self.active_id if a_to_b else i >= self.active_id))
        return iter(reversed(ids) if a_to_b else ids)

    def liquidity(self, a_to_b: bool) -> int:
        """Everything a swap in this direction could take out (base units of the output token)."""
        return sum(self.bins[i][1 if a_to_b else 0] for i in self._walk(a_to_b))

    def quote(self, amount_in: int, a_to_b: bool) -> SwapOutcome:
        return self.swap(amount_in, a_to_b)[1]

    def swap(self, amount_in: int, a_to_b: bool) -> tuple[BinPool, SwapOutcome]:
        """The pool after selling ``amount_in`` (of a when ``a_to_b``), and what it paid."""
        if amount_in <= 0:
            raise ValueError("amount_in must be positive")
        bins = dict(self.bins)
        remaining, out, fees, crossed, last = amount_in, 0, 0, 0, self.active_id
        for bin_id in self._walk(a_to_b):
            if remaining == 0:
                break
            last = bin_id
            reserve_a, reserve_b = bins[bin_id]
            available = reserve_b if a_to_b else reserve_a
            if available == 0:
                crossed += 1
                continue
            price = self.price_q(bin_id)
            rate = self.fees.rate_ppm(self.volatility + crossed, self.bin_step_bps)
            # Net input that empties this bin, then the gross input that includes its fee.
            drain_net = -(-available * ONE // price) if a_to_b else -(-available * price // ONE)
            drain_gross = -(-drain_net * PPM // (PPM - rate))
            while drain_gross - (-(-drain_gross * rate // PPM)) < drain_net:  # fee rounded up
                drain_gross += 1
            if remaining >= drain_gross:
                gross, paid = drain_gross, available
            else:
                gross = remaining
                net = gross - (-(-gross * rate // PPM))
                paid = min(available, net * price // ONE if a_to_b else net * ONE // price)
            fee = -(-gross * rate // PPM)
            fees += fee
            out += paid
            remaining -= gross
            if a_to_b:
                bins[bin_id] = (reserve_a + gross, reserve_b - paid)
            else:
                bins[bin_id] = (reserve_a - paid, reserve_b + gross)
            if remaining:
                crossed += 1
        if remaining:
            raise InsufficientLiquidity("the pool's bins do not hold enough liquidity for this amount")
        if out <= 0:
            raise InsufficientLiquidity("the amount is too small to buy one base unit")
        net_in = amount_in - fees
        spot = self.spot_price(a_to_b)
        impact = max(0.0, 1 - (out / net_in) / spot) if net_in > 0 else 0.0
        after = replace(
            self, bins=bins, active_id=last, volatility=self.volatility + crossed, bins_crossed=crossed
        )
        return after, SwapOutcome(amount_in, fees, net_in, out, spot, impact)

    def decayed(self, elapsed_s: float, half_life_s: float) -> BinPool:
        """Volatility fades: halved every ``half_life_s`` without trades."""
        if self.volatility == 0 or half_life_s <= 0:
            return self
        return replace(self, volatility=int(self.volatility * 0.5 ** (elapsed_s / half_life_s)))

    def repriced(self, factor: float) -> BinPool:
        """Every bin's price multiplied by ``factor`` (the market moved); nothing is traded."""
        return replace(self, base_price_q=max(1, int(self.base_price_q * factor)))


def make_pool(
    price: float,
    bin_step_bps: int,
    bins_each_side: int,
    per_bin_a: int,
    per_bin_b: int,
    fees: FeeSchedule,
) -> BinPool:
    """A pool centred on ``price`` (b per a, base units): a in bins above, b below, both in the middle."""
    base_price_q = int(price * ONE)
    if base_price_q <= 0:
        raise ValueError("price must be positive")
    bins = {0: (per_bin_a // 2, per_bin_b // 2)}
    for i in range(1, bins_each_side + 1):
        bins[i] = (per_bin_a, 0)
        bins[-i] = (0, per_bin_b)
    return BinPool(bins, 0, bin_step_bps, base_price_q, fees)
