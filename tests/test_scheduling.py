"""One generation per channel, a bounded queue, per-user cooldowns."""

from __future__ import annotations

import asyncio

from bot.scheduling import ChannelScheduler, Cooldowns


async def test_queue_beyond_its_size_is_refused() -> None:
    scheduler = ChannelScheduler(queue_size=1)
    running, waiting = scheduler.reserve(1), scheduler.reserve(1)
    assert running is not None and waiting is not None
    assert scheduler.reserve(1) is None
    assert scheduler.reserve(2) is not None  # other channels are independent


async def test_work_in_one_channel_runs_one_at_a_time_in_order() -> None:
    scheduler = ChannelScheduler(queue_size=5)
    order: list[str] = []

    async def job(name: str) -> None:
        slot = scheduler.reserve(1)
        assert slot is not None
        async with slot:
            order.append(f"start {name}")
            await asyncio.sleep(0.01)
            order.append(f"end {name}")

    await asyncio.gather(job("a"), job("b"), job("c"))
    assert order == ["start a", "end a", "start b", "end b", "start c", "end c"]


async def test_cancel_stops_the_running_job_and_frees_the_channel() -> None:
    scheduler = ChannelScheduler(queue_size=0)
    started = asyncio.Event()

    async def job() -> None:
        slot = scheduler.reserve(1)
        assert slot is not None
        async with slot:
            started.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(job())
    await started.wait()
    assert scheduler.busy(1) and scheduler.reserve(1) is None
    assert scheduler.cancel(1)
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and not scheduler.busy(1)
    assert scheduler.reserve(1) is not None
    assert not scheduler.cancel(2)


def test_cooldown_turns_away_until_it_passes() -> None:
    now = [100.0]
    cooldowns = Cooldowns(3.0, clock=lambda: now[0])
    assert cooldowns.hit(1) == 0
    now[0] += 1
    assert cooldowns.hit(1) == 2.0
    assert cooldowns.hit(2) == 0
    now[0] += 2.5
    assert cooldowns.hit(1) == 0


def test_cooldowns_remember_only_users_still_cooling_down() -> None:
    now = [100.0]
    cooldowns = Cooldowns(3.0, clock=lambda: now[0])
    for user in range(1000):
        cooldowns.hit(user)
    now[0] += 3.0
    cooldowns.hit(5000)
    assert len(cooldowns) == 1  # a weeks-long run keeps only the last few seconds' users
