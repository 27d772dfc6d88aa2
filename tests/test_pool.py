"""The pool's routing, stickiness, fail-over and health checks, with scripted members."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bot.backends.base import GenerationRequest
from bot.backends.pool import PoolBackend
from bot.errors import BackendProtocolError, BackendUnavailable, ContextOverflow
from tests.fakes.backend import FlakyBackend
from tests.fakes.streams import collect, reply


def members(count: int, **fields: object) -> list[FlakyBackend]:
    return [FlakyBackend(name=f"m{i}", pieces=[f"from m{i}"], **fields) for i in range(count)]  # type: ignore[arg-type]


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., PoolBackend]]:
    pools: list[PoolBackend] = []

    def make(backends: list[FlakyBackend], interval: float = 60.0) -> PoolBackend:
        pool = PoolBackend(backends, health_interval=interval)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.aclose()


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def test_request_goes_to_the_least_busy_healthy_member(make_pool):
    a, b = members(2, delay=0.05)
    pool = make_pool([a, b])
    slow = pool.stream(GenerationRequest(prompt="first"))
    await anext(slow)  # a is now busy with the first request

    text, _ = await reply(pool)
    await slow.aclose()

    assert text == "from m1"


async def test_a_conversation_sticks_to_the_member_that_served_it(make_pool):
    a, b = members(2)
    pool = make_pool([a, b])

    first, _ = await reply(pool, conversation="chan-1")
    await reply(pool)  # someone else's request in between
    again, _ = await reply(pool, conversation="chan-1")

    assert again == first


async def test_stickiness_ends_when_the_member_goes_down(make_pool):
    a, b = members(2)
    pool = make_pool([a, b])
    first, _ = await reply(pool, conversation="chan-1")
    served_first = a if first == "from m0" else b
    served_first.healthy = False
    await pool._check_all()  # noqa: SLF001 - run one health round now instead of waiting for it

    again, _ = await reply(pool, conversation="chan-1")

    assert again != first


async def test_failure_before_text_fails_over_and_marks_the_member_down(make_pool):
    a, b = members(2)
    a.fail = BackendUnavailable("connection refused")
    pool = make_pool([a, b])

    text, _ = await reply(pool)

    assert text == "from m1"
    assert pool.member_states()[0]["state"] == "down"
    assert "connection refused" in pool.member_states()[0]["last_error"]


async def test_failure_after_text_is_raised_and_never_answered_twice(make_pool):
    a, b = members(2)
    a.pieces = ["part one", " part two"]
    a.fail_after = 1
    pool = make_pool([a, b])
    seen: list[str] = []

    with pytest.raises(BackendProtocolError):
        async for chunk in pool.stream(GenerationRequest(prompt="hi")):
            seen.append(chunk.text)

    assert seen == ["part one"]
    assert b.requests == []
    assert pool.member_states()[0]["state"] == "down"


async def test_request_errors_are_raised_without_trying_other_members(make_pool):
    a, b = members(2)
    a.fail = ContextOverflow("prompt too long")
    pool = make_pool([a, b])

    with pytest.raises(ContextOverflow):
        await reply(pool)

    assert b.requests == []
    assert pool.member_states()[0]["state"] == "up"


async def test_every_member_failing_raises_unavailable(make_pool):
    backends = members(3)
    for backend in backends:
        backend.fail = BackendUnavailable("down")
    pool = make_pool(backends)

    with pytest.raises(BackendUnavailable, match="no pool member could answer"):
        await reply(pool)

    assert all(len(backend.requests) == 1 for backend in backends)


async def test_a_member_down_at_start_is_not_asked_while_others_are_up(make_pool):
    a, b, c = members(3)
    a.healthy = False
    pool = make_pool([a, b, c])

    for _ in range(4):
        await reply(pool)

    assert a.requests == []
    assert len(b.requests) + len(c.requests) == 4


async def test_requests_spread_over_idle_members(make_pool):
    a, b = members(2)
    pool = make_pool([a, b])

    for _ in range(4):
        await reply(pool)

    assert (len(a.requests), len(b.requests)) == (2, 2)


async def test_background_health_check_brings_a_member_back(make_pool):
    a, b = members(2)
    a.healthy = False
    pool = make_pool([a, b], interval=0.02)
    await pool.health()
    assert pool.member_states()[0]["state"] == "down"

    a.healthy = True
    await wait_for(lambda: pool.member_states()[0]["state"] == "up")


async def test_aclose_stops_health_checks_and_closes_members(make_pool):
    a, b = members(2)
    pool = PoolBackend([a, b], health_interval=0.01)
    await pool.health()
    checker = pool._checker  # noqa: SLF001

    await pool.aclose()

    assert checker is not None and checker.done()
    assert a.closed and b.closed


async def test_health_is_ok_while_any_member_is_and_lists_them(make_pool):
    a, b = members(2)
    a.healthy = False
    pool = make_pool([a, b])

    health = await pool.health()

    assert health.ok
    assert "1/2 members up" in health.detail and "m0: down" in health.detail


async def test_health_is_not_ok_when_every_member_is_down(make_pool):
    backends = members(2, healthy=False)
    pool = make_pool(backends)

    assert not (await pool.health()).ok


async def test_context_size_is_the_smallest_healthy_members(make_pool):
    a, b, c = members(3)
    a.n_ctx, b.n_ctx, c.n_ctx = 8192, 4096, 1024
    c.healthy = False
    pool = make_pool([a, b, c])

    assert await pool.context_size() == 4096


async def test_member_states_count_what_each_member_served(make_pool):
    a, b = members(2)
    pool = make_pool([a, b])
    await reply(pool, conversation="x")
    await reply(pool, conversation="x")

    states = pool.member_states()

    assert [s["served"] for s in states] in ([2, 0], [0, 2])
    assert {s["name"] for s in states} == {"m0", "m1"}
    assert all(s["model"] == "flaky-model" for s in states)


async def test_abort_reaches_the_member_running_the_conversation(make_pool):
    a, b = members(2, delay=0.05)
    pool = make_pool([a, b])
    stream = pool.stream(GenerationRequest(prompt="hi", conversation="chan-9"))
    await anext(stream)
    running = a if a.running else b

    await pool.abort("chan-9")
    await stream.aclose()

    assert running.aborted == ["chan-9"]
    assert (b if running is a else a).aborted == []


async def test_count_tokens_uses_a_healthy_member(make_pool):
    a, b = members(2)
    a.healthy = False
    pool = make_pool([a, b])

    assert await pool.count_tokens(["one two three"]) == [3]


async def test_closing_the_pool_stream_early_closes_the_members_stream(make_pool):
    (a,) = members(1, delay=0.01)
    a.pieces = ["x"] * 50
    pool = make_pool([a])
    stream = pool.stream(GenerationRequest(prompt="hi"))
    await anext(stream)

    await stream.aclose()

    assert a.closed_early == 1
    assert pool.member_states()[0]["busy"] == 0


async def test_collecting_a_reply_yields_exactly_one_final_chunk(make_pool):
    pool = make_pool(members(3))

    text, final = await collect(pool.stream(GenerationRequest(prompt="hi")))

    assert text.startswith("from m") and final.done


async def test_conversation_sticks_even_when_the_caller_stops_at_a_stop_string(make_pool) -> None:
    from bot.testing import ScriptedBackend
    from bot.cards.model import Character
    from bot.chat import ChatService
    from bot.config import parse_config
    from bot.prompt.types import Turn

    first = ScriptedBackend([["Hi.\n[Bob]: more"]])
    second = ScriptedBackend([["Hi.\n[Bob]: more"]])
    first.name, second.name = "a", "b"
    pool = PoolBackend([first, second], health_interval=60)
    try:
        chat = ChatService(pool, parse_config({}))  # it stops reading at the stop string
        turns: list[Turn] = []
        for n in range(3):
            turns.append(Turn("Bob", f"hello {n}", str(n)))
            assert await (await chat.reply(Character(name="Aria"), turns, conversation="room")).collect() == "Hi."
        served = {m["name"]: m["served"] for m in pool.member_states()}
    finally:
        await pool.aclose()
    assert sorted(served.values()) == [0, 3]
    assert sorted([len(first.requests), len(second.requests)]) == [0, 3]
