"""/model info | load and /config reload."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import admin_only
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

    @model.command(name="info")
    async def model_info(self, interaction: discord.Interaction) -> None:
        """Which model the bot is using."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        info = await self.bot.backend.model_info()
        lines = [f"**{info.name}**", f"backend: {self.bot.backend.name}"]
        if info.n_ctx:
            lines.append(f"context: {info.n_ctx} tokens")
        if info.available:
            lines.append("can load: " + ", ".join(info.available))
        await interaction.followup.send("\n".join(lines)[:2000], ephemeral=True)

    @model.command(name="load")
    @app_commands.describe(name="A model listed in the config (or one the server knows)")
    @admin_only("change the model")
    async def model_load(self, interaction: discord.Interaction, name: str) -> None:
        """Switch to another model (admins)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        info = await self.bot.backend.load_model(name)
        self.bot.service.forget_context()
        await interaction.followup.send(f"✅ Now using **{info.name}**.", ephemeral=True)

    @config.command(name="reload")
    @admin_only("reload the config")
    async def config_reload(self, interaction: discord.Interaction) -> None:
        """Re-read the config file; a bad file is refused and the running config stays."""
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
        await self.bot.announce("config_reloaded")  # processes sharing the store read their config too
        note = f"\nNeeds a restart to apply: {', '.join(pending)}." if pending else ""
        bad = f"\n{len(errors)} card(s) could not load: " + "; ".join(str(e) for e in errors)[:800] if errors else ""
        await interaction.followup.send(f"✅ Config reloaded; {len(self.bot.library)} characters.{note}{bad}", ephemeral=True)
