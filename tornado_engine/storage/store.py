"""The order store in Redis: each order's state hash and its stream of events.

Every frame an order produces is appended to ``{orderId}:events`` with the
entry id ``0-<seq>`` and published on the updates channel, in one script, so
a late or reconnecting client can be given exactly what it missed. The entry
id doubles as a fence: a second writer that tries to reuse a seq is refused.

The order hash's ``lease`` (a number) is the ownership fencing token: a worker that takes
an order over bumps it (:meth:`OrderStore.take`), and every event and every
swap a worker sends (:meth:`OrderStore.fence`) first checks that the lease is
still the one it took the order with. A stalled worker that wakes up after a
takeover can neither record nor trade. ``sent:<key>`` fields record, before
each swap call, the idempotency key and the deadline the venue was given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from tornado_engine.orders.frames import dumps
from tornado_engine.orders.order import Order
from tornado_engine.orders.statuses import TERMINAL_VALUES
from tornado_engine.storage.batching import CommandBatcher
from tornado_engine.storage.keys import Keys
from tornado_engine.storage.replies import Fields, fields, stream_entries, texts

log = logging.getLogger(__name__)

# The finished-orders feed keeps about this many entries (XADD MAXLEN ~): a history
# sink that lags further than this behind loses the oldest ids from the feed.
FINISHED_FEED_MAXLEN = 100_000


def finished_feed_lua(n: int, oid: str, status: str) -> str:
    """Lua adding the order to the finished feed when the script was given it as ``KEYS[n]``
    (callers pass it only with a terminal event), for every script that records one."""
    return f"""
if #KEYS >= {n} then
  redis.call('XADD', KEYS[{n}], 'MAXLEN', '~', {FINISHED_FEED_MAXLEN}, '*',
             'orderId', {oid}, 'status', {status})
end
"""


# A new order and its first event (and its queue entry), in one step.
# KEYS: order hash, events stream, queue. ARGV: order JSON, status, frame,
# channel, message, updatedAt, enqueue (1/0), retention seconds (0 = keep), orderId.
# KEYS[4], only when the first event is terminal: the finished feed.
# The event goes first: a second create of one order fails before writing anything.
_CREATE = (
    """
redis.call('XADD', KEYS[2], '0-1', 's', ARGV[2], 'f', ARGV[3])
redis.call('HSET', KEYS[1], 'order', ARGV[1], 'status', ARGV[2], 'seq', 1, 'attempt', 0,
           'updatedAt', ARGV[6])
redis.call('PUBLISH', ARGV[4], ARGV[5])
if ARGV[7] == '1' then
  redis.call('XADD', KEYS[3], '*', 'orderId', ARGV[9], 'order', ARGV[1])
end
local retention = tonumber(ARGV[8])
if retention > 0 then
  redis.call('EXPIRE', KEYS[1], retention)
  redis.call('EXPIRE', KEYS[2], retention)
end
"""
    + finished_feed_lua(4, "ARGV[9]", "ARGV[2]")
    + "return 1\n"
)

# KEYS: order hash, events stream. ARGV: seq, status, frame, channel, message,
# retention seconds (0 = keep), updatedAt, lease, orderId, then field/value pairs for the hash.
# KEYS[3], only when the event is terminal: the finished feed.
# Refused (0) when another worker took the order over (lease) or recorded this seq first.
_APPEND = (
    """
local whole = redis.call('HEXISTS', KEYS[1], 'order')
-- A record Redis lost proves nothing about ownership: its holder writes it again.
if whole == 1 and (redis.call('HGET', KEYS[1], 'lease') or '0') ~= ARGV[8] then
  return 0
end
local added = redis.pcall('XADD', KEYS[2], '0-' .. ARGV[1], 's', ARGV[2], 'f', ARGV[3])
if type(added) == 'table' and added.err then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'seq', ARGV[1], 'updatedAt', ARGV[7])
for i = 10, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
local retention = tonumber(ARGV[6])
if retention > 0 then
  redis.call('EXPIRE', KEYS[1], retention)
  redis.call('EXPIRE', KEYS[2], retention)
end
"""
    + finished_feed_lua(3, "ARGV[9]", "ARGV[2]")
    + "return 2 - whole\n"
)

# An order's record written again by the worker that holds it, after Redis lost it:
# every field the worker knows, without overwriting what a later event already wrote,
# and its last frame, so a client that reconnects gets the order's current status.
# KEYS: order hash, events stream. ARGV: seq, status, frame ('' = none), updatedAt,
# restoredAt, retention seconds (0 = keep), then field/value pairs.
_RESTORE = """
for i = 7, #ARGV, 2 do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSETNX', KEYS[1], 'status', ARGV[2])
redis.call('HSETNX', KEYS[1], 'seq', ARGV[1])
redis.call('HSETNX', KEYS[1], 'updatedAt', ARGV[4])
redis.call('HSET', KEYS[1], 'restoredAt', ARGV[5])
if ARGV[3] ~= '' then
  redis.pcall('XADD', KEYS[2], '0-' .. ARGV[1], 's', ARGV[2], 'f', ARGV[3])
end
local retention = tonumber(ARGV[6])
if retention > 0 then
  redis.call('EXPIRE', KEYS[1], retention)
  redis.call('EXPIRE', KEYS[2], retention)
end
return 1
"""

# Hash fields that follow each event rather than the order's plan.
_EVENT_FIELDS = frozenset({"status", "seq", "updatedAt", "restoredAt"})


class IncompleteRecord(Exception):
    """An order's hash lacks fields every recorded order has: Redis lost (part of) it."""

    def __init__(self, order_id: str, missing: str) -> None:
        super().__init__(f"the record of order {order_id} is incomplete (no {missing!r}): Redis lost data")
        self.order_id = order_id


@dataclass
class HeldOrder:
    """What a worker knows of an order it executes: enough to write its record again."""

    fields: dict[str, str]
    seq: int
    status: str
    frame: str = ""


# A takeover: the next lease, and the state to resume from. KEYS: order hash. ARGV: owner.
_TAKE = """
if redis.call('HEXISTS', KEYS[1], 'order') == 0 then
  return false
end
redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""

# Just before a swap call: still the owner? Then record the key and its deadline.
# KEYS: order hash. ARGV: lease, idempotency key, deadline (epoch seconds).
_FENCE = """
local whole = redis.call('HEXISTS', KEYS[1], 'order')
if whole == 1 and (redis.call('HGET', KEYS[1], 'lease') or '0') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'sent:' .. ARGV[2], ARGV[3])
return 1
"""

# A client's cancel: only while the order is pending or waiting (no route chosen, no
# swap fenced), and the lease is bumped, so a worker holding the order can record
# nothing more and send no swap (its next event or fence is refused). Exactly one of
# cancelled or executed. KEYS: order hash, events, finished feed. ARGV: frame with __SEQ__
# for its seq, channel, orderId, updatedAt, retention seconds. Returns {outcome, status or seq}.
_CANCEL = (
    """
if redis.call('HEXISTS', KEYS[1], 'order') == 0 then return {'missing', ''} end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'cancelled' then return {'already', status} end
if status ~= 'pending' and status ~= 'waiting' then return {'refused', status} end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') + 1
local frame = string.gsub(ARGV[1], '__SEQ__', tostring(seq))
redis.call('XADD', KEYS[2], '0-' .. seq, 's', 'cancelled', 'f', frame)
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'seq', seq, 'updatedAt', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('PUBLISH', ARGV[2], ARGV[3] .. '|' .. seq .. '|cancelled|' .. frame)
local retention = tonumber(ARGV[5])
if retention > 0 then
  redis.call('EXPIRE', KEYS[1], retention)
  redis.call('EXPIRE', KEYS[2], retention)
end
"""
    + finished_feed_lua(3, "ARGV[3]", "'cancelled'")
    + "return {'cancelled', tostring(seq)}\n"
)

SEQ_PLACEHOLDER = "__SEQ__"

SENT_PREFIX = "sent:"


def sent_swaps(state: Mapping[str, str]) -> dict[str, float]:
    """The swaps an order's owners sent, by idempotency key: the deadline each venue was given."""
    return {
        name[len(SENT_PREFIX) :]: float(value)
        for name, value in state.items()
        if name.startswith(SENT_PREFIX)
    }


@dataclass(frozen=True)
class StoredEvent:
    """A recorded frame, kept as the JSON text the client receives."""

    seq: int
    status: str
    frame: str


def _event(entry_id: str, values: Fields) -> StoredEvent:
    """An entry of an order's events stream: its id is ``0-<seq>``."""
    return StoredEvent(int(entry_id.split("-", 1)[1]), values["s"], values["f"])


def live_message(order_id: str, seq: int, status: str, frame: str) -> str:
    """What goes on the updates channel: a header so listeners skip others' orders cheaply."""
    return f"{order_id}|{seq}|{status}|{frame}"


def parse_live_message(message: str) -> tuple[str, StoredEvent]:
    order_id, seq, status, frame = message.split("|", 3)
    return order_id, StoredEvent(int(seq), status, frame)


class OrderStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        retention_seconds: int,
        batcher: CommandBatcher | None = None,
        on_record_missing: Callable[[str], None] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.retention_seconds = retention_seconds
        self.batcher = batcher or CommandBatcher(redis)
        self.on_record_missing = on_record_missing
        self.held: dict[str, HeldOrder] = {}
        self._append = self.batcher.script(_APPEND)
        self._create = self.batcher.script(_CREATE)
        self._restore = redis.register_script(_RESTORE)
        self._take = self.batcher.script(_TAKE)
        self._fence = self.batcher.script(_FENCE)
        self._cancel = redis.register_script(_CANCEL)

    async def create(self, order: Order, first_frame: dict[str, Any], queue: str | None) -> None:
        """Record a new order and its first event; enqueue it when ``queue`` is given.

        One script, batched with other orders' commands: either the order exists
        with its first event (and is queued), or nothing was written.
        """
        oid = order.order_id
        order_json = dumps(order.to_dict())
        frame = dumps(first_frame)
        status = first_frame["status"]
        retention = self.retention_seconds if status in TERMINAL_VALUES else 0
        feed = [self.keys.finished] if status in TERMINAL_VALUES else []
        await self._create(
            keys=[self.keys.order(oid), self.keys.events(oid), queue or self.keys.queue, *feed],
            args=[
                order_json,
                status,
                frame,
                self.keys.updates_channel,
                live_message(oid, 1, status, frame),
                str(time.time()),
                "1" if queue is not None else "0",
                retention,
                oid,
            ],
        )

    async def append(
        self, order_id: str, frame: dict[str, Any], state: dict[str, str] | None = None, lease: int = 0
    ) -> bool:
        """Record and publish one event; False when its seq was already taken, or
        when the order's lease is no longer ``lease`` (another worker took it over).

        ``state`` fields are written to the order hash in the same step, so
        what a successor worker needs to resume is never out of step with
        the events.
        """
        seq = frame["seq"]
        status = frame["status"]
        text = dumps(frame)
        retention = self.retention_seconds if status in TERMINAL_VALUES else 0
        # Batched with other orders' events: one round trip for many (see batching).
        feed = [self.keys.finished] if status in TERMINAL_VALUES else []
        outcome = await self._append(
            keys=[self.keys.order(order_id), self.keys.events(order_id), *feed],
            args=[
                seq,
                status,
                text,
                self.keys.updates_channel,
                live_message(order_id, seq, status, text),
                retention,
                str(time.time()),
                str(lease),
                order_id,
                *(item for pair in (state or {}).items() for item in pair),
            ],
        )
        if not outcome:
            return False
        held = self.held.get(order_id)
        if held is not None:
            held.fields.update(state or {})
            held.seq, held.status, held.frame = seq, status, text
        if outcome == 2:
            # The hash had no order: Redis lost it since the last event. Write it again.
            log.error("orderId=%s: its record was missing from Redis; writing it again", order_id)
            if self.on_record_missing is not None:
                self.on_record_missing(order_id)
            if held is not None:
                await self.restore(order_id)
        return True

    def hold(self, order_id: str, state: Mapping[str, str]) -> None:
        """A worker executes ``order_id`` from ``state`` (its hash): remember what it would rewrite."""
        fields = {k: v for k, v in state.items() if k not in _EVENT_FIELDS}
        self.held[order_id] = HeldOrder(fields, int(state.get("seq", 0)), state.get("status", ""))

    def release(self, order_id: str) -> None:
        self.held.pop(order_id, None)

    async def restore(self, order_id: str) -> bool:
        """Write a held order's record again (Redis lost it); fields already there are kept."""
        held = self.held.get(order_id)
        if held is None:
            return False
        retention = self.retention_seconds if held.status in TERMINAL_VALUES else 0
        now = str(time.time())
        await self._restore(
            keys=[self.keys.order(order_id), self.keys.events(order_id)],
            args=[
                held.seq,
                held.status,
                held.frame,
                now,
                now,
                retention,
                *(item for pair in held.fields.items() for item in pair),
            ],
        )
        return True

    async def restore_held(self) -> int:
        """Write again the record of every order this process holds; returns how many."""
        order_ids = list(self.held)
        results = await asyncio.gather(*(self.restore(oid) for oid in order_ids), return_exceptions=True)
        for order_id, result in zip(order_ids, results, strict=True):
            if isinstance(result, BaseException):
                log.error("orderId=%s: could not write its record again: %s", order_id, result)
            elif result:
                log.warning("orderId=%s: record written again after the Redis data loss", order_id)
        return sum(result is True for result in results)

    async def take(self, order_id: str, owner: str) -> Fields | None:
        """Take the order over: bump its lease, name ``owner``, return its state (None: unknown)."""
        reply = await self._take(keys=[self.keys.order(order_id)], args=[owner])
        if not reply:
            return None
        flat = texts(reply)
        return dict(zip(flat[::2], flat[1::2], strict=True))

    async def fence(self, order_id: str, lease: int, key: str, deadline: float) -> bool:
        """Before a swap call: True (and ``key`` recorded as sent) only while ``lease`` owns the order."""
        return bool(
            await self._fence(keys=[self.keys.order(order_id)], args=[str(lease), key, repr(deadline)])
        )

    async def cancel(self, order_id: str, frame: dict[str, Any]) -> tuple[str, str]:
        """Cancel a recorded order that has not begun to execute, atomically.

        ``frame`` is the ``cancelled`` frame with ``seq`` left to the script.
        Returns ``("cancelled", seq)``, ``("already", "cancelled")``,
        ``("refused", <its status>)`` or ``("missing", "")``.
        """
        template = dumps({**frame, "seq": 0}).replace('"seq":0', f'"seq":{SEQ_PLACEHOLDER}', 1)
        outcome, detail = texts(
            await self._cancel(
                keys=[self.keys.order(order_id), self.keys.events(order_id), self.keys.finished],
                args=[
                    template,
                    self.keys.updates_channel,
                    order_id,
                    str(time.time()),
                    self.retention_seconds,
                ],
            )
        )
        return outcome, detail

    async def exists(self, order_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.order(order_id)))

    async def state(self, order_id: str) -> dict[str, str] | None:
        data = await self.redis.hgetall(self.keys.order(order_id))
        return fields(data) if data else None

    async def last_event(self, order_id: str) -> StoredEvent | None:
        entries = stream_entries(await self.redis.xrevrange(self.keys.events(order_id), count=1) or ())
        return _event(*entries[0]) if entries else None

    async def history(self, order_id: str, after_seq: int = 0) -> list[StoredEvent]:
        entries = await self.redis.xrange(self.keys.events(order_id), min=f"(0-{after_seq}")
        return [_event(entry_id, values) for entry_id, values in stream_entries(entries or ())]
