"""A reasoning model on Discord: its thinking is never posted (unless the owner asks) and
never read back as part of the conversation."""

from __future__ import annotations

from pathlib import Path

import pytest
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord
from fakediscord.model import Message
from fakediscord.permissions import DEFAULT_BOT_PERMISSIONS, Perm

from bot.discord_io import REASONING_FILE, REASONING_MARK, reasoning_spoiler
from bot.testing import ScriptedBackend

pytestmark = pytest.mark.discord

THINKING = ["<think>Alice wants food.", " Stew is safe.</think>\n\n", "The stew, ", "always."]


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


async def bot_messages(fake: FakeDiscord, world: World, count: int = 1) -> list[Message]:
    return await fake.wait_for(lambda: (m := fake.sent_by_bot(world.channel)) and len(m) >= count and m, 5.0)


async def two_mentions(fake: FakeDiscord, world: World, tmp_path: Path, backend: ScriptedBackend,
                       show: str, messages: int) -> list[Message]:
    """Alice asks twice; returns what the bot posted after the first question."""
    config = make_config(fake, tmp_path, discord={"show_reasoning": show})
    async with running_bot(fake, config, backend):
        await fake.user_says(world.channel, world.alice, "what's good tonight?", mention_bot=True)
        await fake.wait_for(lambda: any(m.content.endswith("The stew, always.") for m in fake.sent_by_bot(world.channel)))
        posted = list(fake.sent_by_bot(world.channel))
        await fake.user_says(world.channel, world.alice, "and to drink?", mention_bot=True)
        await bot_messages(fake, world, messages + 1)
    return posted


async def test_thinking_is_never_posted_by_default(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([THINKING, ["Cider."]])
    [reply] = await two_mentions(fake_discord, world, tmp_path, backend, "off", 1)
    assert reply.content == "The stew, always." and not reply.attachments
    assert "Alice wants food" not in backend.requests[1].prompt


async def test_a_reply_that_is_only_thinking_gets_the_fallback(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["<think>Hmm.</think>"], ["<think>Nothing.</think>"]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "say something", mention_bot=True)
        [reply] = await bot_messages(fake_discord, world)
    assert reply.content == "…"


async def test_spoiler_shows_the_thinking_before_the_reply_and_never_reads_it_back(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([THINKING, ["Cider."]])
    spoiler, reply = await two_mentions(fake_discord, world, tmp_path, backend, "spoiler", 2)
    assert spoiler.content == f"{REASONING_MARK}\n||Alice wants food. Stew is safe.||"
    assert spoiler.username == "Aria" and reply.content == "The stew, always."
    assert spoiler.id < reply.id
    prompt = backend.requests[1].prompt
    assert "Alice wants food" not in prompt and "[Aria]: The stew, always.\n" in prompt


async def test_spoiler_as_the_bot_without_webhooks_is_not_read_back_either(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    world.guild.set_bot_permissions(DEFAULT_BOT_PERMISSIONS & ~Perm.MANAGE_WEBHOOKS)
    backend = ScriptedBackend([THINKING, ["Cider."]])
    spoiler, reply = await two_mentions(fake_discord, world, tmp_path, backend, "spoiler", 2)
    assert spoiler.content.startswith(f"**Aria**: {REASONING_MARK}\n||")
    assert "Alice wants food" not in backend.requests[1].prompt


async def test_file_attaches_the_thinking_to_the_reply_and_never_reads_it_back(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([THINKING, ["Cider."]])
    [reply] = await two_mentions(fake_discord, world, tmp_path, backend, "file", 1)
    [attachment] = reply.attachments
    assert (attachment.filename, attachment.data) == (REASONING_FILE, b"Alice wants food. Stew is safe.")
    prompt = backend.requests[1].prompt
    assert REASONING_FILE not in prompt and "[Aria]: The stew, always.\n" in prompt


def test_long_thinking_is_cut_to_fit_one_message() -> None:
    text = reasoning_spoiler("why? " * 1000)
    assert len(text) <= 2000 and text.endswith("…||")


def test_pipes_in_the_thinking_cannot_end_the_spoiler_early() -> None:
    assert reasoning_spoiler("a || b") == f"{REASONING_MARK}\n||a \\|\\| b||"


async def test_typing_shows_while_the_model_thinks(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    # discord.py re-sends "typing" every 5 s while the reply waits for its first visible text
    thinking = ["<think>Hmm.", " Stew?", " Pie?", " Stew.</think>", "The stew, always."]
    backend = ScriptedBackend([thinking], chunk_delay=1.5)
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "what's good tonight?", mention_bot=True)
        [reply] = await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(world.channel), timeout=10)
    typing = [t for channel_id, t in fake_discord.typing if channel_id == world.channel.id]
    assert len(typing) >= 2 and typing[-1] - typing[0] >= 4.5  # kept on through the thinking
    assert reply.content == "The stew, always."
