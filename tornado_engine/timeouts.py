"""Deadlines without a task per call.

``asyncio.wait_for`` wraps its awaitable in a new task (and a timer); on the
hot path of every order that was a measurable share of the CPU.
``asyncio.timeout`` (Python 3.11+) only arms a timer around the current task.
Calls into venue plugins use :meth:`tornado_engine.venues.watchdog.LoopWatchdog.call`
instead, which also survives a plugin that blocks the loop or swallows its
cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(seconds: float, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``; raise ``asyncio.TimeoutError`` after ``seconds``."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - Python 3.10
