"""Recall of older talk, end to end below Discord: messages seen go into the store (SQLite and a
real PostgreSQL: ``store_url``), a reply's prompt recalls what lies outside its window, after
the fence, from people who did not ask to be forgotten."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from test_chat_service import ARIA

from bot.chat import ChatService
from bot.config import Config, parse_config
from bot.conversations import Conversations
from bot.memory import Memory
from bot.prompt.builder import RECALL_HEADING
from bot.prompt.types import Turn
from bot.store import Remembered, Store, open_store
from bot.testing import ScriptedBackend

CHANNEL = "987654321098765432"
ALICE, BOB, CLEO = 1, 2, 3
NAMES = {ALICE: "Alice", BOB: "Bob", CLEO: "Cleo"}
FIRST_ID = 10_000
FACT = "My sister Marguerite lives in Lisbon with three parrots."
FILLERS = ["the stew needs more salt tonight", "pass the bread over here", "that song was lovely",
           "the fire is warm", "a storm is coming from the hills"]


@dataclass
class Bot:
    store: Store
    conversations: Conversations
    memory: Memory
    service: ChatService
    backend: ScriptedBackend


@asynccontextmanager
async def running(store_url: str, **config: object) -> AsyncIterator[Bot]:
    """The pieces the Discord bot wires, on the store at ``store_url``."""
    settings: Config = parse_config({"prompt": {"history_messages": 30}, **config})
    async with open_store(store_url) as store:
        conversations = Conversations(None, store)
        memory = Memory(store, lambda: settings.memory)
        backend = ScriptedBackend([["Mm."]])
        yield Bot(store, conversations, memory, ChatService(backend, settings, conversations, memory), backend)
        await memory.settle()


def message(index: int, text: str, author: int = BOB) -> Remembered:
    return Remembered(FIRST_ID + index, int(CHANNEL), author, NAMES[author], text, 1_700_000_000 + index)


def long_talk(count: int = 420, fact_at: int = 10) -> list[Remembered]:
    """``count`` messages; Alice says the fact at ``fact_at``, everyone else talks of other things."""
    return [message(i, FACT, ALICE) if i == fact_at else message(i, f"{FILLERS[i % len(FILLERS)]} ({i})",
                                                                 (BOB, CLEO)[i % 2]) for i in range(count)]


async def seen(bot: Bot, messages: list[Remembered]) -> None:
    bot.memory.observe(await bot.conversations.get(CHANNEL), messages)
    await bot.memory.settle()


async def ask(bot: Bot, talk: list[Remembered], text: str, author: int = CLEO) -> str:
    """The prompt of the reply to ``text``, with the last 60 messages as history (as Discord reads)."""
    asking = message(len(talk) + 1, text, author)
    turns = [Turn(m.speaker, m.text, str(m.message_id)) for m in [*talk[-60:], asking]]
    reply = await bot.service.reply(ARIA, turns, conversation=CHANNEL)
    await reply.collect()
    return bot.backend.requests[-1].prompt


async def test_a_fact_said_400_messages_earlier_is_recalled_when_asked_about(store_url: str) -> None:
    async with running(store_url) as bot:
        talk = long_talk()
        await seen(bot, talk)
        prompt = await ask(bot, talk, "Aria, where does Alice's sister live?")
    assert f"- Alice: {FACT}" in prompt
    assert prompt.index(RECALL_HEADING) < prompt.index("[Cleo]: Aria, where does Alice")


async def test_nothing_is_recalled_when_the_question_is_about_something_else(store_url: str) -> None:
    async with running(store_url) as bot:
        talk = long_talk()
        await seen(bot, talk)
        prompt = await ask(bot, talk, "Aria, what should we cook for dinner tomorrow?")
    assert RECALL_HEADING not in prompt and "Marguerite" not in prompt


async def test_messages_inside_the_window_are_not_recalled_again(store_url: str) -> None:
    async with running(store_url) as bot:
        talk = long_talk(fact_at=415)
        await seen(bot, talk)
        prompt = await ask(bot, talk, "Aria, where does Alice's sister live?")
    assert RECALL_HEADING not in prompt and prompt.count(FACT) == 1  # once, as history


async def test_a_deleted_message_is_never_recalled(store_url: str) -> None:
    async with running(store_url) as bot:
        talk = long_talk()
        await seen(bot, talk)
        bot.memory.deleted([FIRST_ID + 10])
        prompt = await ask(bot, talk, "Aria, where does Alice's sister live?")
    assert "Marguerite" not in prompt


async def test_an_edit_is_what_is_recalled(store_url: str) -> None:
    async with running(store_url) as bot:
        talk = long_talk()
        await seen(bot, talk)
        bot.memory.edited(FIRST_ID + 10, "My sister Marguerite lives in Porto now.")
        prompt = await ask(bot, talk, "Aria, where does Alice's sister live?")
    assert "Porto" in prompt and "Lisbon" not in prompt


async def test_nothing_before_a_reset_fence_is_recalled(store_url: str) -> None:
    async with running(store_url) as bot:
        talk = long_talk()
        await seen(bot, talk)
        await bot.conversations.reset(CHANNEL, FIRST_ID + 100)
        prompt = await ask(bot, talk, "Aria, where does Alice's sister live?")
        assert (await bot.memory.count(await bot.conversations.get(CHANNEL))).messages == len(talk) - 101
    assert "Marguerite" not in prompt


async def test_after_forget_me_nothing_of_that_person_is_recalled(store_url: str) -> None:
    async with running(store_url) as bot:
        talk = long_talk()
        await seen(bot, talk)
        assert await bot.memory.forget_author(ALICE) == {int(CHANNEL): 1}
        prompt = await ask(bot, talk, "Aria, where does Alice's sister live?")
    assert "Marguerite" not in prompt


async def test_memory_survives_a_restart(store_url: str) -> None:
    talk = long_talk()
    async with running(store_url) as bot:
        await seen(bot, talk)
    async with running(store_url) as bot:
        prompt = await ask(bot, talk, "Aria, where does Alice's sister live?")
    assert "Marguerite" in prompt


async def test_a_channel_with_memory_off_keeps_and_recalls_nothing(store_url: str) -> None:
    async with running(store_url) as bot:
        talk = long_talk()
        await seen(bot, talk)
        await bot.conversations.set_memory(CHANNEL, False)
        await seen(bot, [message(500, FACT, ALICE)])
        prompt = await ask(bot, talk, "Aria, where does Alice's sister live?")
        assert (await bot.memory.count(await bot.conversations.get(CHANNEL))).messages == 0
    assert "Marguerite" not in prompt


async def test_memory_disabled_in_the_config_recalls_nothing(store_url: str) -> None:
    async with running(store_url, memory={"enabled": False}) as bot:
        talk = long_talk()
        await seen(bot, talk)
        prompt = await ask(bot, talk, "Aria, where does Alice's sister live?")
    assert "Marguerite" not in prompt


async def test_messages_older_than_keep_days_are_pruned(store_url: str) -> None:
    async with running(store_url, memory={"keep_days": 30}) as bot:
        talk = long_talk()
        await seen(bot, talk)
        assert await bot.memory.prune(now=1_700_000_000 + 30 * 86_400 + 200) == 200
        prompt = await ask(bot, talk, "Aria, where does Alice's sister live?")
    assert "Marguerite" not in prompt
