"""Constant-product pools (x * y = k), Raydium/Uniswap-v2 style, in integer base units.

The fee is taken from the input and stays in the pool, so k grows with every
trade; the output is rounded down, so rounding never shrinks k either.
"""

from __future__ import annotations

from dataclasses import dataclass

from tornado_engine_simulation.amm.errors import InsufficientLiquidity
from tornado_engine_simulation.amm.fees import PPM


@dataclass(frozen=True)
class SwapOutcome:
    """What one swap does: ``amount_in == fee + net_in``; ``price_impact`` is a fraction."""

    amount_in: int
    fee: int
    net_in: int
    amount_out: int
    spot_price: float
    price_impact: float


@dataclass(frozen=True)
class ConstantProductPool:
    """Reserves of the two tokens, in base units; ``fee_ppm`` of the input is the fee."""

    reserve_a: int
    reserve_b: int
    fee_ppm: int

    def reserves(self, a_to_b: bool) -> tuple[int, int]:
        return (self.reserve_a, self.reserve_b) if a_to_b else (self.reserve_b, self.reserve_a)

    def quote(self, amount_in: int, a_to_b: bool) -> SwapOutcome:
        return quote(self.reserves(a_to_b), amount_in, self.fee_ppm)

    def swap(self, amount_in: int, a_to_b: bool) -> tuple[ConstantProductPool, SwapOutcome]:
        """The pool after the swap, and what it paid; the whole input (fee included) stays in."""
        outcome = self.quote(amount_in, a_to_b)
        x, y = self.reserves(a_to_b)
        x, y = x + amount_in, y - outcome.amount_out
        after = ConstantProductPool(x, y, self.fee_ppm) if a_to_b else ConstantProductPool(y, x, self.fee_ppm)
        return after, outcome

    def moved(self, factor: float) -> ConstantProductPool:
        """The pool with its price of a (in b) multiplied by ``factor`` at about the same k (drift)."""
        root = factor**0.5
        return ConstantProductPool(
            max(1, round(self.reserve_a / root)), max(1, round(self.reserve_b * root)), self.fee_ppm
        )


def fee_for(amount_in: int, fee_ppm: int) -> int:
    """The fee on ``amount_in``, rounded up (in the pool's favour)."""
    return -(-amount_in * fee_ppm // PPM)


def quote(reserves: tuple[int, int], amount_in: int, fee_ppm: int) -> SwapOutcome:
    """Output of selling ``amount_in`` of x into a pool holding ``reserves == (x, y)``."""
    x, y = reserves
    if amount_in <= 0:
        raise ValueError("amount_in must be positive")
    if x <= 0 or y <= 0:
        raise InsufficientLiquidity("the pool is empty")
    fee = fee_for(amount_in, fee_ppm)
    net = amount_in - fee
    out = y * net // (x + net)
    if out <= 0:
        raise InsufficientLiquidity("the amount is too small to buy one base unit")
    spot = y / x
    impact = 1 - (out / net) / spot if net > 0 else 0.0
    return SwapOutcome(amount_in, fee, net, out, spot, max(0.0, impact))
