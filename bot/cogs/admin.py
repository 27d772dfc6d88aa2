"""/model info | load and /config reload."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import is_admin
from bot.config import load_config
from bot.errors import BotError

if TYPE_CHECKING:
    from bot.app import TroupeBot

__all__ = ["AdminCog"]

log = logging.getLogger(__name__)


class AdminCog(commands.Cog):
    """Bot administration: the model and the config."""

    model = app_commands.Group(name="model", description="The generation model")
    config = app_commands.Group(
        name="config", description="The bot's configuration",
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: TroupeBot) -> None:
        self.bot = bot

    async def cog_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Report failures to the user who asked."""
        original = getattr(error, "original", error)
        log.warning("Admin command failed: %s", original)
        text = f"⚠️ {original}"
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)

    @model.command(name="info")
    async def model_info(self, interaction: discord.Interaction) -> None:
        """Which model the bot is using."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            info = await self.bot.backend.model_info()
        except BotError as exc:
            await interaction.followup.send(f"⚠️ {exc}", ephemeral=True)
            return
        lines = [f"**{info.name}**", f"backend: {self.bot.backend.name}"]
        if info.n_ctx:
            lines.append(f"context: {info.n_ctx} tokens")
        if info.available:
            lines.append("can load: " + ", ".join(info.available))
        await interaction.followup.send("\n".join(lines)[:2000], ephemeral=True)

    @model.command(name="load")
    @app_commands.describe(name="A model listed in the config (or one the server knows)")
    async def model_load(self, interaction: discord.Interaction, name: str) -> None:
        """Switch to another model (admins)."""
        if not is_admin(interaction, self.bot.config.discord):
            await interaction.response.send_message("Only admins can change the model.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            info = await self.bot.backend.load_model(name)
        except BotError as exc:
            await interaction.followup.send(f"⚠️ {exc}", ephemeral=True)
            return
        self.bot.service.forget_context()
        await interaction.followup.send(f"✅ Now using **{info.name}**.", ephemeral=True)

    @config.command(name="reload")
    async def config_reload(self, interaction: discord.Interaction) -> None:
        """Re-read the config file; a bad file is refused and the running config stays."""
        if not is_admin(interaction, self.bot.config.discord):
            await interaction.response.send_message("Only admins can reload the config.", ephemeral=True)
            return
        path = self.bot.config_path
        if path is None:
            await interaction.response.send_message("This bot was started without a config file.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            config = await asyncio.to_thread(load_config, path)
        except BotError as exc:
            await interaction.followup.send(f"⚠️ Config refused, still running the old one:\n```\n{str(exc)[:1800]}\n```",
                                            ephemeral=True)
            return
        pending = self.bot.apply_config(config)
        errors = await self.bot.reload_characters()
        note = f"\nNeeds a restart to apply: {', '.join(pending)}." if pending else ""
        bad = f"\n{len(errors)} card(s) could not load: " + "; ".join(str(e) for e in errors)[:800] if errors else ""
        await interaction.followup.send(f"✅ Config reloaded; {len(self.bot.library)} characters.{note}{bad}", ephemeral=True)
