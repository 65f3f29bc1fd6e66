"""Which limit, if any, refuses a client's next order: rate first, then the two quotas.

A client is the API key's name when keys are on (its own ``--rate`` replaces
the default rate), else its address when ``limits.per_address`` is on, else
nobody: with keys off and per-address limits off (the default) nothing is
limited, so the original service's clients and their bursts work as before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis.asyncio as aioredis

from tornado_engine.auth import Caller
from tornado_engine.config.model import LimitsConfig
from tornado_engine.limits.quotas import Quota, StillCounts
from tornado_engine.limits.rate import RateLimiter
from tornado_engine.storage.keys import Keys

LIFETIME_MARGIN_S = 600  # past the longest an order can stay in a state, an entry stops counting anyway


@dataclass(frozen=True)
class LimitPolicy:
    """One client's limits; 0 turns a limit off."""

    client: str
    per_second: float
    burst: int
    max_in_flight: int
    max_waiting: int


@dataclass(frozen=True)
class Refusal:
    """Why an order was refused: ``limit`` names it (for the answer and /metrics)."""

    limit: str
    message: str
    retry_after_seconds: float


def policy_for(config: LimitsConfig, caller: Caller | None, address: str | None) -> LimitPolicy | None:
    """The limits of whoever sent a request, or None when nobody is limited."""
    if caller is not None:
        client = f"key:{caller.name}"
        per_second = caller.rate if caller.rate is not None else config.orders_per_second
    elif config.per_address and address:
        client, per_second = f"address:{address}", config.orders_per_second
    else:
        return None
    return LimitPolicy(client, per_second, config.burst, config.max_in_flight, config.max_waiting)


class IntakeLimits:
    """The limits every API process enforces together, through one Redis."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        in_flight: StillCounts,
        waiting: StillCounts,
        in_flight_lifetime_s: float,
        waiting_lifetime_s: float,
    ) -> None:
        self.keys = keys
        self.rate = RateLimiter(redis)
        self.in_flight = Quota(redis, in_flight, in_flight_lifetime_s + LIFETIME_MARGIN_S)
        self.waiting = Quota(redis, waiting, waiting_lifetime_s + LIFETIME_MARGIN_S)

    async def admit(self, policy: LimitPolicy, order_id: str) -> Refusal | None:
        """None when the order may be admitted (its places are then taken), else the refusal."""
        client = hashlib.sha256(policy.client.encode()).hexdigest()[:32]  # no raw address in a key name
        if policy.per_second > 0:
            wait = await self.rate.take(self.keys.limit_rate(client), policy.per_second, policy.burst)
            if wait > 0:
                return Refusal(
                    "rate",
                    f"too many orders: at most {policy.per_second:g} per second (bursts of {policy.burst}); "
                    f"retry in {wait:.2f} s",
                    wait,
                )
        in_flight_key = self.keys.limit_quota(client, "in-flight")
        if policy.max_in_flight > 0 and not await self.in_flight.reserve(
            in_flight_key, order_id, policy.max_in_flight
        ):
            return Refusal(
                "in_flight",
                f"too many orders in flight: at most {policy.max_in_flight}; retry when one finishes",
                1.0,
            )
        if policy.max_waiting > 0 and not await self.waiting.reserve(
            self.keys.limit_quota(client, "waiting"), order_id, policy.max_waiting
        ):
            if policy.max_in_flight > 0:
                await self.in_flight.release(in_flight_key, order_id)
            return Refusal(
                "waiting",
                f"too many orders waiting for their WebSocket: at most {policy.max_waiting}; "
                "open a socket for one (or let it expire) and retry",
                1.0,
            )
        return None
