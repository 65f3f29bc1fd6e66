"""Idempotency keys: one order per ``Idempotency-Key``, whichever API process a retry reaches.

A key is claimed in Redis with ``SET NX`` (atomic: of concurrent requests,
exactly one wins) under a short lease, the winner admits its order, then
marks the key admitted for the whole window. A request that finds the key
answers with the order it names: at once when admitted, after the claim
settles when it is still being admitted. A different body under the same
key is a conflict. A winner that cannot admit its order releases the key, so
a retry can try again; one that dies mid-way leaves a lease that expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from tornado_engine.storage.keys import Keys
from tornado_engine.storage.replies import text

MAX_KEY_LENGTH = 255
CLAIM_LEASE_SECONDS = 30  # longer than an admission may take (10 s), short enough to retry after a crash
SETTLE_POLL_SECONDS = (0.005, 0.2)  # first and longest pause while another request admits the order

# Replace the value only if it is still this request's claim: a lease that expired
# and was claimed again by another request is not ours to confirm or release.
_IF_OURS = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 1
"""


class IdempotencyConflict(Exception):
    """The key was used with another body; ``order_id`` is the order it names."""

    def __init__(self, order_id: str) -> None:
        super().__init__(order_id)
        self.order_id = order_id


def key_problem(key: str) -> str | None:
    """Why an ``Idempotency-Key`` header cannot be a key, or None when it can."""
    if not key:
        return "Idempotency-Key must not be empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters, got {len(key)}"
    if not all("!" <= char <= "~" for char in key):
        return "Idempotency-Key must be printable ASCII without spaces (such as a UUID)"
    return None


def body_fingerprint(body: Any) -> str:
    """The same JSON, key order and whitespace aside, gives the same fingerprint."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """What one request stored under a key: its body's fingerprint, its order, whether admitted."""

    fingerprint: str
    order_id: str
    admitted: bool

    def dumps(self) -> str:
        return json.dumps({"body": self.fingerprint, "orderId": self.order_id, "admitted": self.admitted})

    @classmethod
    def loads(cls, raw: str) -> Claim:
        data = json.loads(raw)
        return cls(data["body"], data["orderId"], bool(data["admitted"]))


class IdempotencyKeys:
    """The keys of one engine's Redis: claim, confirm or release, and replay."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, window_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        self.window_seconds = window_seconds
        self._if_ours = redis.register_script(_IF_OURS)

    async def claim(self, key: str, fingerprint: str, order_id: str) -> bool:
        """Whether this request won the key for ``order_id`` (it must then confirm or release)."""
        claim = Claim(fingerprint, order_id, admitted=False)
        won = await self.redis.set(self.keys.idempotency(key), claim.dumps(), nx=True, ex=CLAIM_LEASE_SECONDS)
        return bool(won)

    async def confirm(self, key: str, fingerprint: str, order_id: str) -> None:
        """The order is admitted: the key names it for the whole window."""
        claimed = Claim(fingerprint, order_id, admitted=False).dumps()
        admitted = Claim(fingerprint, order_id, admitted=True).dumps()
        await self._if_ours(keys=[self.keys.idempotency(key)], args=[claimed, admitted, self.window_seconds])

    async def release(self, key: str, fingerprint: str, order_id: str) -> None:
        """The order was not admitted: free the key for a retry."""
        claimed = Claim(fingerprint, order_id, admitted=False).dumps()
        await self._if_ours(keys=[self.keys.idempotency(key)], args=[claimed, "", 0])

    async def replay(self, key: str, fingerprint: str) -> str | None:
        """The order an earlier request with this key and body admitted; None when the key is free.

        Raises :class:`IdempotencyConflict` for another body. While the earlier
        request is still admitting its order this waits for it to settle
        (callers bound the wait): a duplicate must not answer with an order
        id the client could not yet watch, or one that is never admitted.
        """
        pause = SETTLE_POLL_SECONDS[0]
        while True:
            raw = await self.redis.get(self.keys.idempotency(key))
            if raw is None:
                return None
            claim = Claim.loads(text(raw))
            if claim.fingerprint != fingerprint:
                raise IdempotencyConflict(claim.order_id)
            if claim.admitted:
                return claim.order_id
            await asyncio.sleep(pause)
            pause = min(pause * 2, SETTLE_POLL_SECONDS[1])
