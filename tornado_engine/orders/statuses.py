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

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({Status.CONFIRMED, Status.FAILED, Status.EXPIRED})
ACTIVE = frozenset(Status) - TERMINAL
TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)
