"""What every waiting store offers: the engine picks one backend at start-up.

Orders wait here between the POST that accepted them and the WebSocket that
starts them. The in-memory store (``waiting.in_memory``) needs the POST and
the socket to reach the same process; the Redis one (``waiting.in_redis``)
lets them reach any API process that shares the Redis.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tornado_engine.orders.order import Order

CreateOrder = Callable[[Order, dict[str, Any]], Awaitable[None]]
"""Records an order with its first frame and puts it on the queue."""


class WaitingStore(Protocol):
    shared: bool
    """True when every API process sees the same waiting orders."""

    ttl_seconds: float

    async def submit(self, order: Order) -> None:
        """Keep ``order`` until its client connects or the TTL passes."""

    async def lookup(self, order_id: str) -> Order | None:
        """The waiting order, or None when it is not (or no longer) waiting."""

    async def count(self) -> int:
        """How many orders wait."""

    async def withdraw(self, order_id: str, final_frame: dict[str, Any], create: CreateOrder) -> bool:
        """Take a waiting order out for good and record it with ``final_frame`` (a cancel).

        False when it was not waiting (handed off or expired first): exactly one wins.
        """

    async def hand_off(
        self,
        order_id: str,
        first_frame: dict[str, Any],
        create: CreateOrder,
        before: Callable[[], None],
    ) -> bool:
        """Move a waiting order into Redis and the queue, exactly once.

        ``before()`` sends the pending frame to the client; nothing of the order
        can reach the client ahead of it. False when the order was not waiting.
        """

    async def sweep(self) -> int:
        """Expire the orders past their deadline; returns how many."""

    def start(self, interval: float | None = None) -> None:
        """Start sweeping expired orders in the background."""

    async def stop(self) -> None:
        """Stop sweeping."""
