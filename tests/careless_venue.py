"""A venue whose own ledger is NOT idempotent: it trades every swap call it gets, repeated key or not.

The fault tests run the engine against it so that what keeps a swap from
executing twice is the engine's defence (the epoch fence, the lookups, the
wait for a deadline), never the venue's dedup. Every executed call appends a
line to a JSON-lines file shared by every process (``ledger_path``), naming
the process that traded, so a test counts executions per key. What it does
honour is the contract's one venue-side fence: a swap past its ``deadline``
trades nothing. A sent swap lands even when its caller is cancelled or frozen,
as a transaction on a chain does.

Test processes load it as an installed plugin would be: a ``.dist-info`` on
``PYTHONPATH`` declares it under the ``tornado_engine`` entry-point group
(:func:`install_for_processes`).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

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

KIND = "careless"


class CarelessVenue(Venue):
    """Fixed price (with ``depth``, a constant-product-like impact); options set latencies and lies.

    ``failure_rate``: share of swap calls that raise RetryableVenueError before trading;
    ``raise_after_trade``: every swap raises RetryableVenueError after its trade landed;
    ``clock_behind_ms``: how far the venue's clock (which judges deadlines) runs behind.
    """

    def __init__(self, settings: VenueSettings) -> None:
        options = settings.options
        self.name = settings.name
        self.tokens = settings.tokens
        self.prices = settings.reference_prices
        self.ledger = Path(options.get_str("ledger_path"))
        self.depth = options.get_number("depth", 0.0, minimum=0)
        self.latency_s = {
            stage: options.get_number(f"{stage}_latency_ms", 0.0, minimum=0) / 1000
            for stage in ("quote", "build", "swap", "confirm")
        }
        self.failure_rate = options.get_number("failure_rate", 0.0, minimum=0, maximum=1)
        self.raise_after_trade = options.get_bool("raise_after_trade", False)
        self.clock_behind_s = options.get_number("clock_behind_ms", 0.0, minimum=0) / 1000
        self.calls = 0

    def _amount_out(self, from_token: str, to_token: str, amount: float) -> float:
        out = amount * self.prices[from_token] / self.prices[to_token]
        return out * self.depth / (self.depth + amount) if self.depth else out

    async def quote(self, request: QuoteRequest) -> Quote:
        await asyncio.sleep(self.latency_s["quote"])
        out = self._amount_out(request.from_token, request.to_token, request.amount)
        return Quote(self.name, out / request.amount, 0.0, out)

    async def build(self, request: SwapRequest) -> None:
        await asyncio.sleep(self.latency_s["build"])

    async def swap(self, request: SwapRequest) -> SwapResult:
        # Like a transaction on a chain, a sent swap lands whether or not its caller still waits.
        return await asyncio.shield(asyncio.ensure_future(self._land(request)))

    async def _land(self, request: SwapRequest) -> SwapResult:
        self.calls += 1
        key = request.idempotency_key
        await asyncio.sleep(self.latency_s["swap"])
        if random.Random(f"{key}:{os.getpid()}:{self.calls}").random() < self.failure_rate:
            raise RetryableVenueError(f"{self.name}: simulated RPC failure, nothing traded")
        if request.past_deadline(time.time() - self.clock_behind_s):
            raise FinalVenueError(f"{self.name}: swap {key} arrived after its deadline; nothing traded")
        out = self._amount_out(request.from_token, request.to_token, request.amount)
        result = SwapResult(f"tx-{uuid.uuid4().hex}", out / request.amount, out)
        with open(self.ledger, "a", encoding="utf-8") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            entry = {"key": key, "venue": self.name, "pid": os.getpid(), "tx_hash": result.tx_hash}
            file.write(json.dumps({**entry, "price": result.execution_price, "out": out}) + "\n")
        await asyncio.sleep(self.latency_s["confirm"])
        if self.raise_after_trade:
            raise RetryableVenueError(f"{self.name}: transaction not confirmed (it was: this plugin lies)")
        return result

    async def status(self, idempotency_key: str) -> SwapResult | None:
        for entry in ledger_entries(self.ledger):
            if entry["key"] == idempotency_key:
                return SwapResult(entry["tx_hash"], entry["price"], entry["out"])
        return None


def ledger_entries(path: Path) -> list[dict[str, Any]]:
    """Every executed swap call, in order."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@hookimpl
def register_venues(register: Any) -> None:
    register(KIND, CarelessVenue)


def install_for_processes(directory: Path) -> str:
    """Declare this module as an installed plugin under ``directory``; return the PYTHONPATH to use."""
    dist = directory / "tornado_engine_careless_venue-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tornado-engine-careless-venue\nVersion: 0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        f"[tornado_engine]\n{KIND} = tests.careless_venue\n", encoding="utf-8"
    )
    root = Path(__file__).resolve().parent.parent
    return os.pathsep.join([str(directory), str(root), os.environ.get("PYTHONPATH", "")])
