"""On a server that cannot shift its cache, the ChatService slides a quiet conversation's
window ahead of the next message and reads the new window then, so the reply after a
slide reads only its own message (issue 16). Against llama.cpp's real server, and the
decision itself against the strict fake (which can be told whether it shifts)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.backends.llama_server import LlamaServerBackend
from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import parse_config
from bot.prompt.types import Turn
from llama_server_real import LlamaServerProcess
from tests.fakes.llama_server import FakeLlamaServer
from tests.fakes.streams import http_backend

ARIA = Character(
    name="Aria",
    description="Aria runs the Copper Kettle tavern; warm, quick-witted, teases regulars.",
    scenario="Evening at the Copper Kettle.",
)
#: a small window that slides by half: every few mention-and-answer pairs
PROMPT = {"history_messages": 8, "drop_fraction": 0.5, "max_reply_tokens": 3}


def chat_service(url: str) -> ChatService:
    config = parse_config({
        "backend": {"type": "llama_server", "url": url, "retries": 0, "cache_reuse": 32},
        "prompt": PROMPT,
        "sampling": {"preset": "greedy"},
    })
    backend = http_backend("llama_server", url, retries=0, cache_reuse=32)
    return ChatService(backend, config)


def mention(n: int) -> Turn:
    return Turn("Mira", f"Aria, question number {n}: what is on the menu tonight?", id=str(2 * n))


async def mention_chat(service: ChatService, pairs: int) -> list[tuple[int, int, int]]:
    """``pairs`` mentions, each answered, the bot reading ahead in the quiet after each answer.
    Returns (tokens read, floor, window start) per reply."""
    turns: list[Turn] = []
    costs = []
    for n in range(pairs):
        turns.append(mention(n))
        reply = await service.reply(ARIA, turns, conversation="tavern")
        said = (await reply.collect()) or "Hm."
        prompt = reply.prompt.text
        [floor] = await service.backend.count_tokens([prompt[prompt.rindex("[Mira]:"):]])
        assert reply.stats.timings is not None
        costs.append((reply.stats.timings.prompt_evaluated or 0, floor, reply.stats.turns_dropped))
        turns.append(Turn("Aria", said, id=str(2 * n + 1), role="character"))
        await service.read_ahead(ARIA, turns, conversation="tavern")
    return costs


@pytest.fixture
async def plain(llama_server: LlamaServerProcess) -> AsyncIterator[ChatService]:
    service = chat_service(llama_server.url)
    yield service
    await service.backend.aclose()  # type: ignore[attr-defined]


@pytest.mark.model
async def test_on_a_server_that_cannot_shift_the_reply_after_a_slide_reads_only_its_message(plain):
    costs = await mention_chat(plain, 6)  # the window (8 turns, sliding by half) slides at the fifth reply

    slid = [i for i in range(1, len(costs)) if costs[i][2] > costs[i - 1][2]]
    assert slid, f"the window never slid: {costs}"
    for i in slid:
        read, floor, _ = costs[i]
        assert read <= 1.5 * floor, f"reply {i} after a slide read {read} tokens, floor {floor}: {costs}"


# --------------------------------------------------------------------------- the decision (fake server)


async def anchor(service: ChatService) -> str | None:
    """Where the conversation's window starts now."""
    return (await service.conversations.get("tavern")).anchor


def full_window() -> list[Turn]:
    """Eight turns: the window (history_messages 8) is full, so one more message slides it."""
    turns = []
    for n in range(4):
        turns += [mention(n), Turn("Aria", "Stew and bread.", id=str(2 * n + 1), role="character")]
    return turns


async def window_after_read_ahead(server: FakeLlamaServer) -> tuple[str | None, str | None]:
    service = chat_service(server.url)
    try:
        turns = full_window()
        await (await service.reply(ARIA, turns[:-1], conversation="tavern")).collect()
        before = await anchor(service)
        await service.read_ahead(ARIA, turns, conversation="tavern")
        return before, await anchor(service)
    finally:
        await service.backend.aclose()  # type: ignore[attr-defined]


async def test_read_ahead_slides_a_full_window_early_where_the_server_cannot_shift():
    async with FakeLlamaServer(can_shift=False) as server:
        before, after = await window_after_read_ahead(server)
        read = server.bodies("/completion")[-1]["prompt"]

    assert after != before
    assert mention(0).text not in read and mention(3).text in read  # the slid window was read ahead


async def test_read_ahead_leaves_the_window_alone_where_the_server_shifts():
    async with FakeLlamaServer(can_shift=True) as server:
        before, after = await window_after_read_ahead(server)

    assert after == before


async def test_a_window_with_room_for_the_next_message_is_not_slid_early():
    async with FakeLlamaServer(can_shift=False) as server:
        service = chat_service(server.url)
        try:
            turns = full_window()[:4]
            await (await service.reply(ARIA, turns[:-1], conversation="tavern")).collect()
            before = await anchor(service)
            await service.read_ahead(ARIA, turns, conversation="tavern")
            after = await anchor(service)
        finally:
            await service.backend.aclose()  # type: ignore[attr-defined]

    assert after == before


def test_a_backend_that_cannot_shift_says_so_only_after_its_probe() -> None:
    backend = http_backend("llama_server", "http://127.0.0.1:9", cache_reuse=32)

    assert isinstance(backend, LlamaServerBackend) and backend.shifts_cache("any")
