"""/character list | set | info | import."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.cards.model import Character
from bot.cogs.checks import NotAdmin, admin_only, require_admin
from bot.errors import CardError
from bot.prompt.macros import expand_macros

if TYPE_CHECKING:
    from bot.app import TroupeBot

__all__ = ["CharactersCog"]

log = logging.getLogger(__name__)


class CharactersCog(commands.GroupCog, group_name="character", group_description="Choose and manage characters"):
    """Character selection and card management."""

    def __init__(self, bot: TroupeBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """The characters available here."""
        lines = [f"**{c.display_name}** — {c.summary(90) or 'no description'}" for c in self.bot.library.all()]
        embed = discord.Embed(title="Characters", description="\n".join(lines)[:4000] or "No characters loaded.")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="set")
    @app_commands.describe(name="Which character", scope="This channel only, or the server's default")
    async def set_(
        self, interaction: discord.Interaction, name: str, scope: Literal["channel", "server"] = "channel"
    ) -> None:
        """Choose the character who speaks in this channel (or the server default)."""
        character = self.bot.library.get(name)
        if character is None:
            await interaction.response.send_message(f"No character called {name!r}. Try /character list.", ephemeral=True)
            return
        channel = interaction.channel
        assert interaction.channel_id is not None
        key = str(interaction.channel_id)
        if scope == "server":
            if interaction.guild_id is None:
                raise NotAdmin("set the server's character", who="server admins, in a server,")
            require_admin(interaction, "set the server's character", who="server admins")
            await self.bot.conversations.set_server_character(interaction.guild_id, character.name)
            await self.bot.conversations.start_over(key)
            where = "this server's default character"
        else:
            await self.bot.conversations.set_character(key, character.name)
            where = "this channel's character"
        await interaction.response.send_message(f"🎭 **{character.display_name}** is now {where}.")
        greeting = expand_macros(
            character.first_mes, char=character.display_name, user=interaction.user.display_name
        ).strip()
        if greeting and isinstance(channel, discord.abc.Messageable):
            writer = await self.bot.responder.writer(channel, character)
            await writer.send_whole(greeting)

    @set_.autocomplete("name")
    async def _complete_name(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        wanted = current.casefold()
        names = [c.name for c in self.bot.library.all() if wanted in c.name.casefold()]
        return [app_commands.Choice(name=n[:100], value=n[:100]) for n in names[:25]]

    @app_commands.command(name="info")
    @app_commands.describe(name="Which character (default: this channel's)")
    async def info(self, interaction: discord.Interaction, name: str | None = None) -> None:
        """A character's card: description, scenario, tags and avatar."""
        if name:
            character = self.bot.library.get(name)
        else:
            character = await self.bot.conversations.character(str(interaction.channel_id or 0), interaction.guild_id)
        if character is None:
            await interaction.response.send_message(f"No character called {name!r}.", ephemeral=True)
            return
        embed, file = _card_embed(character)
        await interaction.response.send_message(embed=embed, file=file or discord.utils.MISSING, ephemeral=True)

    info.autocomplete("name")(_complete_name)

    @app_commands.command(name="import")
    @app_commands.describe(file="A PNG, JSON, YAML or CHARX character card", overwrite="Replace a card with the same name")
    @admin_only("import characters")
    async def import_(self, interaction: discord.Interaction, file: discord.Attachment, overwrite: bool = False) -> None:
        """Add a character card to the bot (admins)."""
        limit = self.bot.config.discord.import_max_bytes
        if file.size > limit:
            await interaction.response.send_message(
                f"⚠️ {file.filename} is {file.size:,} bytes; the limit is {limit:,}.", ephemeral=True
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await file.read()
        try:
            character = await asyncio.to_thread(
                self.bot.library.import_card, data[:limit + 1], file.filename, overwrite=overwrite
            )
        except CardError as exc:
            raise CardError(None, f"Card refused: {exc.problem}") from exc
        await self.bot.announce("characters_changed")  # processes sharing the store read the folder again
        for warning in character.warnings:
            log.warning("Imported card %s: %s", file.filename, warning)
        notes = "".join(f"\n⚠️ {w}" for w in character.warnings)
        await interaction.followup.send(f"✅ Imported **{character.display_name}**.{notes}"[:2000], ephemeral=True)


def _card_embed(character: Character) -> tuple[discord.Embed, discord.File | None]:
    embed = discord.Embed(title=character.display_name, description=(character.description or "—")[:1000])
    if character.personality:
        embed.add_field(name="Personality", value=character.personality[:1000], inline=False)
    if character.scenario:
        embed.add_field(name="Scenario", value=character.scenario[:1000], inline=False)
    if character.tags:
        embed.add_field(name="Tags", value=", ".join(character.tags)[:1000], inline=False)
    if character.creator:
        embed.set_footer(text=f"by {character.creator}"[:200])
    file = None
    if character.avatar_png:
        file = discord.File(io.BytesIO(character.avatar_png), filename="avatar.png")
        embed.set_thumbnail(url="attachment://avatar.png")
    elif character.avatar:
        embed.set_thumbnail(url=character.avatar)
    return embed, file
