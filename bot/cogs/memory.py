"""/memory and /context: what the character remembers here, people's control of it, and the
prompt the model last saw."""

from __future__ import annotations

import datetime
import io
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import admin_only
from bot.prompt.parts import marked

if TYPE_CHECKING:
    from bot.app import TroupeBot

__all__ = ["MemoryCog", "MAX_SUMMARY_CHARS"]

#: the longest summary an admin may set by hand
MAX_SUMMARY_CHARS = 1500


class MemoryCog(commands.Cog):
    """Memory beyond the prompt window, and seeing what the model sees."""

    memory = app_commands.Group(name="memory",
                                description="What the character remembers beyond the recent chat")
    summary = app_commands.Group(name="summary", description="This channel's running summary", parent=memory)

    def __init__(self, bot: TroupeBot) -> None:
        self.bot = bot

    @memory.command(name="show")
    async def show(self, interaction: discord.Interaction) -> None:
        """This channel's summary and how much of it is remembered."""
        assert interaction.channel_id is not None
        conversation = await self.bot.conversations.get(str(interaction.channel_id))
        count = await self.bot.memory.count(conversation)
        on = self.bot.memory.remembers(conversation)
        since = (f" since {datetime.datetime.fromtimestamp(count.oldest_at, datetime.UTC):%Y-%m-%d}"
                 if count.oldest_at is not None else "")
        lines = [
            f"🧠 Memory is {'on' if on else 'off'} in this channel.",
            f"{count.messages} messages remembered{since} "
            f"(each for {self.bot.config.memory.keep_days} days).",
            f"Summary:\n>>> {conversation.summary}" if conversation.summary else "No summary yet.",
        ]
        await interaction.response.send_message("\n".join(lines)[:2000], ephemeral=True)

    @memory.command(name="forget-me")
    async def forget_me(self, interaction: discord.Interaction) -> None:
        """Forget everything remembered from your messages, in every channel."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        forgotten = await self.bot.memory.forget_author(interaction.user.id)
        for channel in forgotten:  # a summary may speak of them: it starts over from what is left
            self.bot.service.summaries.discard(str(channel))
            await self.bot.conversations.set_summary(str(channel), None)
        await interaction.followup.send(
            f"🧽 Forgotten: {sum(forgotten.values())} of your messages, in {len(forgotten)} channel(s); "
            "the summaries there start over.", ephemeral=True,
        )

    @memory.command(name="off")
    @admin_only("change this", anyone_in_dms=True)
    async def off(self, interaction: discord.Interaction) -> None:
        """Stop remembering in this channel and forget what was remembered here (admins)."""
        assert interaction.channel_id is not None
        await self.bot.memory.settle()
        await self.bot.conversations.set_memory(str(interaction.channel_id), False)
        await interaction.response.send_message("🧠 Memory is off here; what it held is forgotten.",
                                                ephemeral=True)

    @memory.command(name="on")
    @admin_only("change this", anyone_in_dms=True)
    @app_commands.describe(mode="on, or default (the config's memory.enabled)")
    async def on(self, interaction: discord.Interaction, mode: Literal["on", "default"] = "on") -> None:
        """Remember this channel's talk beyond the recent chat (admins)."""
        assert interaction.channel_id is not None
        await self.bot.conversations.set_memory(str(interaction.channel_id), True if mode == "on" else None)
        on = self.bot.memory.remembers(await self.bot.conversations.get(str(interaction.channel_id)))
        await interaction.response.send_message(f"🧠 Memory is {'on' if on else 'off'} here.",
                                                ephemeral=True)

    @summary.command(name="set")
    @admin_only("change this", anyone_in_dms=True)
    @app_commands.describe(text="what the character should know happened before the recent chat")
    async def summary_set(
        self, interaction: discord.Interaction, text: app_commands.Range[str, 1, MAX_SUMMARY_CHARS]
    ) -> None:
        """Write this channel's summary by hand (admins)."""
        assert interaction.channel_id is not None
        await self.bot.conversations.set_summary(str(interaction.channel_id), text.strip())
        await interaction.response.send_message(f"🧠 The summary is now:\n>>> {text.strip()}"[:2000],
                                                ephemeral=True)

    @summary.command(name="clear")
    @admin_only("change this", anyone_in_dms=True)
    async def summary_clear(self, interaction: discord.Interaction) -> None:
        """Clear this channel's summary (admins)."""
        assert interaction.channel_id is not None
        await self.bot.conversations.set_summary(str(interaction.channel_id), None)
        await interaction.response.send_message("🧠 This channel has no summary now.", ephemeral=True)

    @app_commands.command(name="context")
    @admin_only("see this", anyone_in_dms=True)
    async def context(self, interaction: discord.Interaction) -> None:
        """The prompt of the character's last reply here, with its parts marked (admins)."""
        assert interaction.channel_id is not None
        prompt = self.bot.service.last_prompt(str(interaction.channel_id))
        if prompt is None:
            await interaction.response.send_message("No reply has been written here since I started.",
                                                    ephemeral=True)
            return
        attachment = discord.File(io.BytesIO(marked(prompt).encode()), filename="context.txt")
        await interaction.response.send_message(
            f"The last prompt here: {prompt.token_count} tokens, {prompt.turns_kept} messages.",
            file=attachment, ephemeral=True,
        )
