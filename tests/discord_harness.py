"""Run the real Troupe bot (real discord.py) against the local fake Discord."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakediscord import FakeDiscord, Guild, User, run_client
from fakediscord.model import Channel
from fakediscord.permissions import Perm

from bot.app import TroupeBot, bot_class
from bot.backends.base import Backend
from bot.cards import CharacterLibrary
from bot.chat import ChatService
from bot.config import Config, parse_config
from bot.conversations import Conversations
from bot.store import Store

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class World:
    """A small server: a text channel, a member, an admin and a stranger in another server."""

    guild: Guild
    channel: Channel
    alice: User
    admin: User


def build_world(fake: FakeDiscord) -> World:
    """The usual test server."""
    guild = fake.add_guild("Copper Kettle")
    channel = guild.add_text_channel("tavern")
    alice = fake.add_user("alice", global_name="Alice")
    admin = fake.add_user("boss", global_name="Boss")
    guild.add_member(alice)
    guild.add_member(admin, permissions=int(Perm.MANAGE_GUILD))
    return World(guild, channel, alice, admin)


def make_config(fake: FakeDiscord, tmp_path: Path, **overrides: Any) -> Config:
    """A config pointing at the fake, with a copy of the bundled characters and a fresh store."""
    characters = tmp_path / "characters"
    if not characters.exists():
        shutil.copytree(ROOT / "characters", characters)
    data: dict[str, Any] = {
        "characters_dir": str(characters),
        "default_character": "Aria",
        "store": {"path": str(tmp_path / "troupe.db")},
        "discord": {"api_url": fake.api_url, "gateway_url": fake.gateway_url, "token": fake.token,
                    "user_cooldown": 0, "edit_interval": 0.2},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    config = parse_config(data)
    config.source = tmp_path / "config.yaml"
    return config


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, config: Config, backend: Backend) -> AsyncIterator[TroupeBot]:
    """TroupeBot connected to the fake, ready; closed (and its store closed) on exit."""
    library = CharacterLibrary(config.resolve_path(config.characters_dir))
    library.load()
    store = await Store.open(config.store_url())
    conversations = Conversations(library, store, default_character=config.default_character)
    bot = bot_class(config)(
        config=config, service=ChatService(backend, config, conversations), library=library, store=store,
        config_path=config.source, guild_ready_timeout=0.05,
    )
    try:
        async with run_client(bot, fake):
            yield bot
    finally:
        await store.close()
