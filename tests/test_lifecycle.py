"""bot.lifecycle: stop signals, start-up retries with backoff, work interrupted by a stop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import pytest

from bot.lifecycle import Backoff, Stopped, retry_until_up, stop_on_signals, until_stopped, within

FAST = Backoff(first=0.01, factor=2.0, cap=0.04)


def network_down(exc: BaseException) -> str | None:
    return str(exc) if isinstance(exc, ConnectionError) else None


class Flaky:
    """Fails with ConnectionRefusedError ``failures`` times, then answers "up"."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionRefusedError(f"refused #{self.calls}")
        return "up"


def test_backoff_grows_by_its_factor_up_to_its_cap() -> None:
    delays = Backoff(first=1, factor=2, cap=10).delays()
    assert [next(delays) for _ in range(6)] == [1, 2, 4, 8, 10, 10]


async def test_until_stopped_returns_what_the_work_returns() -> None:
    assert await until_stopped(asyncio.sleep(0, "done"), asyncio.Event()) == "done"


async def test_until_stopped_cancels_the_work_when_a_stop_comes_first() -> None:
    stop = asyncio.Event()
    work = asyncio.ensure_future(asyncio.sleep(60))
    asyncio.get_running_loop().call_later(0.05, stop.set)
    with pytest.raises(Stopped):
        await until_stopped(work, stop)
    assert work.cancelled()


async def test_until_stopped_does_not_start_waiting_once_a_stop_was_asked_for() -> None:
    stop = asyncio.Event()
    stop.set()
    started = time.monotonic()
    with pytest.raises(Stopped):
        await until_stopped(asyncio.sleep(60), stop)
    assert time.monotonic() - started < 1


async def test_within_gives_up_on_work_that_takes_too_long() -> None:
    assert await within(asyncio.sleep(0), 1) is True
    assert await within(asyncio.sleep(60), 0.05) is False


async def test_transient_failures_are_retried_until_the_attempt_succeeds() -> None:
    flaky = Flaky(failures=3)
    result = await retry_until_up(flaky, transient=network_down, stop=asyncio.Event(), what="cannot reach X",
                                  attempt_timeout=5, backoff=FAST)
    assert (result, flaky.calls) == ("up", 4)


async def test_each_failed_attempt_is_logged_once_with_its_reason_and_next_delay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.lifecycle"):
        await retry_until_up(Flaky(failures=2), transient=network_down, stop=asyncio.Event(), what="cannot reach X",
                             attempt_timeout=5, backoff=FAST)
    assert caplog.messages == [
        "cannot reach X: refused #1; attempt 1, retrying in 0.01 s",
        "cannot reach X: refused #2; attempt 2, retrying in 0.02 s",
    ]


async def test_a_failure_that_is_not_transient_is_raised_at_once() -> None:
    calls = 0

    async def refused_token() -> None:
        nonlocal calls
        calls += 1
        raise PermissionError("401: Unauthorized")

    with pytest.raises(PermissionError):
        await retry_until_up(refused_token, transient=network_down, stop=asyncio.Event(), what="x",
                             attempt_timeout=5, backoff=FAST)
    assert calls == 1


async def test_an_attempt_that_never_answers_counts_as_transient(caplog: pytest.LogCaptureFixture) -> None:
    answered = asyncio.Event()
    calls = 0

    async def hangs_once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await answered.wait()
        return "up"

    with caplog.at_level(logging.WARNING, logger="bot.lifecycle"):
        result = await retry_until_up(hangs_once, transient=network_down, stop=asyncio.Event(), what="x",
                                      attempt_timeout=0.05, backoff=FAST)
    assert result == "up"
    assert "x: no answer within 0.05 s; attempt 1" in caplog.text


async def test_tidy_up_runs_after_each_failed_attempt() -> None:
    tidied = 0

    async def tidy() -> None:
        nonlocal tidied
        tidied += 1

    await retry_until_up(Flaky(failures=2), transient=network_down, stop=asyncio.Event(), what="x",
                         attempt_timeout=5, backoff=FAST, after_failure=tidy)
    assert tidied == 2


async def test_a_stop_ends_the_wait_between_attempts_at_once() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, stop.set)
    started = time.monotonic()
    with pytest.raises(Stopped):
        await retry_until_up(Flaky(failures=1000), transient=network_down, stop=stop, what="x",
                             attempt_timeout=5, backoff=Backoff(first=60))
    assert time.monotonic() - started < 1


async def test_sigterm_sets_the_stop_event_while_the_handlers_are_installed() -> None:
    stop = asyncio.Event()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 2)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
