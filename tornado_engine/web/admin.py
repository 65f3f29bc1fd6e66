"""``/api/admin/pools``: list the venues' pools, and open one while the engine runs.

Serves the venues that implement the optional :class:`PoolAdmin` capability
(the simulated ones do); the engine knows nothing else about their pools.
Off unless ``orders.admin_api: true``: it changes the simulated market, which
is what demos and tests of sniper orders need, and nothing a trader should
reach. Pools live in the process that serves the request, so use it with
``--role all`` (or send it to every process).

It changes state, so a browser must not be tricked into calling it: a POST
must be ``application/json`` (a form or a ``text/plain`` fetch from another
site cannot send that without a CORS preflight, which we never grant) and
may not come from another origin (``Origin`` or ``Sec-Fetch-Site`` say so).
With keys on, only an ``admin`` key reaches it.
"""

from __future__ import annotations

import json
from typing import Any

from tornado_engine.auth import ADMIN
from tornado_engine.config import ConfigError, ConfigSection
from tornado_engine.venues.api import PoolAdmin
from tornado_engine.web.base import ApiError, JsonHandler
from tornado_engine.web.origins import cross_site_refusal


def parse_pair(text: str) -> tuple[str, str]:
    """``"SOL/USDC"`` as ``("SOL", "USDC")``; raises ValueError saying how pools are named."""
    a, sep, b = text.partition("/")
    if not sep or not a.strip() or not b.strip() or a.strip() == b.strip():
        raise ValueError(f"a pool is named 'BASE/QUOTE', e.g. 'SOL/USDC', got {text!r}")
    return a.strip(), b.strip()


class PoolsHandler(JsonHandler):
    scope = ADMIN

    async def prepare(self) -> None:
        if not self.engine.config.orders.admin_api:
            raise ApiError(404, "the admin API is off; set orders.admin_api: true in engine.yaml")
        await self.authorize()

    def get(self) -> None:
        pools: dict[str, Any] = {}
        for name, venue in self.engine.venues.items():
            if isinstance(venue, PoolAdmin):
                pools[name] = venue.describe_pools()
        self.write_json({"pools": pools})

    def post(self) -> None:
        refusal = cross_site_refusal(self.request.headers)
        if refusal is not None:
            raise ApiError(403, f"the admin API refuses requests from other sites ({refusal})")
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise ApiError(415, "Content-Type must be application/json")
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, RecursionError):
            raise ApiError(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, 'send a JSON object: {"venue": ..., "pair": "BASE/QUOTE", ...pool keys}')
        name = body.pop("venue", None)
        venue = self.engine.venues.get(name) if isinstance(name, str) else None
        if venue is None:
            known = ", ".join(sorted(self.engine.venues))
            raise ApiError(400, f"venue must be one of: {known}", "venue")
        if not isinstance(venue, PoolAdmin):
            raise ApiError(400, f"venue {name} does not take pools at run time", "venue")
        pair = body.pop("pair", None)
        try:
            a, b = parse_pair(pair if isinstance(pair, str) else "")
        except ValueError as exc:
            raise ApiError(400, str(exc), "pair") from None
        for token in (a, b):
            if (
                token not in self.engine.rules.tokens
                and token not in self.engine.config.venues.reference_prices
            ):
                raise ApiError(400, f"unknown token {token!r}", "pair")
        try:
            venue.add_pool((a, b), ConfigSection(body, "request", f"pools.{a}/{b}"))
        except ConfigError as exc:
            raise ApiError(400, f"{exc.key}: {exc.message}", exc.key.rsplit(".", 1)[-1]) from None
        except (ValueError, ArithmeticError) as exc:
            # Numbers the plugin's checks let through but its arithmetic cannot use (1e300 overflows
            # into infinity, a tiny price underflows to 0): the values are at fault, not the server.
            raise ApiError(400, f"venue {name} cannot open {a}/{b} with these values: {exc}") from None
        self.write_json({"venue": name, "pair": f"{a}/{b}", "pools": venue.describe_pools()})
