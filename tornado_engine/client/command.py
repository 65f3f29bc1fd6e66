"""``tornado-engine submit`` and ``tornado-engine watch``: an order's frames on a terminal.

Each frame is one line as it arrives (``--json``: the frame as the engine
sent it); the exit status says how the order ended, so a script can act on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from tornado_engine.client.api import EngineClient, EngineError
from tornado_engine.client.frames import Frame

DEFAULT_URL = "http://127.0.0.1:3000"
URL_VARIABLE, KEY_VARIABLE = "TORNADO_ENGINE_URL", "TORNADO_ENGINE_KEY"
# How the order ended -> exit status. 2 is argparse's own (a usage error).
EXIT_STATUS = {"confirmed": 0, "failed": 1, "expired": 3, "cancelled": 4}
EXIT_REFUSED = 5  # the engine refused the request, could not be reached, or lost the order's stream


def add_commands(commands: argparse._SubParsersAction) -> None:
    submit = commands.add_parser("submit", help="submit an order and print its frames as they arrive")
    submit.add_argument("from_token", metavar="FROM", help="the token sold, e.g. SOL")
    submit.add_argument("to_token", metavar="TO", help="the token bought, e.g. USDC")
    submit.add_argument("amount", metavar="AMOUNT", help="how much FROM to sell, e.g. 1 or 0.25")
    submit.add_argument("--type", dest="order_type", default="market", choices=["market", "limit", "sniper"])
    submit.add_argument("--limit-price", type=float, help="limit orders: the least TO per FROM to accept")
    submit.add_argument("--min-liquidity", type=float, help="sniper orders: the pool liquidity to wait for")
    submit.add_argument("--expires-in", type=float, help="limit/sniper orders: seconds to wait at most")
    submit.add_argument("--slippage-bps", type=int, help="slippage tolerance in basis points")
    submit.add_argument("--idempotency-key", help="retrying with the same key never submits twice")
    watch = commands.add_parser("watch", help="print an order's frames (all so far, then live) until it ends")
    watch.add_argument("order_id", metavar="ORDER_ID")
    watch.add_argument("--last-seq", type=int, default=0, help="only frames after this seq")
    for command in (submit, watch):
        command.add_argument("--url", help=f"the engine (default: ${URL_VARIABLE}, else {DEFAULT_URL})")
        command.add_argument(
            "--key", help=f"API key, when the engine requires keys (default: ${KEY_VARIABLE})"
        )
        command.add_argument("--json", action="store_true", help="print each frame as JSON, one per line")


def run(args: argparse.Namespace) -> int:
    """The exit status: how the order ended (EXIT_STATUS), or EXIT_REFUSED."""
    client = EngineClient(
        args.url or os.environ.get(URL_VARIABLE) or DEFAULT_URL, args.key or os.environ.get(KEY_VARIABLE)
    )
    try:
        return asyncio.run(
            _submit(client, args) if args.command == "submit" else _watch(client, args.order_id, args)
        )
    except EngineError as exc:
        where = f" ({exc.field})" if exc.field else ""
        code = f"HTTP {exc.status}: " if exc.status else ""
        print(f"tornado-engine {args.command}: {code}{exc.message}{where}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


async def _submit(client: EngineClient, args: argparse.Namespace) -> int:
    fields = {
        name: value
        for name, value in (
            ("limitPrice", args.limit_price),
            ("minLiquidity", args.min_liquidity),
            ("expiresInSeconds", args.expires_in),
            ("slippageBps", args.slippage_bps),
        )
        if value is not None
    }
    submitted = await client.submit(
        args.from_token, args.to_token, args.amount, args.order_type, args.idempotency_key, **fields
    )
    again = " (an earlier submit with this Idempotency-Key)" if submitted.replayed else ""
    print(f"order {submitted.order_id} accepted{again}", file=sys.stderr)
    return await _watch(client, submitted.order_id, args)


async def _watch(client: EngineClient, order_id: str, args: argparse.Namespace) -> int:
    last: Frame | None = None
    async for frame in client.watch(order_id, getattr(args, "last_seq", 0)):
        print(json.dumps(frame.fields) if args.json else frame.describe(), flush=True)
        last = frame
    return EXIT_STATUS.get(last.status, EXIT_REFUSED) if last is not None else EXIT_REFUSED
