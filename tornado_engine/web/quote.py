"""``GET /api/quote``: the route the engine would take now, without executing anything.

The query is validated as an order body would be (the same messages), then
the executor plans it exactly as the worker would and answers with the
fields of the ``routing`` frame: every venue's quote, the route and its
legs, the expected and minimum output, price impact and expiry.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from tornado_engine.auth import READ
from tornado_engine.execution.executor import NoRoute
from tornado_engine.orders.order import OrderValidationError, validate_order
from tornado_engine.timeouts import within
from tornado_engine.web.base import ApiError, JsonHandler

log = logging.getLogger(__name__)

QUERY_FIELDS = ("fromToken", "toToken", "amount", "slippageBps")
INTEGER = re.compile(r"-?[0-9]{1,6}")
QUOTE_TIMEOUT_S = 15  # the planner's own quote timeouts come first; this bounds hops and splits together


class QuoteHandler(JsonHandler):
    scope = READ

    async def get(self) -> None:
        query: dict[str, Any] = {"orderType": "market"}
        for name in QUERY_FIELDS:
            value = self.get_query_argument(name, None)
            if value is None:
                continue
            # slippageBps is an integer in an order body; the query has only text
            query[name] = int(value) if name == "slippageBps" and INTEGER.fullmatch(value) else value
        try:
            order = validate_order(query, self.engine.rules)
        except OrderValidationError as exc:
            raise ApiError(400, str(exc), exc.field) from None
        try:
            route = await within(QUOTE_TIMEOUT_S, self.engine.executor.quote(order))
        except NoRoute as exc:
            raise ApiError(
                503, f"no venue can quote {order.from_token}->{order.to_token} now: {exc}"
            ) from None
        except asyncio.TimeoutError:
            log.warning("GET /api/quote: quoting %s->%s took too long", order.from_token, order.to_token)
            raise ApiError(503, "the venues took too long to quote; try again shortly") from None
        self.write_json(
            {
                "fromToken": order.from_token,
                "toToken": order.to_token,
                "amount": order.amount,
                **route,
            }
        )
