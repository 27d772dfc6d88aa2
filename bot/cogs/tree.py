"""The slash-command tree, with the one error path every command shares.

A command that raises answers the person who used it, ephemerally: a refused
check says why, a :class:`bot.errors.BotError` becomes the sentence
:func:`bot.failures.user_message` gives, anything else is logged with its trace and
answered with a short apology. Cogs raise; they do not catch.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.errors import BotError
from bot.failures import user_message

__all__ = ["TroupeTree", "answer"]

log = logging.getLogger(__name__)


class TroupeTree(app_commands.CommandTree):
    """discord.py's command tree with Troupe's error handler."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Answer the person whose command failed."""
        name = interaction.command.qualified_name if interaction.command else "?"
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(original, app_commands.CheckFailure):
            text = str(original) or "You can't use this command here."
        elif isinstance(original, BotError):
            log.warning("/%s failed: %s", name, original)
            text = f"⚠️ {user_message(original)}"
        else:
            log.error("/%s failed", name, exc_info=original)
            text = f"⚠️ {user_message(original)}"
        await answer(interaction, text)


async def answer(interaction: discord.Interaction, text: str, *, ephemeral: bool = True) -> None:
    """Reply to an interaction whether or not it was answered or deferred already."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text[:2000], ephemeral=ephemeral)
        else:
            await interaction.response.send_message(text[:2000], ephemeral=ephemeral)
    except discord.HTTPException as exc:
        log.warning("Could not answer /%s: %s", interaction.command.qualified_name if interaction.command else "?", exc)
