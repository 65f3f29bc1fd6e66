"""Who sent a request, when keys are on: a key's name, its scopes and its rate.

Scopes nest: ``read`` reads the key's own orders and the market, ``trade``
also submits and cancels, ``admin`` may do everything, sees every order and
reaches the admin endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

READ = "read"
TRADE = "trade"
ADMIN = "admin"
SCOPES = (TRADE, READ, ADMIN)
_IMPLIED = {ADMIN: {ADMIN, TRADE, READ}, TRADE: {TRADE, READ}, READ: {READ}}


@dataclass(frozen=True)
class Caller:
    """The key a request was made with (the limits use ``name`` and ``rate``)."""

    name: str
    scopes: frozenset[str]
    rate: float | None = None  # orders per second from ``keys add --rate``; None: the default limit

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    def allows(self, scope: str) -> bool:
        """Whether one of the key's scopes covers ``scope`` (admin covers all, trade covers read)."""
        return any(scope in _IMPLIED.get(held, ()) for held in self.scopes)

    def may_see(self, owner: str | None) -> bool:
        """An order is the business of the key that submitted it, and of admin keys."""
        return self.is_admin or owner == self.name
