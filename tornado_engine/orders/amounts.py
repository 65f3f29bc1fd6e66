"""Token amounts: exact conversion between token units (JSON numbers, decimal strings) and base units.

The engine keeps amounts as integers of a token's smallest unit (lamports for
SOL, micro-USDC ...), as the chain does; a JSON number a client sends is
converted through its decimal text, so ``0.1`` is exactly 100_000_000
lamports, never 99_999_999. A decimal string (``"0.25"``, as most exchange
APIs send amounts) never goes through a float: its digits are the amount.
The conversion is integer arithmetic on the decimal's digits, so no decimal
context can round a long amount into an acceptable one.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

DEFAULT_DECIMALS = 9
MAX_DECIMAL_TEXT = 64  # characters: far beyond any real amount, short enough to show in an error
DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # ASCII digits: "1", "0.25"; no sign, exponent or space


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


def parse_decimal_text(text: str) -> Decimal:
    """A decimal string as the exact Decimal it writes; ValueError saying what is wrong otherwise.

    Only plain digits with an optional fraction: a sign, an exponent, spaces,
    ``NaN`` or ``Infinity`` are refused, so what a client wrote is what executes.
    """
    if len(text) > MAX_DECIMAL_TEXT:
        raise ValueError(f"a decimal string of at most {MAX_DECIMAL_TEXT} characters")
    if text.startswith("-") and DECIMAL_TEXT.fullmatch(text[1:]):
        raise ValueError("greater than 0")
    if not DECIMAL_TEXT.fullmatch(text):
        raise ValueError('a decimal string of digits with an optional fraction, such as "1" or "0.25"')
    return Decimal(text)


def to_units(value: int | float | str | Decimal, decimals: int) -> int:
    """Token units to base units, exactly; raises when ``value`` is finer than the token."""
    sign, digits, exponent = to_decimal(value).as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite number: {value!r}")
    coefficient = int("".join(map(str, digits)) or "0")
    shift = exponent + decimals
    if shift >= 0:
        units = coefficient * 10**shift
    else:
        units, finer = divmod(coefficient, 10**-shift)
        if finer:
            raise AmountPrecisionError(f"at most {decimals} decimal places")
    return -units if sign else units


def from_units(units: int, decimals: int) -> float:
    """Base units to token units as a JSON number (for frames; exact as a string via ``units_str``)."""
    return float(Decimal(units).scaleb(-decimals))


def units_str(units: int, decimals: int) -> str:
    """Base units as an exact decimal string in token units, e.g. ``"1.5"``."""
    text = format(Decimal(units).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
