"""Who counts as an admin (Manage Server, or ids/roles listed in the config), as a
check decorator for admin-only slash commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import discord
from discord import app_commands

from bot.config import DiscordConfig

if TYPE_CHECKING:
    from bot.app import TroupeBot

__all__ = ["is_admin", "admin_only", "require_admin", "NotAdmin"]

T = TypeVar("T")


class NotAdmin(app_commands.CheckFailure):
    """An admin-only command used by someone else; the message is what they are told."""

    def __init__(self, what: str = "do this", *, who: str = "admins") -> None:
        super().__init__(f"Only {who} can {what}.")


def is_admin(interaction: discord.Interaction, config: DiscordConfig) -> bool:
    """Manage Server in this server, or a user/role id from ``discord.admin_*``."""
    user = interaction.user
    if user.id in config.admin_user_ids:
        return True
    if isinstance(user, discord.Member):
        if any(role.id in config.admin_role_ids for role in user.roles):
            return True
        permissions = interaction.permissions
        return permissions.manage_guild or permissions.administrator
    return False


def require_admin(interaction: discord.Interaction, what: str, *, who: str = "admins") -> None:
    """Raise :class:`NotAdmin` unless the person is an admin (for checks that depend on options)."""
    bot: TroupeBot = interaction.client  # type: ignore[assignment]
    if not is_admin(interaction, bot.config.discord):
        raise NotAdmin(what, who=who)


def admin_only(what: str, *, anyone_in_dms: bool = False) -> Callable[[T], T]:
    """Only admins may use the command (``what`` completes "Only admins can ..."); with
    ``anyone_in_dms``, anyone may in a DM (their own conversation with the bot)."""

    def predicate(interaction: discord.Interaction) -> bool:
        if not (anyone_in_dms and interaction.guild_id is None):
            require_admin(interaction, what)
        return True

    return app_commands.check(predicate)
