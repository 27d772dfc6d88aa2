"""A pool of three llama.cpp servers (fakes on real sockets): one is down from the
start, one dies in the middle of a request and comes back. Every request is
answered, and none twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.backends.base import GenerationRequest
from bot.backends.llama_server import LlamaServerBackend
from bot.backends.pool import PoolBackend
from bot.config import LlamaServerConfig
from tests.fakes.llama_server import FakeLlamaServer
from tests.fakes.server import Misbehaviour, closed_port_url
from tests.fakes.streams import collect

ANSWER = "Hello there, friend."


def member(url: str) -> LlamaServerBackend:
    return LlamaServerBackend(LlamaServerConfig(type="llama_server", url=url, retries=0, read_timeout=10))


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def ask(pool: PoolBackend, n: int) -> str:
    text, _ = await collect(pool.stream(GenerationRequest(prompt=f"[Ann]: question {n}\n[Bot]:")))
    return text


async def test_every_request_is_answered_exactly_once_while_members_fail_and_return():
    dead_url = closed_port_url()
    async with FakeLlamaServer() as dying, FakeLlamaServer() as steady:
        pool = PoolBackend([member(dead_url), member(dying.url), member(steady.url)], health_interval=0.05)
        try:
            # the first request lands on the dying server, which accepts it and then dies
            dying.misbehave = Misbehaviour.HANG
            doomed = asyncio.create_task(ask(pool, 0))
            await wait_for(lambda: bool(dying.bodies("/completion")))
            others = [asyncio.create_task(ask(pool, n)) for n in (1, 2)]  # arrive while it hangs
            await asyncio.sleep(0.05)
            await dying.stop()
            answers = await asyncio.wait_for(asyncio.gather(doomed, *others), 10)
            assert [s["state"] for s in pool.member_states()] == ["down", "down", "up"]

            # it comes back on the same port; the health checks notice
            dying.misbehave = Misbehaviour.NONE
            await dying.start()
            await wait_for(lambda: pool.member_states()[1]["state"] == "up")
            answers += [await ask(pool, n) for n in range(3, 7)]
            states = pool.member_states()
        finally:
            await pool.aclose()

    assert answers == [ANSWER] * 7
    assert dying.completed + steady.completed == 7  # nothing was generated twice
    assert dying.completed >= 1  # it took work again once it was back
    assert states[0]["state"] == "down" and states[0]["served"] == 0
    assert states[1]["failures"] >= 1  # marked down when it died


async def test_read_ahead_goes_to_the_server_that_holds_the_conversation():
    async with FakeLlamaServer() as first, FakeLlamaServer() as second:
        pool = PoolBackend([member(first.url), member(second.url)])
        try:
            assert await pool.prewarm("chan-1", "[Ann]: hi\n") == 0  # nobody holds it yet
            await collect(pool.stream(GenerationRequest(prompt="[Ann]: hi\n[Bot]:", conversation="chan-1")))
            holder, other = (first, second) if first.bodies("/completion") else (second, first)
            assert await pool.prewarm("chan-1", "[Ann]: hi\n[Bot]: Hello there, friend.\n[Cid]: and then?\n") > 0
            assert len(holder.bodies("/completion")) == 2 and other.bodies("/completion") == []
        finally:
            await pool.aclose()
