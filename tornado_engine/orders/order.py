"""The order as submitted, and the validation every POST body goes through."""

from __future__ import annotations

import datetime
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from tornado_engine.orders.amounts import (
    DEFAULT_DECIMALS,
    AmountPrecisionError,
    parse_decimal_text,
    to_decimal,
    to_units,
)
from tornado_engine.orders.frames import utc_now_iso

SUPPORTED_ORDER_TYPES = ("market", "limit", "sniper")
KNOWN_FIELDS = (
    "fromToken",
    "toToken",
    "amount",
    "orderType",
    "slippageBps",
    "limitPrice",
    "minLiquidity",
    "expiresInSeconds",
)
DEFAULT_WAIT_SECONDS = 300.0


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
    amount_units: int = 0
    slippage_bps: int = 50
    limit_price: float | None = None
    min_liquidity: float | None = None
    expires_at: float | None = None
    owner: str | None = None  # the API key's name that submitted it, when keys are on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Order:
        """Fields added later have defaults, so orders recorded before an upgrade still load."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def summary(self) -> dict[str, Any]:
        """The order as the client wrote it, in the contract's field names."""
        out: dict[str, Any] = {
            "fromToken": self.from_token,
            "toToken": self.to_token,
            "amount": self.amount,
            "orderType": self.order_type,
            "createdAt": self.created_at,
            "slippageBps": self.slippage_bps,
        }
        if self.limit_price is not None:
            out["limitPrice"] = self.limit_price
        if self.min_liquidity is not None:
            out["minLiquidity"] = self.min_liquidity
        if self.expires_at is not None:
            out["expiresAt"] = iso(self.expires_at)
        return out


def iso(epoch: float) -> str:
    """Epoch seconds as the frames' ISO 8601 UTC format."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class OrderRules:
    """What the engine accepts: derived from config and the enabled venues."""

    max_amount: float
    tokens: frozenset[str]
    pairs: frozenset[tuple[str, str]]
    decimals: Mapping[str, int] = field(default_factory=dict)
    default_slippage_bps: int = 50
    max_slippage_bps: int = 5_000
    max_wait_seconds: float = 3_600.0


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
    amount, exact = _amount(body["amount"], rules)
    decimals = rules.decimals.get(from_token, DEFAULT_DECIMALS)
    try:
        amount_units = to_units(exact, decimals)
    except AmountPrecisionError:
        raise OrderValidationError(
            f"amount has more decimal places than {from_token} allows ({decimals})", "amount"
        ) from None
    slippage_bps = _bounded_int(body, "slippageBps", rules.default_slippage_bps, 0, rules.max_slippage_bps)
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
    limit_price = min_liquidity = expires_at = None
    if order_type == "limit":
        limit_price = _positive(body, "limitPrice", required=True)
    if order_type == "sniper":
        min_liquidity = _positive(body, "minLiquidity", required=False, allow_zero=True) or 0.0
    if order_type != "market":
        wait = _positive(body, "expiresInSeconds", required=False)
        wait = DEFAULT_WAIT_SECONDS if wait is None else wait
        if wait > rules.max_wait_seconds:
            raise OrderValidationError(
                f"expiresInSeconds must be at most {rules.max_wait_seconds:g}", "expiresInSeconds"
            )
        expires_at = time.time() + min(wait, rules.max_wait_seconds)
    else:
        for name in ("limitPrice", "minLiquidity", "expiresInSeconds"):
            if body.get(name) is not None:
                raise OrderValidationError(f"{name} applies to limit and sniper orders only", name)
    return Order(
        order_id=str(uuid.uuid4()),
        from_token=from_token,
        to_token=to_token,
        amount=amount,
        order_type=order_type,
        amount_units=amount_units,
        slippage_bps=slippage_bps,
        limit_price=limit_price,
        min_liquidity=min_liquidity,
        expires_at=expires_at,
    )


def _amount(value: Any, rules: OrderRules) -> tuple[float, int | float | Decimal]:
    """The amount as a float (for frames) and as the exact value its base units come from.

    A JSON number or a decimal string (``"1"``, ``"0.25"``); a string never
    becomes a float before its base units are counted.
    """
    if isinstance(value, str):
        try:
            exact: int | float | Decimal = parse_decimal_text(value)
        except ValueError as exc:
            shown = value if len(value) <= 32 else value[:32] + "…"
            raise OrderValidationError(f"amount must be {exc}, got {shown!r}", "amount") from None
        too_large = exact > to_decimal(rules.max_amount)
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OrderValidationError(
            f"amount must be a number or a decimal string, got {type(value).__name__}", "amount"
        )
    else:
        exact = value
        try:
            too_large = float(value) > rules.max_amount
        except OverflowError:  # an integer too large for a float
            too_large = True
    if isinstance(exact, float) and not math.isfinite(exact):
        raise OrderValidationError("amount must be a finite number", "amount")
    if exact <= 0:
        raise OrderValidationError("amount must be greater than 0", "amount")
    if too_large:
        raise OrderValidationError(f"amount must be at most {rules.max_amount:g}", "amount")
    return float(exact), exact


def _number(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OrderValidationError(f"{name} must be a number, got {type(value).__name__}", name)
    try:
        value = float(value)
    except OverflowError:
        raise OrderValidationError(f"{name} is too large", name) from None
    if not math.isfinite(value):
        raise OrderValidationError(f"{name} must be a finite number", name)
    return value


def _positive(body: Mapping[str, Any], name: str, required: bool, allow_zero: bool = False) -> float | None:
    value = _number(body, name)
    if value is None:
        if required:
            raise OrderValidationError(f"{name} is required for this orderType", name)
        return None
    if value < 0 or (value == 0 and not allow_zero):
        raise OrderValidationError(
            f"{name} must be greater than {'or equal to ' if allow_zero else ''}0", name
        )
    return value


def _bounded_int(body: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = _number(body, name)
    if value is None:
        return default
    if value != int(value):
        raise OrderValidationError(f"{name} must be a whole number of basis points", name)
    if not low <= value <= high:
        raise OrderValidationError(f"{name} must be between {low} and {high}", name)
    return int(value)
