"""API keys: who is calling (:class:`Caller`) and the keys every API process shares (:class:`KeyRing`).

Off unless ``auth.required`` (or ``serve --require-keys``): then every API
request names a key in ``Authorization: Bearer <key>`` (or, for the
WebSocket, ``?token=<key>``). Redis holds each key's SHA-256 hash with its
name, scopes and rate, never the key itself; ``tornado-engine keys`` manages
them.
"""

from tornado_engine.auth.caller import ADMIN, READ, SCOPES, TRADE, Caller
from tornado_engine.auth.keyring import KeyProblem, KeyRecord, KeyRing, hash_key, new_key

__all__ = [
    "ADMIN",
    "READ",
    "SCOPES",
    "TRADE",
    "Caller",
    "KeyProblem",
    "KeyRecord",
    "KeyRing",
    "hash_key",
    "new_key",
]
