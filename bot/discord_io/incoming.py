"""Gateway messages as the plain facts routing decides on (:class:`bot.routing.Incoming`)."""

from __future__ import annotations

import contextlib
from collections.abc import Collection

import discord

from bot.access import Place
from bot.discord_io.replies import posted_as
from bot.routing import Incoming

__all__ = ["incoming", "place_of"]

_ORDINARY = (discord.MessageType.default, discord.MessageType.reply)


async def incoming(message: discord.Message, *, me: int, webhook_ids: Collection[int]) -> Incoming:
    """What routing needs to know about ``message``. The replied-to message is looked up
    (fetched if the gateway did not include it) when it is a reply."""
    direct = message.guild is None
    mentions_us = any(user.id == me for user in message.mentions)
    target = await _replied_to(message, me, webhook_ids)
    return Incoming(
        content=message.content,
        place=place_of(message),
        from_bot=message.author.bot,
        from_our_webhook=message.webhook_id is not None and message.webhook_id in webhook_ids,
        ordinary=message.type in _ORDINARY,
        direct=direct,
        mentions_us=mentions_us,
        replies_to_us=target is not None,
        replied_character=posted_as(target, bot_user_id=me) if target is not None else None,
    )


def place_of(message: discord.Message) -> Place:
    """Who wrote the message where: the channel, a thread's parent, the category; the author's roles."""
    channel = message.channel
    ids = [channel.id]
    parent = getattr(channel, "parent", None)
    if parent is not None:
        ids.append(parent.id)
        channel = parent
    category_id = getattr(channel, "category_id", None)
    if category_id:
        ids.append(category_id)
    return Place(
        user_id=message.author.id,
        guild_id=message.guild.id if message.guild else None,
        channel_ids=tuple(ids),
        role_ids=tuple(r.id for r in getattr(message.author, "roles", ())),
    )


async def _replied_to(message: discord.Message, me: int, webhook_ids: Collection[int]) -> discord.Message | None:
    """The bot's or one of its characters' message that ``message`` replies to, if it does."""
    ref = message.reference
    if ref is None or ref.message_id is None:
        return None
    target = ref.resolved if isinstance(ref.resolved, discord.Message) else None
    if target is None:
        with contextlib.suppress(discord.HTTPException):
            target = await message.channel.fetch_message(ref.message_id)
    if target is None:
        return None
    ours = target.author.id == me or (target.webhook_id is not None and target.webhook_id in webhook_ids)
    return target if ours else None
