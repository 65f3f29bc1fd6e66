"""The simulated venues' pools: read from ``venues.yaml``, priced by :mod:`tornado_engine_simulation.amm`.

A :class:`PoolBook` holds one venue's pools by pair. Executed swaps replace a
pool with its successor; an optional drift moves every pool's price as time
passes (a random walk, ``drift_bps`` per square root of a second), and a bin
pool's volatility decays between trades. Pools can be added while the engine
runs (the admin endpoint, sniper orders).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tornado_engine import ConfigSection, from_units
from tornado_engine_simulation.amm.bins import BinPool, FeeSchedule, make_pool
from tornado_engine_simulation.amm.constant_product import ConstantProductPool, SwapOutcome
from tornado_engine_simulation.amm.fees import fee_ppm

Pool = ConstantProductPool | BinPool
MODELS = ("constant_product", "bins")


@dataclass(frozen=True)
class PoolDefaults:
    """Per-venue pool settings; a pool's own keys override them."""

    model: str
    fee: float
    liquidity_usd: float = 100_000_000.0
    bin_step_bps: int = 25
    bins_each_side: int = 40
    variable_fee_control: float = 0.5
    volatility_half_life_s: float = 30.0


def parse_pair(text: str) -> tuple[str, str]:
    """``"SOL/USDC"`` as ``("SOL", "USDC")``; raises ValueError saying how pools are named."""
    a, sep, b = text.partition("/")
    if not sep or not a.strip() or not b.strip() or a.strip() == b.strip():
        raise ValueError(f"a pool is named 'BASE/QUOTE', e.g. 'SOL/USDC', got {text!r}")
    return a.strip(), b.strip()


class PoolBook:
    """One venue's pools. ``prices`` are reference USD prices, ``decimals`` per token."""

    def __init__(
        self,
        defaults: PoolDefaults,
        prices: Mapping[str, float],
        decimals: Callable[[str], int],
        drift_bps: float = 0.0,
        rng: Callable[..., random.Random] = lambda *parts: random.Random(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.defaults = defaults
        self.prices = prices
        self.decimals = decimals
        self.drift_bps = drift_bps
        self.rng = rng
        self.clock = clock
        self.pools: dict[tuple[str, str], Pool] = {}
        self._touched: dict[tuple[str, str], float] = {}
        self._drift_steps = 0

    # -- building --------------------------------------------------------------------

    def add(self, a: str, b: str, spec: ConfigSection) -> None:
        """Add (or replace) the pool for ``a/b`` from its config keys; raises ConfigError."""
        d = self.defaults
        fee = fee_ppm(spec.get_number("fee", d.fee, minimum=0, maximum=0.5))
        da, db = self.decimals(a), self.decimals(b)
        price = spec.get_number("price", None, minimum=0, exclusive_minimum=True)
        if price is None:
            if a not in self.prices or b not in self.prices:
                raise spec.error("price", f"required: {a} or {b} has no reference_price")
            price = self.prices[a] / self.prices[b]
        if d.model == "constant_product":
            reserves = spec.raw("reserves", None)
            if reserves is None:
                depth = spec.get_number("liquidity_usd", d.liquidity_usd, minimum=0, exclusive_minimum=True)
                usd_a = self.prices.get(a) or depth / price
                reserves = [depth / usd_a, depth / usd_a * price]
            elif not (
                isinstance(reserves, list)
                and len(reserves) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in reserves)
            ):
                raise spec.error("reserves", f"expected [{a} amount, {b} amount] (two positive numbers)")
            pool: Pool = ConstantProductPool(_units(reserves[0], da), _units(reserves[1], db), fee)
        else:
            step = spec.get_number("bin_step_bps", d.bin_step_bps, minimum=1, maximum=1000, integer=True)
            each = spec.get_number("bins_each_side", d.bins_each_side, minimum=1, maximum=500, integer=True)
            per_bin = spec.raw("bin_liquidity", None)
            if per_bin is None:
                depth = spec.get_number("liquidity_usd", d.liquidity_usd, minimum=0, exclusive_minimum=True)
                usd_a = self.prices.get(a) or depth / price
                per_bin = [depth / usd_a / each, depth / usd_a * price / each]
            elif not (
                isinstance(per_bin, list)
                and len(per_bin) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in per_bin)
            ):
                raise spec.error(
                    "bin_liquidity", f"expected [{a} per bin, {b} per bin] (two positive numbers)"
                )
            schedule = FeeSchedule(
                base_ppm=fee,
                control=spec.get_number("variable_fee_control", d.variable_fee_control, minimum=0),
            )
            pool = make_pool(
                price * 10**db / 10**da, step, each, _units(per_bin[0], da), _units(per_bin[1], db), schedule
            )
        spec.finish()
        self.pools[(a, b)] = pool
        self._touched[(a, b)] = self.clock()

    def find(self, from_token: str, to_token: str) -> tuple[tuple[str, str], bool] | None:
        """The pool's key and the direction (True when selling its first token)."""
        if (from_token, to_token) in self.pools:
            return (from_token, to_token), True
        if (to_token, from_token) in self.pools:
            return (to_token, from_token), False
        return None

    # -- time ------------------------------------------------------------------------

    def _age(self, key: tuple[str, str]) -> Pool:
        """The pool as time has left it: drifted, its volatility decayed."""
        now = self.clock()
        elapsed = max(0.0, now - self._touched.get(key, now))
        self._touched[key] = now
        pool = self.pools[key]
        if isinstance(pool, BinPool):
            pool = pool.decayed(elapsed, self.defaults.volatility_half_life_s)
        if self.drift_bps > 0 and elapsed > 0:
            self._drift_steps += 1
            sigma = self.drift_bps / 10_000 * math.sqrt(elapsed)
            pool = shifted(pool, math.exp(self.rng("drift", *key, self._drift_steps).gauss(0, sigma)))
        self.pools[key] = pool
        return pool

    # -- trading ---------------------------------------------------------------------

    def quote(self, from_token: str, to_token: str, amount: int, view: float = 1.0) -> SwapOutcome:
        key, a_to_b = self._require(from_token, to_token)
        return shifted(self._age(key), view if a_to_b else 1 / view).swap(amount, a_to_b)[1]

    def execute(self, from_token: str, to_token: str, amount: int, view: float = 1.0) -> SwapOutcome:
        """Trade against the pool (seen moved by ``view``) and keep the result."""
        key, a_to_b = self._require(from_token, to_token)
        factor = view if a_to_b else 1 / view
        pool = self._age(key)
        after, outcome = shifted(pool, factor).swap(amount, a_to_b)
        if isinstance(after, BinPool):
            assert isinstance(pool, BinPool)  # a swap keeps the pool's kind
            self.pools[key] = replace(after, base_price_q=pool.base_price_q)
        else:
            self.pools[key] = after.moved(1 / factor)
        return outcome

    def liquidity(self, from_token: str, to_token: str) -> float:
        """toToken units a swap from ``from_token`` could take out."""
        key, a_to_b = self._require(from_token, to_token)
        pool = self.pools[key]
        units = pool.liquidity(a_to_b) if isinstance(pool, BinPool) else pool.reserves(a_to_b)[1]
        return from_units(units, self.decimals(to_token))

    def _require(self, from_token: str, to_token: str) -> tuple[tuple[str, str], bool]:
        found = self.find(from_token, to_token)
        if found is None:
            raise KeyError(f"no pool for {from_token}/{to_token}")
        return found

    def describe(self) -> list[dict[str, Any]]:
        """Every pool with its current state, for /api/admin/pools."""
        out = []
        for (a, b), pool in self.pools.items():
            entry: dict[str, Any] = {"pair": f"{a}/{b}", "model": self.defaults.model}
            entry["liquidity"] = {a: self.liquidity(b, a), b: self.liquidity(a, b)}
            entry["price"] = (
                pool.spot_price(True) * 10 ** self.decimals(a) / 10 ** self.decimals(b)
                if isinstance(pool, BinPool)
                else pool.reserve_b / 10 ** self.decimals(b) / (pool.reserve_a / 10 ** self.decimals(a))
            )
            out.append(entry)
        return out


def shifted(pool: Pool, factor: float) -> Pool:
    """``pool`` with the price of its first token multiplied by about ``factor``, nothing traded."""
    if factor == 1.0:
        return pool
    if isinstance(pool, BinPool):
        return pool.repriced(factor)
    return pool.moved(factor)


def _units(value: float, decimals: int) -> int:
    """Config amounts are approximate: round to the nearest base unit (never zero)."""
    return max(1, round(value * 10**decimals))


def read_pools(book: PoolBook, options: ConfigSection, tokens: frozenset[str]) -> None:
    """Fill ``book`` from the venue's ``pools:`` key, or one pool per pair of its tokens."""
    pools = options.section("pools")
    names = pools.names()
    if options.raw("pools", None) is None:
        ordered = sorted(tokens)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                book.add(a, b, pools.section(f"{a}/{b}"))
        return
    for name in names:
        try:
            a, b = parse_pair(name)
        except ValueError as exc:
            raise pools.error(name, str(exc)) from None
        for token in (a, b):
            if token not in tokens:
                raise pools.error(
                    name, f"token {token!r} is not one of this venue's tokens ({', '.join(sorted(tokens))})"
                )
        book.add(a, b, pools.section(name))
    pools.finish()
