"""/scene add | remove | list | clear: several characters in this channel."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cards.model import Character
from bot.cogs.checks import require_admin
from bot.errors import SceneError
from bot.prompt.macros import expand_macros

if TYPE_CHECKING:
    from bot.app import TroupeBot

__all__ = ["SceneCog", "group_greeting"]


def group_greeting(character: Character, *, user: str, seed: int) -> str:
    """The line a character says on joining a running scene: one of its V3
    ``group_only_greetings`` (chosen by ``seed``), macros expanded; empty when it has none."""
    lines = [line for line in character.group_only_greetings if line.strip()]
    if not lines:
        return ""
    line = random.Random(seed).choice(lines)
    return expand_macros(line, char=character.display_name, user=user).strip()


class SceneCog(commands.GroupCog, group_name="scene", group_description="Several characters in this channel"):
    """The channel's cast."""

    def __init__(self, bot: TroupeBot) -> None:
        self.bot = bot
        super().__init__()

    def _may_change(self, interaction: discord.Interaction) -> None:
        if self.bot.config.scene.manage == "admins" and interaction.guild_id is not None:
            require_admin(interaction, "change the scene here")

    def _character(self, name: str) -> Character:
        character = self.bot.library.get(name)
        if character is None:
            raise SceneError(f"No character called {name!r}. Try /character list.")
        return character

    @app_commands.command(name="add")
    @app_commands.describe(name="Which character joins")
    async def add(self, interaction: discord.Interaction, name: str) -> None:
        """Bring a character into this channel's scene."""
        self._may_change(interaction)
        character = self._character(name)
        assert interaction.channel_id is not None
        cast = await self.bot.conversations.add_member(
            str(interaction.channel_id), character.name, guild_id=interaction.guild_id,
            most=self.bot.config.scene.max_cast,
        )
        await interaction.response.send_message(
            f"🎭 **{character.display_name}** joins the scene: {self._names(cast)}."
        )
        greeting = group_greeting(character, user=interaction.user.display_name, seed=interaction.id)
        channel = interaction.channel
        if greeting and isinstance(channel, discord.abc.Messageable):
            writer = await self.bot.responder.writer(channel, character)
            await writer.send_whole(greeting)

    @app_commands.command(name="remove")
    @app_commands.describe(name="Which character leaves")
    async def remove(self, interaction: discord.Interaction, name: str) -> None:
        """Take a character out of this channel's scene."""
        self._may_change(interaction)
        character = self._character(name)
        assert interaction.channel_id is not None
        cast = await self.bot.conversations.remove_member(
            str(interaction.channel_id), character.name, guild_id=interaction.guild_id
        )
        await interaction.response.send_message(
            f"🎭 **{character.display_name}** leaves the scene: {self._names(cast)}."
        )

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """Who is in this channel's scene, and who spoke since the bot started."""
        assert interaction.channel_id is not None
        key = str(interaction.channel_id)
        cast = await self.bot.conversations.cast(key, interaction.guild_id)
        spoken = self.bot.conversations.spoken(key)
        lines = [f"**{c.display_name}**" + (f" — {spoken[c.name]} replies" if c.name in spoken else "") for c in cast]
        await interaction.response.send_message("🎭 In this scene:\n" + "\n".join(lines) if lines
                                                else "No character speaks here.", ephemeral=True)

    @app_commands.command(name="clear")
    async def clear(self, interaction: discord.Interaction) -> None:
        """End the scene: the channel's one character (or the server's default) speaks alone again."""
        self._may_change(interaction)
        assert interaction.channel_id is not None
        key = str(interaction.channel_id)
        await self.bot.conversations.set_cast(key, ())
        cast = await self.bot.conversations.cast(key, interaction.guild_id)
        who = f"**{cast[0].display_name}** speaks here alone again." if cast else "No character speaks here."
        await interaction.response.send_message(f"🎭 The scene is over; {who}")

    @add.autocomplete("name")
    async def _complete_name(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        wanted = current.casefold()
        names = [c.name for c in self.bot.library.all() if wanted in c.name.casefold()]
        return [app_commands.Choice(name=n[:100], value=n[:100]) for n in names[:25]]

    remove.autocomplete("name")(_complete_name)

    def _names(self, cast: tuple[str, ...]) -> str:
        return ", ".join(c.display_name if (c := self.bot.library.get(n)) else n for n in cast)
