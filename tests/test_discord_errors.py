"""Every slash command that fails answers the person who used it (one error path, on the tree)."""

from __future__ import annotations

from pathlib import Path

import pytest
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord
from test_discord_commands import answered

from bot.testing import ScriptedBackend

pytestmark = pytest.mark.discord

SAVED_STATE = "couldn't read or write my saved state"


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


async def test_a_failing_conversation_command_answers_with_what_went_wrong(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()) as bot:
        await bot.store.close()  # the database goes away under the bot
        interaction = await fake_discord.invoke(world.channel, world.alice, "reset")
        text = await answered(fake_discord, interaction)
    assert SAVED_STATE in text
    assert interaction.responses[0]["data"]["flags"] & 64  # ephemeral: only they see it
    assert "/reset failed" in caplog.text and "store" in caplog.text  # the owner sees the details


async def test_a_failing_character_command_answers(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()) as bot:
        await bot.store.close()
        interaction = await fake_discord.invoke(world.channel, world.alice, "character", subcommand="set",
                                                options={"name": "Captain Brass"})
        assert SAVED_STATE in await answered(fake_discord, interaction)


async def test_a_failing_settings_command_answers(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()) as bot:
        await bot.store.close()
        note = await fake_discord.invoke(world.channel, world.admin, "note", subcommand="set", options={"text": "Night."})
        assert SAVED_STATE in await answered(fake_discord, note)
        wake = await fake_discord.invoke(world.channel, world.admin, "wakewords", options={"mode": "off"})
        assert SAVED_STATE in await answered(fake_discord, wake)


async def test_a_failing_admin_command_answers_after_deferring(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()):
        interaction = await fake_discord.invoke(world.channel, world.admin, "model", subcommand="load",
                                                options={"name": "other"})
        text = await answered(fake_discord, interaction, followups=1)
    assert "⚠️" in text and "can't do that" in text


async def test_a_failing_scene_command_answers(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()) as bot:
        await bot.store.close()
        interaction = await fake_discord.invoke(world.channel, world.alice, "scene", subcommand="add",
                                                options={"name": "Captain Brass"})
        assert SAVED_STATE in await answered(fake_discord, interaction)


async def test_a_failing_memory_command_answers(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()) as bot:
        await bot.store.close()
        interaction = await fake_discord.invoke(world.channel, world.alice, "memory", subcommand="forget-me")
        assert SAVED_STATE in await answered(fake_discord, interaction, followups=1)
