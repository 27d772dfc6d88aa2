"""Gateway messages as the plain facts routing decides on (:class:`bot.routing.Incoming`)."""

from __future__ import annotations

import contextlib
from collections.abc import Collection

import discord

from bot.access import Place
from bot.routing import Incoming

__all__ = ["incoming", "place_of"]

_ORDINARY = (discord.MessageType.default, discord.MessageType.reply)


async def incoming(message: discord.Message, *, me: int, webhook_ids: Collection[int]) -> Incoming:
    """What routing needs to know about ``message``. The replied-to message is looked up
    (fetched if the gateway did not include it) only when nothing else addresses the bot."""
    direct = message.guild is None
    mentions_us = any(user.id == me for user in message.mentions)
    return Incoming(
        content=message.content,
        place=place_of(message),
        from_bot=message.author.bot,
        from_our_webhook=message.webhook_id is not None and message.webhook_id in webhook_ids,
        ordinary=message.type in _ORDINARY,
        direct=direct,
        mentions_us=mentions_us,
        replies_to_us=not (direct or mentions_us) and await _replies_to_us(message, me, webhook_ids),
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


async def _replies_to_us(message: discord.Message, me: int, webhook_ids: Collection[int]) -> bool:
    ref = message.reference
    if ref is None or ref.message_id is None:
        return False
    target = ref.resolved if isinstance(ref.resolved, discord.Message) else None
    if target is None:
        with contextlib.suppress(discord.HTTPException):
            target = await message.channel.fetch_message(ref.message_id)
    if target is None:
        return False
    return target.author.id == me or (target.webhook_id is not None and target.webhook_id in webhook_ids)
