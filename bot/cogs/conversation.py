"""/reset, /regenerate, /stop, /stats: the channel's conversation."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.backends.base import PooledBackend
from bot.console import format_stats
from bot.discord_io.replies import posted_as

if TYPE_CHECKING:
    from bot.app import TroupeBot

__all__ = ["ConversationCog"]


class ConversationCog(commands.Cog):
    """Commands about the conversation in this channel."""

    def __init__(self, bot: TroupeBot) -> None:
        self.bot = bot

    @app_commands.command(name="reset")
    async def reset(self, interaction: discord.Interaction) -> None:
        """Forget this channel's conversation before now."""
        assert interaction.channel_id is not None
        await self.bot.conversations.reset(str(interaction.channel_id), interaction.id)
        await interaction.response.send_message("🧹 I've forgotten everything before this point.")

    @app_commands.command(name="regenerate")
    async def regenerate(self, interaction: discord.Interaction) -> None:
        """Rewrite the character's last reply in this channel."""
        channel = interaction.channel
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            await interaction.response.send_message("Not here.", ephemeral=True)
            return
        slot = self.bot.scheduler.reserve(channel.id)  # type: ignore[attr-defined]
        if slot is None:
            await interaction.response.send_message("I'm busy in this channel; try again in a moment.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with slot:
            last = await self._last_reply(channel)
            if last is None:
                await interaction.followup.send("There is no reply of mine to rewrite here.", ephemeral=True)
                return
            speaker = await self._speaker_of(channel, last)
            with contextlib.suppress(discord.HTTPException):
                await self.bot.webhooks.delete(last)
            await self.bot.responder.respond(channel, before=last, speaker=speaker)
        await interaction.followup.send("🔁 Rewritten.", ephemeral=True)

    async def _speaker_of(self, channel: discord.abc.Messageable, message: discord.Message) -> str | None:
        """The card name of the scene member who wrote ``message`` (None: the first member)."""
        me = self.bot.user
        shown = posted_as(message, bot_user_id=me.id if me else 0)
        guild = getattr(channel, "guild", None)
        cast = await self.bot.conversations.cast(str(channel.id), guild.id if guild else None)  # type: ignore[attr-defined]
        wanted = (shown or "").casefold()
        return next((c.name for c in cast if wanted in (c.display_name.casefold(), c.name.casefold())), None)

    async def _last_reply(self, channel: discord.abc.Messageable) -> discord.Message | None:
        me = self.bot.user
        async for message in channel.history(limit=self.bot.config.prompt.history_messages):
            if (me is not None and message.author.id == me.id and not message.interaction_metadata) or (
                message.webhook_id is not None and message.webhook_id in self.bot.webhooks.known_ids
            ):
                return message
        return None

    @app_commands.command(name="stop")
    async def stop(self, interaction: discord.Interaction) -> None:
        """Stop the reply being written in this channel."""
        assert interaction.channel_id is not None
        stopped = self.bot.scheduler.cancel(interaction.channel_id)
        if stopped:
            await self.bot.backend.abort(str(interaction.channel_id))
        await interaction.response.send_message("⏹️ Stopped." if stopped else "Nothing is being written here.",
                                                ephemeral=not stopped)

    @app_commands.command(name="stats")
    async def stats(self, interaction: discord.Interaction) -> None:
        """Context used, speed of the last reply, the backend, and a scene's cast and who spoke."""
        assert interaction.channel_id is not None
        key = str(interaction.channel_id)
        text = format_stats(self.bot.service.last_stats(key))
        cast = await self.bot.conversations.cast(key, interaction.guild_id)
        if len(cast) > 1:
            spoken = self.bot.conversations.spoken(key)
            text += "\nscene: " + ", ".join(f"{c.display_name} ({spoken.get(c.name, 0)} replies)" for c in cast)
        backend = self.bot.backend
        if isinstance(backend, PooledBackend):
            text += "\n" + "\n".join(
                f"member {m['name']}: {m['state']}, {m['busy']} busy, {m['served']} served"
                for m in backend.member_states()
            )
        await interaction.response.send_message(f"```\n{text[:1900]}\n```", ephemeral=True)
