"""Memory on Discord, end to end: the real bot and discord.py against the strict fake Discord,
a real SQLite store. What people say is kept as it arrives; a mention recalls what scrolled
out of its window; edits, deletes, /memory, /reset and /context do what they say."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord
from fakediscord.model import Message
from test_discord_commands import answered

from bot.app import TroupeBot
from bot.prompt.builder import RECALL_HEADING, SUMMARY_HEADING
from bot.store import Remembered, open_store
from bot.testing import ScriptedBackend

pytestmark = pytest.mark.discord

FACT = "my sister Marguerite lives in Lisbon"
QUESTION = "where does my sister live these days?"
FILLERS = ["the stew needs more salt", "pass the bread", "that song was lovely", "the fire is warm"]


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


def small_window(fake: FakeDiscord, tmp_path: Path, **overrides: object):  # type: ignore[no-untyped-def]
    """History of 4 messages: anything said 10 messages ago is outside the window."""
    return make_config(fake, tmp_path, prompt={"history_messages": 4, "read_ahead": False}, **overrides)


async def kept(bot: TroupeBot, world: World, count: int) -> None:
    """Wait until memory holds ``count`` messages of the channel."""
    async def held() -> int:
        await bot.memory.settle()
        return (await bot.memory.count(await bot.conversations.get(str(world.channel.id)))).messages

    for _ in range(500):
        if await held() >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"memory holds {await held()} messages, not {count}")


async def talk(fake: FakeDiscord, bot: TroupeBot, world: World) -> Message:
    """Alice says the fact, then others talk of other things for 12 messages; returns the fact."""
    fact = await fake.user_says(world.channel, world.alice, FACT)
    for i in range(12):
        await fake.user_says(world.channel, world.admin, f"{FILLERS[i % len(FILLERS)]} ({i})")
    await kept(bot, world, 13)
    return fact


async def mention_and_wait(fake: FakeDiscord, world: World, backend: ScriptedBackend, text: str) -> str:
    before = len(backend.requests)
    await fake.user_says(world.channel, world.alice, text, mention_bot=True)
    await fake.wait_for(lambda: len(backend.requests) > before)
    await fake.wait_for(lambda: len(fake.sent_by_bot(world.channel)) >= before + 1)
    return backend.requests[-1].prompt


async def test_a_fact_that_scrolled_out_of_the_window_is_recalled_when_asked_about(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Lisbon, you said."]])
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), backend) as bot:
        await talk(fake_discord, bot, world)
        prompt = await mention_and_wait(fake_discord, world, backend, QUESTION)
    assert f"- Alice: {FACT}" in prompt
    assert prompt.index(RECALL_HEADING) < prompt.index(f"[Alice]: @Aria {QUESTION}")
    assert "[Alice]: my sister" not in prompt  # not in the window itself


async def test_a_question_about_something_else_recalls_nothing(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Stew."]])
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), backend) as bot:
        await talk(fake_discord, bot, world)
        prompt = await mention_and_wait(fake_discord, world, backend, "what should we cook for dinner tomorrow?")
    assert RECALL_HEADING not in prompt and "Marguerite" not in prompt


async def test_a_deleted_message_is_never_recalled(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([["Hm?"]])
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), backend) as bot:
        fact = await talk(fake_discord, bot, world)
        await fake_discord.delete_message(fact)
        prompt = await mention_and_wait(fake_discord, world, backend, QUESTION)
        await bot.memory.settle()
        assert await bot.store.recall(world.channel.id, ["marguerite"], after_id=0, before_id=2**63 - 1, limit=1) == []
    assert "Marguerite" not in prompt


async def test_an_edited_message_is_recalled_as_edited(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([["Porto."]])
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), backend) as bot:
        fact = await talk(fake_discord, bot, world)
        await fake_discord.user_edits(fact, "my sister Marguerite lives in Porto now")
        for _ in range(200):
            await bot.memory.settle()
            found = await bot.store.recall(world.channel.id, ["porto"], after_id=0, before_id=2**63 - 1, limit=1)
            if found:
                break
            await asyncio.sleep(0.01)
        prompt = await mention_and_wait(fake_discord, world, backend, QUESTION)
    assert "Porto" in prompt and "Lisbon" not in prompt


async def test_forget_me_forgets_what_that_person_said(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([["Hm?"]])
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), backend) as bot:
        await talk(fake_discord, bot, world)
        await bot.conversations.set_summary(str(world.channel.id), "Alice's sister Marguerite lives in Lisbon.")
        interaction = await fake_discord.invoke(world.channel, world.alice, "memory", subcommand="forget-me")
        assert "1 of your messages, in 1 channel(s)" in await answered(fake_discord, interaction, followups=1)
        assert interaction.ephemeral
        prompt = await mention_and_wait(fake_discord, world, backend, QUESTION)
    assert "Marguerite" not in prompt  # neither recalled nor in the summary


async def test_memory_show_tells_how_much_is_remembered(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), ScriptedBackend()) as bot:
        await talk(fake_discord, bot, world)
        interaction = await fake_discord.invoke(world.channel, world.alice, "memory", subcommand="show")
        text = await answered(fake_discord, interaction)
    assert "Memory is on" in text and "13 messages remembered" in text and "No summary yet" in text


async def test_memory_off_is_for_admins_and_forgets_the_channel(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Hm?"]])
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), backend) as bot:
        await talk(fake_discord, bot, world)
        refused = await fake_discord.invoke(world.channel, world.alice, "memory", subcommand="off",
                                            enforce_permissions=False)
        assert "Only" in await answered(fake_discord, refused)
        done = await fake_discord.invoke(world.channel, world.admin, "memory", subcommand="off")
        assert "off" in await answered(fake_discord, done)
        await fake_discord.user_says(world.channel, world.alice, FACT)
        prompt = await mention_and_wait(fake_discord, world, backend, "hello again")
        channel = await bot.conversations.get(str(world.channel.id))
        assert (await bot.memory.count(channel)).messages == 0 and channel.memory is False
    assert RECALL_HEADING not in prompt


async def test_memory_off_survives_a_restart(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    config = small_window(fake_discord, tmp_path)
    async with running_bot(fake_discord, config, ScriptedBackend()):
        done = await fake_discord.invoke(world.channel, world.admin, "memory", subcommand="off")
        await answered(fake_discord, done)
    backend = ScriptedBackend([["Hm?"]])
    async with running_bot(fake_discord, config, backend) as bot:
        await fake_discord.user_says(world.channel, world.alice, FACT)
        await mention_and_wait(fake_discord, world, backend, "hello")
        await bot.memory.settle()
        channel = await bot.conversations.get(str(world.channel.id))
        assert channel.memory is False and (await bot.memory.count(channel)).messages == 0


async def test_reset_starts_the_memory_over(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([["Hm?"]])
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), backend) as bot:
        await talk(fake_discord, bot, world)
        reset = await fake_discord.invoke(world.channel, world.alice, "reset")
        await answered(fake_discord, reset)
        for i in range(6):
            await fake_discord.user_says(world.channel, world.admin, f"{FILLERS[i % len(FILLERS)]} again ({i})")
        prompt = await mention_and_wait(fake_discord, world, backend, QUESTION)
        remembered = (await bot.memory.count(await bot.conversations.get(str(world.channel.id)))).messages
    assert "Marguerite" not in prompt
    assert remembered >= 6 and remembered <= 8  # only what came after the fence


async def test_an_admin_summary_goes_after_the_card(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([["Yes."]])
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), backend):
        done = await fake_discord.invoke(world.channel, world.admin, "memory", subcommand="summary set",
                                         options={"text": "Alice won the song contest last week."})
        await answered(fake_discord, done)
        prompt = await mention_and_wait(fake_discord, world, backend, "did I win?")
        cleared = await fake_discord.invoke(world.channel, world.admin, "memory", subcommand="summary clear")
        await answered(fake_discord, cleared)
        after = await mention_and_wait(fake_discord, world, backend, "did I win, really?")
    assert f"{SUMMARY_HEADING} Alice won the song contest" in prompt
    assert prompt.index(SUMMARY_HEADING) < prompt.index("[Alice]: @Aria did I win?")
    assert SUMMARY_HEADING not in after


async def test_context_attaches_the_last_prompt_with_its_parts_marked(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Lisbon."]])
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), backend) as bot:
        await talk(fake_discord, bot, world)
        await mention_and_wait(fake_discord, world, backend, QUESTION)
        refused = await fake_discord.invoke(world.channel, world.alice, "context", enforce_permissions=False)
        assert "Only" in await answered(fake_discord, refused)
        interaction = await fake_discord.invoke(world.channel, world.admin, "context")
        await answered(fake_discord, interaction)
    assert interaction.ephemeral and interaction.original is not None
    [attachment] = interaction.original.attachments
    text = attachment.data.decode()
    marks = [line for line in text.splitlines() if line.startswith("===== ")]
    assert marks == ["===== card =====", "===== history =====", "===== recalled =====", "===== history =====",
                     "===== note ====="]
    assert FACT in text.split("===== recalled =====")[1]


async def test_messages_older_than_keep_days_are_pruned_in_the_background(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = small_window(fake_discord, tmp_path, memory={"keep_days": 30})
    async with open_store(config.store_url()) as store:  # kept by an earlier run, 40 days ago
        await store.remember([Remembered(1, world.channel.id, world.alice.id, "Alice", FACT,
                                         int(time.time()) - 40 * 86_400)])
    async with running_bot(fake_discord, config, ScriptedBackend()) as bot:
        await fake_discord.user_says(world.channel, world.alice, "the fire is warm")
        await kept(bot, world, 1)
        for _ in range(200):
            if not await bot.store.recall(world.channel.id, ["marguerit"], after_id=0, before_id=2**63 - 1, limit=1):
                break
            await asyncio.sleep(0.01)
        count = await bot.memory.count(await bot.conversations.get(str(world.channel.id)))
    assert count.messages == 1  # today's message only


async def test_the_characters_own_replies_are_kept_under_its_name(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["The parrots squawk all night."]])
    async with running_bot(fake_discord, small_window(fake_discord, tmp_path), backend) as bot:
        await mention_and_wait(fake_discord, world, backend, "any news?")
        for _ in range(200):
            await bot.memory.settle()
            found = await bot.store.recall(world.channel.id, ["parrot"], after_id=0, before_id=2**63 - 1, limit=1)
            if found:
                break
            await asyncio.sleep(0.01)
    assert [(hit.speaker, hit.text) for hit in found] == [("Aria", "The parrots squawk all night.")]


async def test_nothing_is_kept_where_the_bot_may_not_speak(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    allowed = world.guild.add_text_channel("parlour")
    config = small_window(fake_discord, tmp_path, discord={"access": {"deny_channels": [world.channel.id]}})
    async with running_bot(fake_discord, config, ScriptedBackend()) as bot:
        await fake_discord.user_says(world.channel, world.alice, FACT)
        await fake_discord.user_says(allowed, world.alice, "the fire is warm")
        for _ in range(200):  # the allowed channel's message is kept: the denied one was seen before it
            await bot.memory.settle()
            if (await bot.memory.count(await bot.conversations.get(str(allowed.id)))).messages:
                break
            await asyncio.sleep(0.01)
        denied = await bot.memory.count(await bot.conversations.get(str(world.channel.id)))
        kept_there = await bot.memory.count(await bot.conversations.get(str(allowed.id)))
    assert denied.messages == 0 and kept_there.messages == 1
