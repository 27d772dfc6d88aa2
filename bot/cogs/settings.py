"""/wakewords and /note: per-channel settings that are not about which character speaks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import admin_only
from bot.prompt.builder import MAX_NOTE_CHARS

if TYPE_CHECKING:
    from bot.app import TroupeBot

__all__ = ["SettingsCog"]


class SettingsCog(commands.Cog):
    """Channel settings."""

    note = app_commands.Group(
        name="note", description="This channel's note to the character: a standing instruction it keeps in mind"
    )

    def __init__(self, bot: TroupeBot) -> None:
        self.bot = bot

    @app_commands.command(name="wakewords")
    @admin_only("change this", anyone_in_dms=True)
    @app_commands.describe(mode="on, off, or default (the config's discord.wake_words)")
    async def wakewords(self, interaction: discord.Interaction, mode: Literal["on", "off", "default"]) -> None:
        """Whether the character answers messages that say its name in this channel (admins)."""
        assert interaction.channel_id is not None
        enabled = None if mode == "default" else mode == "on"
        await self.bot.conversations.set_wake_words(str(interaction.channel_id), enabled)
        effective = self.bot.config.discord.wake_words if enabled is None else enabled
        await interaction.response.send_message(
            f"Wake words are {'on' if effective else 'off'} in this channel"
            + (" (the config's default)." if enabled is None else "."),
            ephemeral=True,
        )

    @note.command(name="set")
    @admin_only("change this", anyone_in_dms=True)
    @app_commands.describe(text="e.g. 'It is night and the tavern is about to close.' (placed after the chat)")
    async def note_set(
        self, interaction: discord.Interaction, text: app_commands.Range[str, 1, MAX_NOTE_CHARS]
    ) -> None:
        """Give the character a standing instruction in this channel (admins)."""
        assert interaction.channel_id is not None
        await self.bot.conversations.set_note(str(interaction.channel_id), text.strip())
        await interaction.response.send_message(f"📝 The note for this channel is now:\n>>> {text.strip()}",
                                                ephemeral=True)

    @note.command(name="clear")
    @admin_only("change this", anyone_in_dms=True)
    async def note_clear(self, interaction: discord.Interaction) -> None:
        """Remove this channel's note (admins)."""
        assert interaction.channel_id is not None
        await self.bot.conversations.set_note(str(interaction.channel_id), None)
        await interaction.response.send_message("📝 This channel has no note now.", ephemeral=True)

    @note.command(name="show")
    async def note_show(self, interaction: discord.Interaction) -> None:
        """Show this channel's note."""
        assert interaction.channel_id is not None
        note = (await self.bot.conversations.get(str(interaction.channel_id))).note
        await interaction.response.send_message(
            f"📝 This channel's note:\n>>> {note}" if note else "📝 This channel has no note.", ephemeral=True
        )
