"""The order as submitted, and the validation every POST body goes through."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tornado_engine.frames import utc_now_iso

SUPPORTED_ORDER_TYPES = ("market",)
KNOWN_FIELDS = ("fromToken", "toToken", "amount", "orderType")


class OrderValidationError(ValueError):
    """A client sent an order we cannot accept; ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Order:
    order_id: str
    from_token: str
    to_token: str
    amount: float
    order_type: str = "market"
    created_at: str = field(default_factory=utc_now_iso)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Order:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def summary(self) -> dict[str, Any]:
        """The order as the client wrote it, in the contract's field names."""
        return {
            "fromToken": self.from_token,
            "toToken": self.to_token,
            "amount": self.amount,
            "orderType": self.order_type,
            "createdAt": self.created_at,
        }


@dataclass(frozen=True)
class OrderRules:
    """What the engine accepts: derived from config and the enabled venues."""

    max_amount: float
    tokens: frozenset[str]
    pairs: frozenset[tuple[str, str]]


def _token(body: Mapping[str, Any], name: str, rules: OrderRules) -> str:
    if name not in body or body[name] is None:
        raise OrderValidationError(f"{name} is required", name)
    value = body[name]
    if not isinstance(value, str):
        raise OrderValidationError(f"{name} must be a string, got {type(value).__name__}", name)
    value = value.strip()
    if not value:
        raise OrderValidationError(f"{name} must not be empty", name)
    if value not in rules.tokens:
        known = ", ".join(sorted(rules.tokens))
        shown = value if len(value) <= 32 else value[:32] + "…"
        raise OrderValidationError(f"unknown token {shown!r}; known tokens: {known}", name)
    return value


def validate_order(body: Any, rules: OrderRules) -> Order:
    """Turn a decoded JSON body into an Order, or raise OrderValidationError."""
    if not isinstance(body, dict):
        raise OrderValidationError("the body must be a JSON object")
    from_token = _token(body, "fromToken", rules)
    to_token = _token(body, "toToken", rules)
    if from_token == to_token:
        raise OrderValidationError("toToken must differ from fromToken", "toToken")
    if (from_token, to_token) not in rules.pairs:
        raise OrderValidationError(f"no enabled venue trades {from_token} for {to_token}", "toToken")
    if "amount" not in body or body["amount"] is None:
        raise OrderValidationError("amount is required", "amount")
    amount = body["amount"]
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise OrderValidationError(f"amount must be a number, got {type(amount).__name__}", "amount")
    try:
        amount = float(amount)
    except OverflowError:  # an integer too large for a float
        raise OrderValidationError(f"amount must be at most {rules.max_amount:g}", "amount") from None
    if not math.isfinite(amount):
        raise OrderValidationError("amount must be a finite number", "amount")
    if amount <= 0:
        raise OrderValidationError("amount must be greater than 0", "amount")
    if amount > rules.max_amount:
        raise OrderValidationError(f"amount must be at most {rules.max_amount:g}", "amount")
    order_type = body.get("orderType", "market")
    if order_type is None:
        order_type = "market"
    if not isinstance(order_type, str):
        raise OrderValidationError(
            f"orderType must be a string, got {type(order_type).__name__}", "orderType"
        )
    if order_type not in SUPPORTED_ORDER_TYPES:
        shown = order_type if len(order_type) <= 32 else order_type[:32] + "…"
        raise OrderValidationError(
            f"orderType {shown!r} is not supported; supported: {', '.join(SUPPORTED_ORDER_TYPES)}",
            "orderType",
        )
    return Order(
        order_id=str(uuid.uuid4()),
        from_token=from_token,
        to_token=to_token,
        amount=amount,
        order_type=order_type,
    )
