"""Starting and stopping a long-running service: stop signals, start-up retries, bounded waits.

Plain asyncio, nothing Discord-specific: ``bot/app.py`` says what counts as "not
reachable yet" and what to do between attempts. A stop (SIGTERM, Ctrl-C) interrupts
whatever is being awaited, so the process ends in seconds whatever it was doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Stopped", "Backoff", "stop_on_signals", "until_stopped", "retry_until_up", "within"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds a cancelled piece of work gets to unwind before it is left behind
_UNWIND = 2.0


class Stopped(Exception):
    """A stop was asked for before the awaited work finished (the work was cancelled)."""


@dataclass(frozen=True)
class Backoff:
    """Growing delays between attempts: first, first*factor, ... never above cap (seconds)."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 30.0

    def delays(self) -> Iterator[float]:
        """The delays, forever."""
        delay = self.first
        while True:
            yield min(delay, self.cap)
            delay *= self.factor


@contextlib.contextmanager
def stop_on_signals(
    stop: asyncio.Event, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
) -> Iterator[None]:
    """Set ``stop`` when one of ``signals`` arrives, for as long as the block runs."""
    loop = asyncio.get_running_loop()
    installed = []
    try:
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def until_stopped(work: Awaitable[T], stop: asyncio.Event) -> T:
    """The result of ``work``; if ``stop`` is set first, ``work`` is cancelled and Stopped raised."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=_UNWIND)
    if task.cancelled() and stop.is_set():
        raise Stopped
    return task.result()


async def within(work: Awaitable[object], seconds: float) -> bool:
    """Await ``work`` for at most ``seconds`` (then cancel it); True if it finished in time."""
    try:
        await asyncio.wait_for(work, seconds)
    except asyncio.TimeoutError:
        return False
    return True


async def retry_until_up(
    attempt: Callable[[], Awaitable[T]],
    *,
    transient: Callable[[BaseException], str | None],
    stop: asyncio.Event,
    what: str,
    attempt_timeout: float,
    backoff: Backoff = Backoff(),
    after_failure: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """Call ``attempt`` until it succeeds, waiting longer after each transient failure.

    ``transient(exc)`` gives a short reason for a failure worth retrying (no network yet,
    the server is down) or None for one that is not (it is raised at once). An attempt
    that takes longer than ``attempt_timeout`` seconds counts as transient. Each failed
    attempt is logged once, as ``WHAT: REASON; attempt N, retrying in D s``;
    ``after_failure`` tidies up between attempts. Raises Stopped once ``stop`` is set.
    """
    delays = backoff.delays()
    for number in itertools.count(1):
        try:
            return await until_stopped(asyncio.wait_for(attempt(), attempt_timeout), stop)
        except Stopped:
            raise
        except asyncio.TimeoutError as exc:
            reason = transient(exc) if exc.args else f"no answer within {attempt_timeout:g} s"
            if reason is None:
                raise
        except Exception as exc:
            reason = transient(exc)
            if reason is None:
                raise
        if after_failure is not None:
            await after_failure()
        delay = next(delays)
        log.warning("%s: %s; attempt %d, retrying in %g s", what, reason, number, delay)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            raise Stopped
    raise AssertionError("unreachable")  # itertools.count never ends
