"""The IOLoop watchdog: a venue that holds the loop is named, and the venues it starved are not blamed.

Venue code is a plugin author's, and an async method that calls
``time.sleep`` or a blocking HTTP client holds the whole IOLoop: every other
order, socket and venue call waits. So every venue call runs here, as its own
task whose every step is timed:

- a step that holds the loop past the threshold is logged with the venue and
  plugin that took it, counted, and remembered as a *stall*; a heartbeat
  catches stalls outside any venue call;
- a call's deadline does not count the time others held the loop, so a venue
  that answered in time (in the loop's view) is not timed out because another
  held the loop; a call's own stalls count against it;
- a call that overruns is cancelled, and if it ignores the cancellation it is
  abandoned (logged, counted) so the order moves on and shutdown is not held.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import types
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from tornado_engine.venues.api import VenueError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_THRESHOLD_S = 0.1
MAX_CANCEL_GRACE_S = 1.0  # how long a cancelled call may take to clean up before it is abandoned
STALL_MEMORY = 256  # stalls remembered for excusing starved calls (far more than one call can span)

StallObserver = Callable[[str | None, str | None, float], None]
AbandonObserver = Callable[[str, str | None, str], None]


class LoopHeldError(VenueError):
    """The call answered, but held the IOLoop past the threshold doing it: its answer is not used."""


@dataclass(frozen=True)
class Stall:
    """The loop was held from ``started`` to ``ended`` (monotonic), by ``venue`` (None: not a venue call)."""

    started: float
    ended: float
    venue: str | None


@dataclass
class _CallRecord:
    """What the timed steps of one call saw."""

    held_s: float = 0.0  # the longest step over the threshold; 0 when none
    finished_at: float | None = None


@types.coroutine
def _timed_steps(awaitable: Awaitable[T], on_step: Callable[[float, float], None]) -> Generator[Any, Any, T]:
    """Await ``awaitable`` as ``yield from`` would, telling ``on_step`` when each step started and ended."""
    if not hasattr(awaitable, "__await__"):
        raise TypeError(f"a venue method returned {type(awaitable).__name__}, not an awaitable: is it async?")
    steps = awaitable.__await__()
    value: Any = None
    error: BaseException | None = None
    while True:
        started = time.monotonic()
        try:
            signal = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as answer:
            on_step(started, time.monotonic())
            return answer.value
        except BaseException:
            on_step(started, time.monotonic())
            raise
        on_step(started, time.monotonic())
        value, error = None, None
        try:
            value = yield signal
        except GeneratorExit:
            close = getattr(steps, "close", None)
            if close is not None:
                close()
            raise
        except BaseException as exc:  # noqa: BLE001 - CancelledError included: hand it to the venue
            error = exc


class LoopWatchdog:
    """Runs venue calls so that a blocking one is named and the others are judged fairly.

    ``plugin_of`` names the plugin behind a venue (for the log line);
    ``on_stall`` and ``on_abandon`` are the metrics' hooks.
    """

    def __init__(
        self,
        threshold_s: float = DEFAULT_THRESHOLD_S,
        plugin_of: Callable[[str], str | None] = lambda venue: None,
        on_stall: StallObserver | None = None,
        on_abandon: AbandonObserver | None = None,
    ) -> None:
        self.threshold_s = threshold_s
        self.plugin_of = plugin_of
        self.on_stall = on_stall
        self.on_abandon = on_abandon
        self.stalls: collections.deque[Stall] = collections.deque(maxlen=STALL_MEMORY)
        self.abandoned: set[asyncio.Task] = set()  # held so they are not collected while still running
        self._heartbeat: asyncio.Task | None = None

    # -- the heartbeat: stalls outside any venue call --------------------------------

    def start(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="loop-watchdog")

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None
        for task in self.abandoned:
            task.cancel()  # one more chance; a call that ignores it dies with the loop

    async def _beat(self) -> None:
        interval = self.threshold_s
        while True:
            before = time.monotonic()
            await asyncio.sleep(interval)
            now = time.monotonic()
            late = now - before - interval
            if late > self.threshold_s and not any(s.ended > before for s in self.stalls if s.venue):
                self._stalled(Stall(now - late, now, None))

    def _stalled(self, stall: Stall) -> None:
        self.stalls.append(stall)
        seconds = stall.ended - stall.started
        if stall.venue is None:
            plugin = None
            log.warning(
                "the IOLoop was held for %.0f ms by code outside any venue call "
                "(threshold %.0f ms): every order and socket waited",
                seconds * 1000,
                self.threshold_s * 1000,
            )
        else:
            plugin = self.plugin_of(stall.venue)
            log.warning(
                "venue %s (plugin %s) held the IOLoop for %.0f ms in one step (threshold %.0f ms): "
                "a blocking call in an async method? Every order and socket waited",
                stall.venue,
                plugin or "unknown",
                seconds * 1000,
                self.threshold_s * 1000,
            )
        if self.on_stall is not None:
            self.on_stall(stall.venue, plugin, seconds)

    def held_by_others(self, venue: str, since: float, until: float) -> float:
        """Seconds between ``since`` and ``until`` the loop was held by anything but ``venue``."""
        return sum(
            max(0.0, min(s.ended, until) - max(s.started, since))
            for s in self.stalls
            if s.venue != venue and s.ended > since
        )

    # -- venue calls -----------------------------------------------------------------

    async def call(
        self,
        venue: str,
        stage: str,
        awaitable: Awaitable[T],
        timeout_s: float,
        reject_blocking: bool = False,
    ) -> T:
        """Await one venue call under ``timeout_s``; raise ``asyncio.TimeoutError`` when it overran.

        The deadline is extended by the time others held the loop meanwhile.
        ``reject_blocking`` (quotes): an answer from a call that held the loop
        past the threshold raises :class:`LoopHeldError` instead of being used.
        """
        record = _CallRecord()

        def on_step(started: float, ended: float) -> None:
            held = ended - started
            if held > self.threshold_s:
                record.held_s = max(record.held_s, held)
                self._stalled(Stall(started, ended, venue))

        async def run() -> T:
            try:
                return await _timed_steps(awaitable, on_step)
            finally:
                record.finished_at = time.monotonic()

        task = asyncio.get_running_loop().create_task(run(), name=f"venue-{venue}-{stage}")
        started = time.monotonic()
        grace = min(MAX_CANCEL_GRACE_S, timeout_s)
        try:
            while not task.done():
                now = time.monotonic()
                remaining = started + timeout_s + self.held_by_others(venue, started, now) - now
                if remaining <= 0:
                    task.cancel()
                    await asyncio.wait({task}, timeout=grace)  # let a well-behaved call clean up
                    break
                await asyncio.wait({task}, timeout=remaining)
        except asyncio.CancelledError:  # the order itself is cancelled (shutdown): never wait on the venue
            task.cancel()
            self._abandon_unless_done(task, venue, stage, grace, later=True)
            raise
        if not task.done():
            self._abandon_unless_done(task, venue, stage, grace)
            raise asyncio.TimeoutError
        if reject_blocking and record.held_s and not task.cancelled():
            task.exception()  # retrieved: whatever it answered is not used
            raise LoopHeldError(
                f"held the event loop for {record.held_s * 1000:.0f} ms in {stage} (a blocking call in an "
                "async method?); its answer was discarded"
            )
        late = record.finished_at is None or (
            record.finished_at - started - self.held_by_others(venue, started, record.finished_at) > timeout_s
        )
        if late or task.cancelled():
            if not task.cancelled():
                task.exception()  # retrieved: too late to count, whatever it was
            raise asyncio.TimeoutError
        return task.result()

    def _abandon_unless_done(
        self, task: asyncio.Task, venue: str, stage: str, grace: float, later: bool = False
    ) -> None:
        """Abandon a cancelled call that has not ended (now, or ``grace`` seconds from now)."""
        if later:
            asyncio.get_running_loop().call_later(grace, self._abandon_unless_done, task, venue, stage, grace)
        elif not task.done():
            self._abandon(task, venue, stage, grace)

    def _abandon(self, task: asyncio.Task, venue: str, stage: str, grace: float) -> None:
        plugin = self.plugin_of(venue)
        log.error(
            "venue %s (plugin %s) ignored the cancellation of %s for %g s; the call is abandoned "
            "(it may still be running) and the engine moves on without it",
            venue,
            plugin or "unknown",
            stage,
            grace,
        )
        self.abandoned.add(task)
        task.add_done_callback(self._forget)
        if self.on_abandon is not None:
            self.on_abandon(venue, plugin, stage)

    def _forget(self, task: asyncio.Task) -> None:
        self.abandoned.discard(task)
        if not task.cancelled():
            task.exception()
