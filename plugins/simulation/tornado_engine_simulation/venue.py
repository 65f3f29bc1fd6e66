"""A simulated DEX venue that plugins build on: pools, latencies, failures.

Both bundled mock venues are thin subclasses choosing a pool model (the
Raydium-like one constant product, the Meteora-like one bins); a third-party
plugin may use it too. Quotes are priced on the venue's pools for the exact
amount, executed swaps move the pools, and an optional drift moves prices
over time. Every random decision draws from ``VenueSettings.random_for``, so
a seeded engine gives the same quotes and outcomes for the same order and
pool state every run.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tornado_engine import (
    ConfigSection,
    FinalVenueError,
    InsufficientLiquidityError,
    PoolAdmin,
    Quote,
    QuoteRequest,
    RetryableVenueError,
    SlippageError,
    SwapRequest,
    SwapResult,
    Venue,
    VenueSettings,
    from_units,
    to_units,
)
from tornado_engine_simulation.amm.errors import InsufficientLiquidity
from tornado_engine_simulation.pools import PoolBook, PoolDefaults, read_pools


@dataclass(frozen=True)
class SimulationOptions:
    """A venue's simulation keys in ``venues.yaml`` (``pools`` is read by :mod:`.pools`)."""

    fee: float
    price_variance: float
    quote_latency_ms: tuple[float, float]
    build_latency_ms: tuple[float, float]
    swap_latency_ms: tuple[float, float]
    quote_failure_rate: float
    failure_rate: float
    slippage_variance: float
    confirm_latency_ms: tuple[float, float] = (0, 0)
    ledger_path: str | None = None
    timeout_rate: float = 0.0
    final_failure_rate: float = 0.0
    drift_bps: float = 0.0
    quote_ttl_ms: float = 10_000.0

    @classmethod
    def read(cls, options: ConfigSection, defaults: SimulationOptions) -> SimulationOptions:
        def rate(key: str) -> float:
            return options.get_number(key, getattr(defaults, key), minimum=0, maximum=1)

        return cls(
            fee=options.get_number("fee", defaults.fee, minimum=0, maximum=0.5),
            price_variance=options.get_number(
                "price_variance", defaults.price_variance, minimum=0, maximum=0.5
            ),
            quote_latency_ms=options.get_range("quote_latency_ms", defaults.quote_latency_ms),
            build_latency_ms=options.get_range("build_latency_ms", defaults.build_latency_ms),
            swap_latency_ms=options.get_range("swap_latency_ms", defaults.swap_latency_ms),
            quote_failure_rate=rate("quote_failure_rate"),
            failure_rate=rate("failure_rate"),
            slippage_variance=options.get_number(
                "slippage_variance", defaults.slippage_variance, minimum=0, maximum=0.5
            ),
            confirm_latency_ms=options.get_range("confirm_latency_ms", defaults.confirm_latency_ms),
            ledger_path=_ledger_path(options),
            timeout_rate=rate("timeout_rate"),
            final_failure_rate=rate("final_failure_rate"),
            drift_bps=options.get_number("drift_bps", defaults.drift_bps, minimum=0, maximum=10_000),
            quote_ttl_ms=options.get_number(
                "quote_ttl_ms", defaults.quote_ttl_ms, minimum=0, exclusive_minimum=True
            ),
        )


def _ledger_path(options: ConfigSection) -> str | None:
    """``ledger_path``, checked now: a file the venue cannot create would fail every swap later."""
    path = options.get_str("ledger_path", None)
    if path is None:
        return None
    directory = Path(path).parent
    if Path(path).is_dir():
        raise options.error("ledger_path", f"{path} is a directory; name a file in it ({path}/swaps.jsonl)")
    if not directory.is_dir():
        raise options.error(
            "ledger_path",
            f"directory {directory} does not exist; create it, or choose a file in an existing one",
        )
    if not os.access(directory, os.W_OK):
        raise options.error("ledger_path", f"directory {directory} is not writable by this user")
    return path


class SimulatedVenue(Venue, PoolAdmin):
    """A venue trading against its own simulated pools, which the admin endpoint can list and extend."""

    pool_model = "constant_product"
    defaults = SimulationOptions(
        fee=0.003,
        price_variance=0.0,
        quote_latency_ms=(150, 250),
        build_latency_ms=(50, 150),
        swap_latency_ms=(2000, 3000),
        quote_failure_rate=0.0,
        failure_rate=0.1,
        slippage_variance=0.001,
    )

    def __init__(self, settings: VenueSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.tokens = settings.tokens
        self.options = SimulationOptions.read(settings.options, self.defaults)
        self.ledger = Ledger(self.options.ledger_path)
        self.pools = PoolBook(
            self.pool_defaults(settings.options),
            settings.reference_prices,
            settings.decimals_of,
            drift_bps=self.options.drift_bps,
            rng=lambda *parts: settings.random_for(*parts),
        )
        read_pools(self.pools, settings.options, settings.tokens)

    def pool_defaults(self, options: ConfigSection) -> PoolDefaults:
        """The venue-wide pool keys; subclasses pick the model."""
        defaults = PoolDefaults(self.pool_model, self.options.fee)
        return PoolDefaults(
            model=self.pool_model,
            fee=self.options.fee,
            liquidity_usd=options.get_number(
                "pool_liquidity_usd", defaults.liquidity_usd, minimum=0, exclusive_minimum=True
            ),
            bin_step_bps=options.get_number("bin_step_bps", defaults.bin_step_bps, minimum=1, integer=True),
            bins_each_side=options.get_number(
                "bins_each_side", defaults.bins_each_side, minimum=1, maximum=500, integer=True
            ),
            variable_fee_control=options.get_number(
                "variable_fee_control", defaults.variable_fee_control, minimum=0
            ),
            volatility_half_life_s=options.get_number(
                "volatility_half_life_s", defaults.volatility_half_life_s, minimum=0
            ),
        )

    def supports(self, from_token: str, to_token: str) -> bool:
        return self.pools.find(from_token, to_token) is not None

    def describe_pools(self) -> list[dict[str, Any]]:
        return self.pools.describe()

    def add_pool(self, pair: tuple[str, str], options: ConfigSection) -> None:
        a, b = pair
        self.pools.add(a, b, options)
        self.tokens = self.tokens | {a, b}

    async def _delay(self, span: tuple[float, float], *parts: object) -> None:
        scale = self.settings.latency_scale
        if scale <= 0:
            return
        await asyncio.sleep(self.settings.random_for("latency", *parts).uniform(*span) * scale / 1000)

    def _view(self, order_id: str) -> float:
        """How this order sees the market: ``price_variance`` moves it, the same for quote and swap."""
        variance = self.options.price_variance
        if variance <= 0:
            return 1.0
        return 1 + self.settings.random_for("view", order_id).uniform(-variance, variance)

    def _units_in(self, token: str, amount: float, units: int | None) -> int:
        return units if units is not None else to_units(amount, self.settings.decimals_of(token))

    async def quote(self, request: QuoteRequest) -> Quote:
        if not self.supports(request.from_token, request.to_token):
            raise FinalVenueError(f"{self.name} has no pool for {request.from_token}/{request.to_token}")
        await self._delay(self.options.quote_latency_ms, "quote", request.order_id)
        rng = self.settings.random_for("quote", request.order_id)
        if rng.random() < self.options.quote_failure_rate:
            raise RetryableVenueError(f"{self.name} RPC error while quoting")
        amount = self._units_in(request.from_token, request.amount, request.amount_units)
        try:
            outcome = self.pools.quote(
                request.from_token, request.to_token, amount, self._view(request.order_id)
            )
        except InsufficientLiquidity as exc:
            raise InsufficientLiquidityError(f"{self.name}: {exc}") from None
        dec_in = self.settings.decimals_of(request.from_token)
        dec_out = self.settings.decimals_of(request.to_token)
        amount_out = from_units(outcome.amount_out, dec_out)
        net_in = from_units(outcome.net_in, dec_in)
        return Quote(
            venue=self.name,
            price=amount_out / net_in,
            fee=outcome.fee / outcome.amount_in,
            amount_out=amount_out,
            in_amount=outcome.amount_in,
            out_amount=outcome.amount_out,
            fee_amount=outcome.fee,
            price_impact_pct=round(outcome.price_impact * 100, 6),
            liquidity=self.pools.liquidity(request.from_token, request.to_token),
            expires_at=time.time() + self.options.quote_ttl_ms / 1000,
        )

    async def build(self, request: SwapRequest) -> None:
        await self._delay(self.options.build_latency_ms, "build", request.idempotency_key)

    async def status(self, idempotency_key: str) -> SwapResult | None:
        return self.ledger.get(idempotency_key)

    async def swap(self, request: SwapRequest) -> SwapResult:
        done = self.ledger.get(request.idempotency_key)
        if done is not None:
            return done
        await self._delay(self.options.swap_latency_ms, "swap", request.idempotency_key)
        rng = self.settings.random_for("swap", request.idempotency_key)
        roll = rng.random()
        opts = self.options
        if roll < opts.failure_rate:
            raise RetryableVenueError(f"{self.name} transaction was not confirmed (simulated RPC failure)")
        roll -= opts.failure_rate
        if roll < opts.final_failure_rate:
            raise FinalVenueError(f"{self.name} rejected the transaction (simulated program error)")
        roll -= opts.final_failure_rate
        timed_out = roll < opts.timeout_rate
        if timed_out and rng.random() < 0.5:
            raise asyncio.TimeoutError  # sent, never landed: the engine finds nothing by key
        # Other traders land in the same block: the pool moves a little before ours executes.
        jitter = 1 + rng.uniform(-opts.slippage_variance, opts.slippage_variance)
        done = self.ledger.get(request.idempotency_key)  # a concurrent call with this key won
        if done is not None:
            return done
        if request.past_deadline():  # the engine may have resent it from another worker by now
            raise FinalVenueError(f"{self.name}: the swap arrived after its deadline; nothing was traded")
        result = self._execute(request, self._view(request.order_id) * jitter)
        # The swap has landed; confirmation takes a while longer (a crash here
        # leaves an executed swap the engine has not yet confirmed).
        result = self.ledger.record(request.idempotency_key, self.name, result)
        if timed_out:
            raise asyncio.TimeoutError  # landed, but the confirmation never came back
        await self._delay(self.options.confirm_latency_ms, "confirm", request.idempotency_key)
        return result

    def _execute(self, request: SwapRequest, view: float) -> SwapResult:
        """Check slippage and trade, with no await in between: one swap at a time per pool."""
        if not self.supports(request.from_token, request.to_token):
            raise FinalVenueError(f"{self.name} has no pool for {request.from_token}/{request.to_token}")
        amount = self._units_in(request.from_token, request.amount, request.amount_units)
        try:
            preview = self.pools.quote(request.from_token, request.to_token, amount, view)
        except InsufficientLiquidity as exc:
            raise InsufficientLiquidityError(f"{self.name}: {exc}") from None
        dec_in = self.settings.decimals_of(request.from_token)
        dec_out = self.settings.decimals_of(request.to_token)
        if request.min_amount_out is not None and preview.amount_out < request.min_amount_out:
            raise SlippageError(
                f"slippage: {self.name} would pay {from_units(preview.amount_out, dec_out):g} "
                f"{request.to_token}, below the minimum of "
                f"{from_units(request.min_amount_out, dec_out):g}; nothing was traded"
            )
        outcome = self.pools.execute(request.from_token, request.to_token, amount, view)
        digest = hashlib.sha256(f"{self.name}:{request.idempotency_key}".encode()).digest()
        amount_out = from_units(outcome.amount_out, dec_out)
        return SwapResult(
            tx_hash=_base58(digest),
            execution_price=amount_out / from_units(outcome.net_in, dec_in),  # as Quote.price: before the fee
            amount_out=amount_out,
            out_amount=outcome.amount_out,
        )


class Ledger:
    """The simulated chain: every executed swap, by idempotency key.

    In memory by default. With ``ledger_path`` it is a JSON-lines file shared
    by every process on the machine, so a worker killed mid-swap leaves a
    record its successor (and a test) can read, as a real chain would.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._memory: dict[str, SwapResult] = {}

    def _lines(self) -> Iterator[dict]:
        try:
            with open(self.path, encoding="utf-8") as file:  # type: ignore[arg-type]
                for line in file:
                    if line.strip():
                        yield json.loads(line)
        except FileNotFoundError:
            return

    def get(self, key: str) -> SwapResult | None:
        if self.path is None:
            return self._memory.get(key)
        for entry in self._lines():
            if entry["key"] == key:
                return SwapResult(
                    entry["tx_hash"], entry["execution_price"], entry["amount_out"], entry.get("out_amount")
                )
        return None

    def record(self, key: str, venue: str, result: SwapResult) -> SwapResult:
        """Record ``result`` unless ``key`` already executed; return what stands."""
        if self.path is None:
            return self._memory.setdefault(key, result)
        with open(self.path, "a+", encoding="utf-8") as file:
            fcntl.flock(file, fcntl.LOCK_EX)  # check-and-append is atomic across processes
            existing = self.get(key)
            if existing is not None:
                return existing
            file.write(json.dumps({"key": key, "venue": venue, **asdict(result)}) + "\n")
            file.flush()
            os.fsync(file.fileno())
        return result

    def entries(self) -> list[dict]:
        """Every executed swap (tests count them)."""
        if self.path is None:
            return [{"key": k, **asdict(v)} for k, v in self._memory.items()]
        return list(self._lines())


_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    """Solana signatures are base58; make the simulated ones look the part."""
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out)) or "1"
