"""How late the event loop runs: a timer that should fire every ``interval`` seconds,
and how much later than that it actually ran.

A loop that is blocked (a long synchronous call, a big garbage collection) runs its
timers late by about as long as it was blocked, so the lateness is the loop's lag. On a
busy machine a timer is also late when the process simply did not get a CPU, so each
measurement also says how much of the lateness the process spent running
(``own``: its CPU time, all threads, in that tick beyond the tick itself): lag with little ``own`` is
the machine's, lag that is all ``own`` is the program's.

:class:`LoopLag` keeps the largest lag since start and since the last look, for a
metrics endpoint or a log; :func:`start_lag_log` writes one line a second to the file
named by ``TROUPE_LAG_LOG`` (the soak in ``bench/soak.py`` reads it):
``<unix time> <largest lag, ms> <largest own lag, ms> <longest garbage collection, ms>``, each
the worst within that second (a collection of the oldest generation walks every object the
program keeps, so its pauses grow with what it keeps).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["LoopLag", "LAG_LOG_ENV", "start_lag_log"]

#: the environment variable naming the file :func:`start_lag_log` appends to
LAG_LOG_ENV = "TROUPE_LAG_LOG"

_running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


class LoopLag:
    """Measures the event loop's lag with a timer every ``interval`` seconds (run :meth:`run` as a task)."""

    def __init__(self, interval: float = 0.02, *, observe: Callable[[float], None] | None = None) -> None:
        self.interval = interval
        self._observe = observe  # also told each lag measured (seconds), e.g. a metrics histogram
        self.worst = 0.0  # seconds, since start
        self.worst_at: float | None = None  # time.time() of the worst
        self.worst_own = 0.0  # seconds of lag the loop's own work explains, since start
        self._window = 0.0
        self._window_own = 0.0
        self.worst_gc = 0.0  # seconds: the longest garbage collection while running
        self._window_gc = 0.0
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            pause = time.perf_counter() - self._gc_started
            self.worst_gc = max(self.worst_gc, pause)
            self._window_gc = max(self._window_gc, pause)

    def take_gc_window(self) -> float:
        """The longest garbage collection since the last call (seconds)."""
        window, self._window_gc = self._window_gc, 0.0
        return window

    def record(self, lag: float, own: float = 0.0) -> None:
        """Count one measured lag and the part of it the loop's thread spent running (seconds)."""
        lag = max(0.0, lag)
        own = min(max(0.0, own), lag)
        if self._observe is not None:
            self._observe(lag)
        if lag > self.worst:
            self.worst, self.worst_at = lag, time.time()
        self.worst_own = max(self.worst_own, own)
        self._window = max(self._window, lag)
        self._window_own = max(self._window_own, own)

    def take_window(self) -> tuple[float, float]:
        """The largest lag and the largest own lag since the last call (seconds); starts a new window."""
        window = (self._window, self._window_own)
        self._window = self._window_own = 0.0
        return window

    async def run(self) -> None:
        """Measure until cancelled (garbage collections too, meanwhile)."""
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                started, cpu = time.perf_counter(), time.process_time()
                await asyncio.sleep(self.interval)
                lag = time.perf_counter() - started - self.interval
                self.record(lag, time.process_time() - cpu - self.interval)
        finally:
            gc.callbacks.remove(self._on_gc)


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(line)


async def _log_every_second(lag: LoopLag, path: Path) -> None:
    measuring = asyncio.create_task(lag.run())
    try:
        while True:
            await asyncio.sleep(1.0)
            worst, own = lag.take_window()
            line = f"{time.time():.3f} {worst * 1000:.1f} {own * 1000:.1f} {lag.take_gc_window() * 1000:.1f}\n"
            await asyncio.to_thread(_append, path, line)  # file I/O stays off the loop
    finally:
        measuring.cancel()


def start_lag_log(environ: dict[str, str] | os._Environ[str] = os.environ) -> LoopLag | None:
    """If ``TROUPE_LAG_LOG`` names a file, measure the running loop's lag and append a line a
    second to it until the loop ends; returns the monitor (None when the variable is unset)."""
    target = environ.get(LAG_LOG_ENV, "").strip()
    if not target:
        return None
    lag = LoopLag()
    task = asyncio.get_running_loop().create_task(_log_every_second(lag, Path(target)))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return lag
