"""Orders per second with a burst: GCRA (the generic cell rate algorithm) in one Lua script.

GCRA keeps one number per client, the theoretical arrival time (TAT) of its
next order; an order is allowed when it arrives no earlier than ``TAT - burst
tolerance``, and each allowed order pushes the TAT one emission interval on.
Unlike a fixed window it never lets twice the rate through at a window's
edge, and unlike a token bucket it needs no refill bookkeeping. The script
reads Redis' clock (``TIME``), so API processes on machines whose clocks
disagree share one limit.
"""

from __future__ import annotations

import math

import redis.asyncio as aioredis

# KEYS[1]: the client's TAT (microseconds). ARGV: emission interval, burst tolerance (µs).
# Returns {1, 0} when allowed, {0, microseconds until it would be}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if now < tat - tolerance then
  return {0, string.format('%.0f', tat - tolerance - now)}
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return {1, '0'}
"""


class RateLimiter:
    """One GCRA decision per order, atomically in Redis."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._script = redis.register_script(_GCRA)

    async def take(self, key: str, per_second: float, burst: int) -> float:
        """0 when one order may go now (and it is counted), else the seconds until one may."""
        interval = 1_000_000 / per_second
        tolerance = interval * (max(burst, 1) - 1)
        allowed, wait_us = await self._script(keys=[key], args=[f"{interval:.0f}", f"{tolerance:.0f}"])
        return 0.0 if int(allowed) else int(wait_us) / 1_000_000


def retry_after(seconds: float) -> str:
    """``Retry-After`` is whole seconds (RFC 9110): round up, never 0 for a refusal."""
    return str(max(1, math.ceil(seconds)))
