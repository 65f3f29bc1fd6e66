"""Order statuses, with the active and terminal sets named."""

from __future__ import annotations

import enum


class Status(str, enum.Enum):
    PENDING = "pending"
    WAITING = "waiting"  # limit and sniper orders, until their condition is met or they expire
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    RETRYING = "retrying"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # by its client (DELETE /api/orders/{id}) before it began to execute

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({Status.CONFIRMED, Status.FAILED, Status.EXPIRED, Status.CANCELLED})
CANCELLABLE = frozenset({Status.PENDING, Status.WAITING})  # nothing of the order has been routed yet
ACTIVE = frozenset(Status) - TERMINAL
TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)
