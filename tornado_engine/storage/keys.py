"""Every Redis key and channel name, in one place.

All keys of one order share the hash tag ``{<orderId>}`` so that the scripts
touching them run on Redis Cluster unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "te"

    @property
    def queue(self) -> str:
        """The stream of orders ready to execute, read by the worker consumer group."""
        return f"{self.prefix}:queue"

    @property
    def group(self) -> str:
        return "workers"

    @property
    def updates_channel(self) -> str:
        """Pub/sub channel every API process listens on for live order events."""
        return f"{self.prefix}:updates"

    @property
    def finished(self) -> str:
        """Stream of finished orders (``orderId``, ``status``), written in the script that
        records the terminal event, so a history sink can never miss one (storage.store)."""
        return f"{self.prefix}:finished"

    @property
    def epoch(self) -> str:
        """Hash: the data set's id and a beat every process increments (storage.epoch)."""
        return f"{self.prefix}:epoch"

    @property
    def waiting_deadlines(self) -> str:
        """Sorted set: orders in the shared waiting store, scored by expiry time."""
        return f"{self.prefix}:waiting"

    def waiting(self, order_id: str) -> str:
        """String: an order in the shared waiting store (orders.waiting_store: redis)."""
        return f"{self.prefix}:{{{order_id}}}:waiting"

    def order(self, order_id: str) -> str:
        """Hash: the order as submitted, its current status and last seq."""
        return f"{self.prefix}:{{{order_id}}}:order"

    def events(self, order_id: str) -> str:
        """Stream of every frame the order produced; entry id ``0-<seq>``."""
        return f"{self.prefix}:{{{order_id}}}:events"

    def idempotency(self, key: str) -> str:
        """String: the order a client's ``Idempotency-Key`` names (storage.idempotency), by its hash."""
        return f"{self.prefix}:idempotency:{hashlib.sha256(key.encode()).hexdigest()}"

    @property
    def api_keys(self) -> str:
        """Hash: SHA-256 of an API key -> its record (auth.keyring); never the key itself."""
        return f"{self.prefix}:{{api-keys}}:by-hash"

    @property
    def api_key_names(self) -> str:
        """Hash: an API key's name -> its hash (same hash tag: one script changes both)."""
        return f"{self.prefix}:{{api-keys}}:by-name"

    def limit_rate(self, client: str) -> str:
        """String: a client's GCRA arrival time (limits.rate); one hash tag per client."""
        return f"{self.prefix}:limit:{{{client}}}:rate"

    def limit_quota(self, client: str, kind: str) -> str:
        """Sorted set: a client's orders in flight or waiting (limits.quotas), scored by expiry."""
        return f"{self.prefix}:limit:{{{client}}}:{kind}"

    def order_index(self, owner: str | None) -> str:
        """Sorted set: orders by admission time (storage.order_index); per API key with ``owner``."""
        if owner is None:
            return f"{self.prefix}:orders"
        return f"{self.prefix}:orders:key:{hashlib.sha256(owner.encode()).hexdigest()[:32]}"
