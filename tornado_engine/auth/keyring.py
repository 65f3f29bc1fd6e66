"""The API keys, in Redis, shared by every API process.

A key is ``te_`` and 32 random bytes (``secrets.token_urlsafe``); Redis holds
only its SHA-256 (a key has 256 bits of entropy, so a fast hash is enough: no
one can guess a key from its hash), with the key's name, scopes and rate. Two
hashes under one hash tag (``storage.keys``) index the records by hash and the
names; scripts change both at once, on Redis Cluster too.

A process remembers a key it checked for ``auth.cache_seconds`` (at most
``CACHE_SIZE`` keys), so a revoked key stops working everywhere within that
time. Unknown keys are never remembered: a key added now works at once.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import redis.asyncio as aioredis

from tornado_engine.auth.caller import SCOPES, Caller
from tornado_engine.storage.keys import Keys

KEY_PREFIX = "te_"
CACHE_SIZE = 1024
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

ADD = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
"""
REVOKE = """
local digest = redis.call('HGET', KEYS[2], ARGV[1])
if not digest then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], digest)
return 1
"""


class KeyProblem(ValueError):
    """An operator asked for a key that cannot be made or found; the message says why."""


@dataclass(frozen=True)
class KeyRecord:
    """What Redis holds for one key (its hash is the field it is stored under)."""

    name: str
    scopes: tuple[str, ...]
    rate: float | None
    created_at: str

    def to_json(self) -> str:
        return json.dumps(
            {"name": self.name, "scopes": list(self.scopes), "rate": self.rate, "createdAt": self.created_at}
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> KeyRecord:
        data = json.loads(text)
        return cls(data["name"], tuple(data["scopes"]), data.get("rate"), data.get("createdAt", ""))

    def caller(self) -> Caller:
        return Caller(self.name, frozenset(self.scopes), self.rate)


def new_key() -> str:
    """A fresh API key: what the client sends, shown once by ``keys add``."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def parse_scopes(text: str) -> tuple[str, ...]:
    """``"trade,read"`` as ``("trade", "read")``; KeyProblem naming a scope that does not exist."""
    scopes = tuple(dict.fromkeys(s.strip().lower() for s in text.split(",") if s.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        shown = f"unknown scope {unknown[0]!r}; " if unknown else ""
        raise KeyProblem(f"{shown}--scopes takes a comma-separated list of {', '.join(SCOPES)}")
    return scopes


class KeyRing:
    """The keys in Redis: made and revoked by ``tornado-engine keys``, checked by every API request."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: OrderedDict[str, tuple[Caller, float]] = OrderedDict()

    async def add(self, name: str, scopes: tuple[str, ...], rate: float | None = None) -> str:
        """Store a new key named ``name``; return the key (nowhere else to be found afterwards)."""
        if not NAME.fullmatch(name):
            raise KeyProblem(
                f"a key name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit; "
                f"got {name!r}"
            )
        if rate is not None and not rate > 0:
            raise KeyProblem(f"--rate is orders per second, greater than 0; got {rate:g}")
        key = new_key()
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record = KeyRecord(name, scopes, rate, created)
        added = await self.redis.eval(
            ADD, 2, self.keys.api_keys, self.keys.api_key_names, name, hash_key(key), record.to_json()
        )
        if not added:
            raise KeyProblem(f"a key named {name!r} exists; revoke it first or choose another name")
        return key

    async def revoke(self, name: str) -> None:
        if not await self.redis.eval(REVOKE, 2, self.keys.api_keys, self.keys.api_key_names, name):
            raise KeyProblem(f"no key named {name!r} (tornado-engine keys list shows them)")

    async def records(self) -> list[KeyRecord]:
        """Every key's record, by name (no key and no hash: nothing a caller could use)."""
        stored = await self.redis.hvals(self.keys.api_keys)
        return sorted((KeyRecord.from_json(text) for text in stored), key=lambda r: r.name)

    async def authenticate(self, key: str) -> Caller | None:
        """The caller ``key`` identifies, or None for a key that is not (or no longer) valid."""
        digest = hash_key(key)
        now = self.clock()
        cached = self._cache.get(digest)
        if cached is not None:
            if cached[1] > now:
                return cached[0]
            del self._cache[digest]
        text = await self.redis.hget(self.keys.api_keys, digest)
        if text is None:
            return None
        caller = KeyRecord.from_json(text).caller()
        if self.cache_seconds > 0:
            self._cache[digest] = (caller, now + self.cache_seconds)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return caller
