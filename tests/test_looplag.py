"""bot/looplag.py: the event loop's lag, and how much of it the program's own work explains."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

from bot.looplag import LAG_LOG_ENV, LoopLag, start_lag_log


async def _measure_while(block: object) -> LoopLag:
    lag = LoopLag(interval=0.01)
    task = asyncio.create_task(lag.run())
    await asyncio.sleep(0.05)
    block()  # type: ignore[operator]
    await asyncio.sleep(0.05)
    task.cancel()
    return lag


def _spin(seconds: float) -> None:
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass


async def test_a_loop_blocked_by_its_own_work_shows_as_its_own_lag() -> None:
    lag = await _measure_while(lambda: _spin(0.3))
    assert lag.worst >= 0.25
    assert lag.worst_own >= 0.2


async def test_a_process_that_gets_no_cpu_is_late_but_not_by_its_own_doing() -> None:
    lag = await _measure_while(lambda: time.sleep(0.3))  # like a machine too busy to run it
    assert lag.worst >= 0.25
    assert lag.worst_own < 0.1


async def test_the_lag_log_gets_a_line_a_second_when_the_variable_names_a_file(tmp_path: Path) -> None:
    log = tmp_path / "lag.log"
    assert start_lag_log({}) is None
    assert start_lag_log({LAG_LOG_ENV: str(log)}) is not None
    await asyncio.sleep(1.5)
    at, worst_ms, own_ms, gc_ms = log.read_text().splitlines()[0].split()
    assert abs(float(at) - time.time()) < 5 and float(worst_ms) >= float(own_ms) >= 0 and float(gc_ms) >= 0


async def test_garbage_collections_are_timed() -> None:
    lag = await _measure_while(lambda: gc.collect())
    assert lag.worst_gc > 0
