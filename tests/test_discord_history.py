"""Channel history comes from the gateway once the channel's older messages were fetched."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord

from bot.testing import ScriptedBackend

pytestmark = pytest.mark.discord


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


def history_requests(fake: FakeDiscord, world: World) -> int:
    path = f"/channels/{world.channel.id}/messages"
    return sum(1 for r in fake.requests if r.method == "GET" and r.path.endswith(path))


async def replies(fake: FakeDiscord, world: World, count: int) -> None:
    await fake.wait_for(lambda: len([m for m in fake.sent_by_bot(world.channel) if m.webhook_id]) >= count)


async def test_only_the_first_reply_in_a_channel_fetches_history(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    before_start = await fake_discord.user_says(world.channel, world.alice, "an old message from before the bot")
    backend = ScriptedBackend([["One."], ["Two."], ["Three."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "first?", mention_bot=True)
        await replies(fake_discord, world, 1)
        await fake_discord.user_says(world.channel, world.admin, "chatter in between")
        await fake_discord.user_edits(before_start, "an old message, edited")
        await fake_discord.user_says(world.channel, world.alice, "second?", mention_bot=True)
        await replies(fake_discord, world, 2)
    assert history_requests(fake_discord, world) == 1
    second = backend.requests[1].prompt
    assert "an old message, edited" in second and "chatter in between" in second
    assert "[Aria]: One.\n" in second and second.endswith("[Alice]: @Aria second?\n[Aria]:")


async def test_deleted_messages_leave_the_history(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    old = await fake_discord.user_says(world.channel, world.alice, "a secret I regret")
    backend = ScriptedBackend([["One."], ["Two."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "first?", mention_bot=True)
        await replies(fake_discord, world, 1)
        fresh = await fake_discord.user_says(world.channel, world.alice, "another regret")
        await fake_discord.delete_message(old)
        await fake_discord.delete_message(fresh)
        await asyncio.sleep(0.1)
        await fake_discord.user_says(world.channel, world.alice, "second?", mention_bot=True)
        await replies(fake_discord, world, 2)
    assert "a secret I regret" in backend.requests[0].prompt
    assert "regret" not in backend.requests[1].prompt


async def test_a_new_gateway_session_fetches_history_again(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["One."], ["Two."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend) as bot:
        bot.before_identify_hook = _no_wait  # type: ignore[method-assign]
        await fake_discord.user_says(world.channel, world.alice, "first?", mention_bot=True)
        await replies(fake_discord, world, 1)
        await fake_discord.invalidate_session(resumable=False)  # events may have been missed
        await fake_discord.wait_for(lambda: fake_discord.gateway.count("IDENTIFY") >= 2, timeout=10)
        await fake_discord.wait_connected()
        await asyncio.sleep(0.2)
        await fake_discord.user_says(world.channel, world.alice, "second?", mention_bot=True)
        await replies(fake_discord, world, 2)
    assert history_requests(fake_discord, world) == 2


async def _no_wait(shard_id: int | None, *, initial: bool = False) -> None:
    """discord.py waits 5 s before identifying again; tests need not."""
