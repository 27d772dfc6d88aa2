"""A channel's conversation as turns: recent messages (mirrored, REST only when needed)
after the conversation's fence, out-of-character lines left out, names made consistent.
What it reads is handed to memory, which keeps what it did not have yet."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable

import discord

from bot.cards.model import Character
from bot.conversations import Conversation
from bot.discord_io.mirror import HistoryMirror
from bot.discord_io.remembering import remembered
from bot.discord_io.replies import member_names, turn_from_message
from bot.memory import Memory
from bot.prompt.types import Turn
from bot.routing import out_of_character

__all__ = ["ChannelHistory"]

log = logging.getLogger(__name__)

_MOST_FETCHED = 400  # messages read per reply at most: twice the largest window (prompt.history_messages <= 200)


class ChannelHistory:
    """Reads channels' recent messages as turns for the ChatService."""

    def __init__(
        self, client: discord.Client, *, cache_size: int, webhook_ids: Callable[[], Iterable[int]],
        window: Callable[[], int], ooc_prefixes: Callable[[], Iterable[str]], memory: Memory | None = None,
    ) -> None:
        self._client = client
        self.mirror = HistoryMirror(client, cache_size=cache_size)
        self._webhook_ids = webhook_ids
        self._window = window  # prompt.history_messages, which a config reload may change
        self._ooc_prefixes = ooc_prefixes
        self._memory = memory

    async def turns(
        self, channel: discord.abc.Messageable, character: Character, conversation: Conversation, *,
        upto: discord.Message | None = None, before: discord.Message | None = None, scene: bool = False,
    ) -> list[Turn]:
        """The channel's recent messages after its fence, oldest first, as turns: those
        before ``before`` (a reply being rewritten), or up to and including ``upto``
        (``scene``: several characters speak here, each message is its own speaker's)."""
        # twice the window: the builder keeps at most history_messages turns, counted from the
        # conversation's anchor, so the window can slide by a slice at a time instead of every message
        limit = min(_MOST_FETCHED, 2 * self._window())
        end = before or upto
        wanted = limit - (1 if upto and not before else 0)
        messages = await self._messages_before(channel, end, wanted)
        if upto is not None and before is None:
            messages.append(upto)
        if isinstance(channel, discord.Thread) and not any(m.id == channel.id for m in messages):
            starter = await _thread_starter(channel)
            if starter is not None:
                messages.insert(0, starter)
        return self._as_turns(channel, character, conversation, messages, scene)

    def _as_turns(
        self, channel: discord.abc.Messageable, character: Character, conversation: Conversation,
        messages: list[discord.Message], scene: bool,
    ) -> list[Turn]:
        fence = conversation.fence_id or 0
        me = self._client.user.id if self._client.user else 0
        guild = getattr(channel, "guild", None)
        names = member_names([*self._client.cached_messages, *messages], guild.id if guild else None)
        webhook_ids = set(self._webhook_ids())
        ooc = tuple(self._ooc_prefixes())
        turns = []
        seen = []
        for message in messages:
            if message.id <= fence or out_of_character(message.content, ooc):
                continue
            turn = turn_from_message(
                message, bot_user_id=me, webhook_ids=webhook_ids,
                character_name=character.display_name, name=names.get(message.author.id), scene=scene,
            )
            if turn is not None:
                turns.append(turn)
                seen.append(remembered(message, turn))
        if self._memory is not None:
            self._memory.observe(conversation, seen)
        return turns

    async def _messages_before(
        self, channel: discord.abc.Messageable, end: discord.Message | None, wanted: int
    ) -> list[discord.Message]:
        """The channel's newest ``wanted`` messages before ``end``, oldest first (REST only when needed)."""
        channel_id: int = channel.id  # type: ignore[attr-defined]
        before_id = end.id if end is not None else discord.utils.time_snowflake(discord.utils.utcnow(), high=True)
        mirrored = self.mirror.recent(channel_id, before=before_id, limit=wanted)
        if mirrored is not None:
            return mirrored
        try:
            messages = [m async for m in channel.history(limit=wanted, before=end)]
        except discord.Forbidden as exc:  # no Read Message History here
            log.warning("Cannot read the history of channel %s (%s); answering the message alone", channel_id, exc)
            return []
        messages.reverse()
        self.mirror.remember(channel_id, messages, until=before_id)
        return messages


async def _thread_starter(thread: discord.Thread) -> discord.Message | None:
    if thread.starter_message is not None:
        return thread.starter_message
    parent = thread.parent
    if not isinstance(parent, discord.TextChannel):
        return None
    with contextlib.suppress(discord.HTTPException):
        return await parent.fetch_message(thread.id)
    return None
