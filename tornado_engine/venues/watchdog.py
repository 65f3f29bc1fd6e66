"""The IOLoop watchdog: a venue that holds the loop is named, and the venues it starved are not blamed.

Venue code is a plugin author's, and an async method that calls
``time.sleep`` or a blocking HTTP client holds the whole IOLoop: every other
order, socket and venue call waits. So every venue call runs here, each of
its steps timed (in the caller's task: no task per call):

- a step that holds the loop past the threshold is logged with the venue and
  plugin that took it, counted, and remembered as a *stall*; a heartbeat
  catches stalls outside any venue call;
- a call's deadline does not count the time others held the loop, so a venue
  that answered in time (in the loop's view) is not timed out because another
  held the loop; a call's own stalls count against it;
- a call that overruns is cancelled, and if it ignores the cancellation it is
  abandoned (logged, counted, closed, never resumed) so the order moves on and
  shutdown is not held.
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
MAX_CANCEL_GRACE_S = 1.0  # how long a timed-out call may take to clean up before it is abandoned
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


class _Call:
    """One venue call in flight: its deadline timer, its stalls, and whether it was given up on."""

    def __init__(self, watchdog: LoopWatchdog, venue: str, stage: str, timeout_s: float) -> None:
        self.watchdog = watchdog
        self.venue = venue
        self.stage = stage
        self.timeout_s = timeout_s
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.started = time.monotonic()
        self.held_s = 0.0  # its longest step over the threshold
        self.finished_at: float | None = None
        self.timed_out = False  # the deadline passed and the call was cancelled
        self.given_up = False  # ... and it did not end within the grace: abandon it
        self.cancels = 0  # cancellations of the caller's task issued here (taken back on the way out)
        self.timer: asyncio.TimerHandle | None = self.loop.call_at(self.loop.time() + timeout_s, self.check)

    def step(self, began: float, ended: float) -> None:
        if ended - began > self.watchdog.threshold_s:
            self.held_s = max(self.held_s, ended - began)
            self.watchdog.stalled(Stall(began, ended, self.venue))

    def check(self) -> None:
        """The deadline timer: extend it by the time others held the loop, else cancel the call."""
        now = time.monotonic()
        left = (
            self.started + self.timeout_s + self.watchdog.held_by_others(self.venue, self.started, now) - now
        )
        if left > 0:
            self.timer = self.loop.call_at(self.loop.time() + left, self.check)
            return
        self.timed_out = True
        self.cancel()
        self.timer = self.loop.call_at(self.loop.time() + self.grace_s, self.give_up)

    @property
    def grace_s(self) -> float:
        return min(MAX_CANCEL_GRACE_S, self.timeout_s)

    def give_up(self) -> None:
        self.timer = None
        self.given_up = True
        self.cancel()

    def cancel(self) -> None:
        if self.task is not None:
            self.cancels += 1
            self.task.cancel()

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        uncancel = getattr(self.task, "uncancel", None)  # Python 3.11+: outer timeouts count cancellations
        if uncancel is not None:
            for _ in range(self.cancels):
                uncancel()

    def abandon(self, steps: Any, why: str) -> None:
        """Close the venue's coroutine (never resumed again), log and count it."""
        plugin = self.watchdog.plugin_of(self.venue)
        try:
            steps.close()
            fate = "it was closed"
        except RuntimeError:  # it ignored GeneratorExit too
            fate = "it ignored being closed too, and is left unreferenced"
        log.error(
            "venue %s (plugin %s) ignored the cancellation of %s (%s); the call is abandoned (%s) "
            "and the engine moves on without it",
            self.venue,
            plugin or "unknown",
            self.stage,
            why,
            fate,
        )
        if self.watchdog.on_abandon is not None:
            self.watchdog.on_abandon(self.venue, plugin, self.stage)


@types.coroutine
def _drive(awaitable: Awaitable[T], call: _Call) -> Generator[Any, Any, T]:
    """Await ``awaitable`` as ``yield from`` would, timing each step and abandoning it when it ignores
    a cancellation: at once when the caller was cancelled (shutdown), after the grace on a timeout."""
    if not hasattr(awaitable, "__await__"):
        raise TypeError(f"a venue method returned {type(awaitable).__name__}, not an awaitable: is it async?")
    steps = awaitable.__await__()
    value: Any = None
    error: BaseException | None = None
    while True:
        began = time.monotonic()
        try:
            signal = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as answer:
            call.finished_at = time.monotonic()
            call.step(began, call.finished_at)
            return answer.value
        except BaseException:
            call.finished_at = time.monotonic()
            call.step(began, call.finished_at)
            raise
        call.step(began, time.monotonic())
        if isinstance(error, asyncio.CancelledError) and not call.timed_out:
            call.abandon(steps, "the order itself was cancelled")
            raise error
        value, error = None, None
        try:
            value = yield signal
        except GeneratorExit:
            steps.close()
            raise
        except asyncio.CancelledError as exc:
            if call.given_up:
                call.abandon(steps, f"still running {call.grace_s:g} s after its deadline")
                raise
            error = exc
        except BaseException as exc:  # noqa: BLE001 - handed to the venue, as ``yield from`` would
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

    async def _beat(self) -> None:
        interval = self.threshold_s
        while True:
            before = time.monotonic()
            await asyncio.sleep(interval)
            now = time.monotonic()
            late = now - before - interval
            if late > self.threshold_s and not any(s.ended > before for s in self.stalls if s.venue):
                self.stalled(Stall(now - late, now, None))

    def stalled(self, stall: Stall) -> None:
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
        held = 0.0
        for stall in reversed(self.stalls):  # in the order they ended: stop at the first before ``since``
            if stall.ended <= since:
                break
            if stall.venue != venue:
                held += max(0.0, min(stall.ended, until) - max(stall.started, since))
        return held

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
        call = _Call(self, venue, stage, timeout_s)
        try:
            result = await _drive(awaitable, call)
        except (Exception, asyncio.CancelledError):
            if call.timed_out:  # whatever it raised once cancelled for overrunning
                raise asyncio.TimeoutError from None
            raise
        finally:
            call.disarm()
        if reject_blocking and call.held_s:
            raise LoopHeldError(
                f"held the event loop for {call.held_s * 1000:.0f} ms in {stage} (a blocking call in an "
                "async method?); its answer was discarded"
            )
        finished = call.finished_at if call.finished_at is not None else time.monotonic()
        if call.timed_out or finished - call.started - self.held_by_others(venue, call.started, finished) > (
            timeout_s
        ):
            raise asyncio.TimeoutError  # its answer came, but late by its own doing
        return result
