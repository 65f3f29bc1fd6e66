"""A simulated venue that plugins build on: latencies, fees, variance, failures.

Both bundled mock venues are thin subclasses; a third-party plugin may use it
too. Every random decision draws from ``VenueSettings.random_for`` so a seeded
engine gives the same quotes and outcomes for the same order every run.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from tornado_engine.config import ConfigSection
from tornado_engine.venue import (
    FinalVenueError,
    Quote,
    QuoteRequest,
    RetryableVenueError,
    SwapRequest,
    SwapResult,
    Venue,
    VenueSettings,
)


@dataclass(frozen=True)
class SimulationOptions:
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

    @classmethod
    def read(cls, options: ConfigSection, defaults: SimulationOptions) -> SimulationOptions:
        return cls(
            fee=options.get_number("fee", defaults.fee, minimum=0, maximum=0.5),
            price_variance=options.get_number(
                "price_variance", defaults.price_variance, minimum=0, maximum=0.5
            ),
            quote_latency_ms=options.get_range("quote_latency_ms", defaults.quote_latency_ms),
            build_latency_ms=options.get_range("build_latency_ms", defaults.build_latency_ms),
            swap_latency_ms=options.get_range("swap_latency_ms", defaults.swap_latency_ms),
            quote_failure_rate=options.get_number(
                "quote_failure_rate", defaults.quote_failure_rate, minimum=0, maximum=1
            ),
            failure_rate=options.get_number("failure_rate", defaults.failure_rate, minimum=0, maximum=1),
            slippage_variance=options.get_number(
                "slippage_variance", defaults.slippage_variance, minimum=0, maximum=0.5
            ),
            confirm_latency_ms=options.get_range("confirm_latency_ms", defaults.confirm_latency_ms),
            ledger_path=options.get_str("ledger_path", None),
        )


class SimulatedVenue(Venue):
    """Prices from the configured reference prices, moved by a random variance."""

    defaults = SimulationOptions(
        fee=0.003,
        price_variance=0.02,
        quote_latency_ms=(150, 250),
        build_latency_ms=(50, 150),
        swap_latency_ms=(2000, 3000),
        quote_failure_rate=0.0,
        failure_rate=0.1,
        slippage_variance=0.005,
    )

    def __init__(self, settings: VenueSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.tokens = settings.tokens
        self.options = SimulationOptions.read(settings.options, self.defaults)
        self.ledger = Ledger(self.options.ledger_path)

    async def _delay(self, span: tuple[float, float], *parts: object) -> None:
        scale = self.settings.latency_scale
        if scale <= 0:
            return
        await asyncio.sleep(self.settings.random_for("latency", *parts).uniform(*span) * scale / 1000)

    def reference_price(self, from_token: str, to_token: str) -> float:
        prices = self.settings.reference_prices
        return prices[from_token] / prices[to_token]

    async def quote(self, request: QuoteRequest) -> Quote:
        if not self.supports(request.from_token, request.to_token):
            raise FinalVenueError(f"{self.name} does not trade {request.from_token}/{request.to_token}")
        await self._delay(self.options.quote_latency_ms, "quote", request.order_id)
        rng = self.settings.random_for("quote", request.order_id)
        if rng.random() < self.options.quote_failure_rate:
            raise RetryableVenueError(f"{self.name} RPC error while quoting")
        variance = self.options.price_variance
        price = self.reference_price(request.from_token, request.to_token) * (
            1 + rng.uniform(-variance, variance)
        )
        fee = self.options.fee
        return Quote(venue=self.name, price=price, fee=fee, amount_out=request.amount * price * (1 - fee))

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
        if rng.random() < self.options.failure_rate:
            raise RetryableVenueError(f"{self.name} transaction was not confirmed (simulated RPC failure)")
        slip = self.options.slippage_variance
        execution_price = request.quote.price * (1 + rng.uniform(-slip, slip))
        digest = hashlib.sha256(f"{self.name}:{request.idempotency_key}".encode()).digest()
        result = SwapResult(
            tx_hash=_base58(digest),
            execution_price=execution_price,
            amount_out=request.amount * execution_price * (1 - request.quote.fee),
        )
        # The swap has landed; confirmation takes a while longer (a crash here
        # leaves an executed swap the engine has not yet confirmed).
        result = self.ledger.record(request.idempotency_key, self.name, result)
        await self._delay(self.options.confirm_latency_ms, "confirm", request.idempotency_key)
        return result


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
                return SwapResult(entry["tx_hash"], entry["execution_price"], entry["amount_out"])
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
