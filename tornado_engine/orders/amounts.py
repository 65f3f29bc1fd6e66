"""Token amounts: exact conversion between token units (JSON numbers) and integer base units.

The engine keeps amounts as integers of a token's smallest unit (lamports for
SOL, micro-USDC ...), as the chain does; a JSON number a client sends is
converted through its decimal text, so ``0.1`` is exactly 100_000_000
lamports, never 99_999_999.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

DEFAULT_DECIMALS = 9


class AmountPrecisionError(ValueError):
    """More decimal places than the token has."""


def to_decimal(value: int | float | str | Decimal) -> Decimal:
    """The decimal a JSON number stood for: floats through their shortest repr."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def to_units(value: int | float | str | Decimal, decimals: int) -> int:
    """Token units to base units, exactly; raises when ``value`` is finer than the token."""
    scaled = to_decimal(value).scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise AmountPrecisionError(f"at most {decimals} decimal places")
    return int(scaled)


def from_units(units: int, decimals: int) -> float:
    """Base units to token units as a JSON number (for frames; exact as a string via ``units_str``)."""
    return float(Decimal(units).scaleb(-decimals))


def units_str(units: int, decimals: int) -> str:
    """Base units as an exact decimal string in token units, e.g. ``"1.5"``."""
    text = format(Decimal(units).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
