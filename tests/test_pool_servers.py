"""Pools of llama.cpp servers. Two real ``llama-server`` members (one killed: the other answers;
read-ahead lands on the member that holds the conversation), and three fakes on real sockets
for what a real server cannot do on cue: one is down from the start, one hangs on a request,
dies and comes back. Every request is answered, and none twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from bot.backends.base import GenerationRequest, Sampling
from bot.backends.llama_server import LlamaServerBackend
from bot.backends.pool import PoolBackend
from bot.config import LlamaServerConfig
from llama_server_real import LlamaServerProcess
from tests.fakes.llama_server import FakeLlamaServer
from tests.fakes.server import Misbehaviour, closed_port_url
from tests.fakes.streams import collect

ANSWER = "Hello there, friend."


def member(url: str) -> LlamaServerBackend:
    # no shift probe (cache_reuse 0): this test is about fail-over, and a probe would be one more request
    return LlamaServerBackend(
        LlamaServerConfig(type="llama_server", url=url, retries=0, read_timeout=10, cache_reuse=0)
    )


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
            assert [s["state"] for s in pool.member_states()] == ["down", "down", "up"], pool.member_states()

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


@pytest.mark.model
async def test_a_pool_of_two_real_servers_answers_through_the_other_when_one_is_killed(
    llama_server: LlamaServerProcess, start_llama_server: Callable[..., LlamaServerProcess]
):
    doomed = start_llama_server()
    pool = PoolBackend([real_member(doomed.url), real_member(llama_server.url)], health_interval=0.5)
    try:
        assert await ask_real(pool, 0)  # both are up
        doomed.kill()
        answers = [await ask_real(pool, n) for n in (1, 2, 3)]
        states = pool.member_states()
    finally:
        await pool.aclose()

    assert all(answers)
    assert states[0]["state"] == "down" and states[1]["state"] == "up"
    assert states[1]["served"] >= 3


@pytest.mark.model
async def test_read_ahead_through_a_real_pool_lands_on_the_member_that_holds_the_conversation(
    llama_server: LlamaServerProcess, llama_server_shifting: LlamaServerProcess
):
    pool = PoolBackend([real_member(llama_server.url), real_member(llama_server_shifting.url)])
    opening = f"[Note]: pool read-ahead {time.monotonic_ns()}\n[Ann]: hi, who is singing tonight?\n[Bot]:"
    try:
        assert await pool.prewarm("chan-1", opening) == 0  # nobody holds it yet
        said, _ = await collect(pool.stream(request(opening, "chan-1")))
        history = opening + said + "\n[Cid]: and who plays the fiddle?\n[Ann]: the miller's daughter.\n"
        read = await pool.prewarm("chan-1", history)
        _, final = await collect(pool.stream(request(history + MENTION, "chan-1")))
        [floor] = await pool.count_tokens([MENTION])
    finally:
        await pool.aclose()

    assert read > 0
    # only the mention and the cue were left to read (give or take the few tokens a server that
    # cannot shift re-reads from its last checkpoint): the read-ahead went where the reply went
    assert final.timings is not None and final.timings.prompt_evaluated <= floor + 8


MENTION = "[Ann]: Bot, will you sing for us?\n[Bot]:"
GREEDY = Sampling(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)


def real_member(url: str) -> LlamaServerBackend:
    """A member on a real server (no shift probe: these tests are about routing)."""
    return LlamaServerBackend(
        LlamaServerConfig(type="llama_server", url=url, retries=0, read_timeout=120, cache_reuse=0)
    )


def request(prompt: str, conversation: str | None = None) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, max_tokens=3, sampling=GREEDY, conversation=conversation)


async def ask_real(pool: PoolBackend, n: int) -> str:
    text, _ = await collect(pool.stream(request(f"[Ann]: question {n}, who sings tonight?\n[Bot]:")))
    return text
