"""Discord messages as memory: what the bot saw, in the words and names the prompt uses."""

from __future__ import annotations

from collections.abc import Iterable

import discord

from bot.discord_io.replies import turn_from_message
from bot.prompt.types import Turn
from bot.routing import out_of_character
from bot.store import Remembered

__all__ = ["remembered", "message_memory"]


def remembered(message: discord.Message, turn: Turn) -> Remembered:
    """The message as memory keeps it: its turn's speaker and text, who wrote it, when."""
    return Remembered(
        message_id=message.id, channel_id=message.channel.id, author_id=message.author.id,
        speaker=turn.speaker, text=turn.text, at=int(message.created_at.timestamp()),
    )


def message_memory(
    message: discord.Message, *, bot_user_id: int, webhook_ids: Iterable[int], character_name: str,
    ooc_prefixes: Iterable[str],
) -> Remembered | None:
    """What memory keeps of one message (None: nothing, e.g. out of character or a bot notice)."""
    if out_of_character(message.content, tuple(ooc_prefixes)):
        return None
    turn = turn_from_message(
        message, bot_user_id=bot_user_id, webhook_ids=webhook_ids, character_name=character_name
    )
    return remembered(message, turn) if turn is not None else None
