"""Fees as integer parts per million, so pool math never rounds a float."""

from __future__ import annotations

from tornado_engine import to_decimal

PPM = 1_000_000


def fee_ppm(fraction: float) -> int:
    """A fee fraction from config (0.003) as parts per million (3000)."""
    return int(to_decimal(fraction) * PPM)
