"""PostgreSQL stopped and started again while people talk to the bot: replies go on (they need
no write), a command that must write says so, nothing written before is lost, and the bot
recovers by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord
from postgres_fixtures import PostgresServer, start_postgres
from test_discord_commands import answered

from bot.config import StoreConfig
from bot.testing import ScriptedBackend

pytestmark = pytest.mark.discord


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    server = start_postgres()  # this module stops and starts it: not the session's server
    yield server
    server.close()


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


async def test_replies_go_on_while_postgres_is_down_and_the_bot_recovers(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, own_postgres: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await asyncio.to_thread(own_postgres.start)
    await asyncio.to_thread(own_postgres.sql, "DROP DATABASE IF EXISTS outage WITH (FORCE)")
    await asyncio.to_thread(own_postgres.sql, "CREATE DATABASE outage")
    config = make_config(fake_discord, tmp_path)
    config.store = StoreConfig(url=own_postgres.url("outage"))
    backend = ScriptedBackend([["Hello!"], ["Still here."], ["Back to normal."]])
    async with running_bot(fake_discord, config, backend) as bot:
        note = await fake_discord.invoke(world.channel, world.admin, "note", subcommand="set", options={"text": "Night."})
        assert "Night." in await answered(fake_discord, note)
        await fake_discord.user_says(world.channel, world.alice, "hi", mention_bot=True)
        await fake_discord.wait_for(lambda: len(fake_discord.sent_by_bot(world.channel)) >= 1, 10)

        await asyncio.to_thread(own_postgres.stop, "fast")
        await fake_discord.user_says(world.channel, world.alice, "are you there?", mention_bot=True)
        await fake_discord.wait_for(lambda: len(backend.requests) >= 2, 10)
        assert "Night." in backend.requests[-1].prompt  # the note, read before the outage, still applies
        refused = await fake_discord.invoke(world.channel, world.admin, "note", subcommand="set",
                                            options={"text": "Dawn."})
        assert "saved state" in await answered(fake_discord, refused)
        assert "store unreachable" in caplog.text  # the owner's log says what happened

        await asyncio.to_thread(own_postgres.start)
        await fake_discord.user_says(world.channel, world.alice, "and now?", mention_bot=True)
        await fake_discord.wait_for(lambda: len(backend.requests) >= 3, 10)
        again = await fake_discord.invoke(world.channel, world.admin, "note", subcommand="set",
                                          options={"text": "Dawn."})
        assert "Dawn." in await answered(fake_discord, again)
        stored = await bot.store.channel(world.channel.id)
    assert stored.note == "Dawn." and stored.anchor_id is not None
