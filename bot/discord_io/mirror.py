"""A channel's recent messages without asking Discord's REST API on every reply.

Every message the gateway delivers is already in discord.py's message cache (edits and
deletes applied). Messages from before this session are fetched once per channel and
kept here, edits and deletes applied as their events arrive. Together they cover a
channel's history without a gap, so replies after the first need no history request.
When a gap is possible (a new gateway session, or the cache evicting messages newer
than what was fetched) the caller fetches from Discord again.
"""

from __future__ import annotations

import datetime
from collections import OrderedDict
from dataclasses import dataclass

import discord
from discord.utils import time_snowflake

__all__ = ["HistoryMirror"]


@dataclass
class _Fetched:
    messages: list[discord.Message]  # oldest first
    until: int  # every message of the channel with an id below this (and after the first) is in messages


class HistoryMirror:
    """Recent channel history from the gateway cache plus one fetch per channel."""

    def __init__(self, client: discord.Client, *, cache_size: int, channels: int = 500,
                 messages: int = 20_000) -> None:
        self._client = client
        self._cache_size = cache_size  # the client's max_messages
        self._fetched: OrderedDict[int, _Fetched] = OrderedDict()
        self._channels = channels
        self._messages = messages  # fetched messages kept in all (the channels least used go first)
        self._session_start = time_snowflake(datetime.datetime.now(datetime.timezone.utc))

    def new_session(self) -> None:
        """A new gateway session: events may have been missed, forget what was fetched."""
        self._fetched.clear()
        self._session_start = time_snowflake(datetime.datetime.now(datetime.timezone.utc))

    def recent(self, channel_id: int, *, before: int, limit: int) -> list[discord.Message] | None:
        """Up to ``limit`` newest messages before id ``before``, oldest first; None if a fetch is needed."""
        live = [m for m in self._client.cached_messages if m.channel.id == channel_id and m.id < before]
        horizon = self._horizon()
        if len(live) >= limit:
            return live[-limit:]
        fetched = self._fetched.get(channel_id)
        if fetched is None or fetched.until < horizon:
            return None
        self._fetched.move_to_end(channel_id)
        older = [m for m in fetched.messages if m.id < min(before, horizon + 1)]
        seen = {m.id for m in live}
        merged = [m for m in older if m.id not in seen] + live
        return merged[-limit:]

    def remember(self, channel_id: int, messages: list[discord.Message], *, until: int) -> None:
        """Keep a fetch: ``messages`` (oldest first) are all of the channel's before id ``until``."""
        self._fetched[channel_id] = _Fetched(list(messages), until)
        self._fetched.move_to_end(channel_id)
        while len(self._fetched) > 1 and (
            len(self._fetched) > self._channels or sum(len(f.messages) for f in self._fetched.values()) > self._messages
        ):
            self._fetched.popitem(last=False)

    def edited(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Apply an edit to a fetched message."""
        fetched = self._fetched.get(payload.channel_id)
        if fetched is not None:
            fetched.messages = [payload.message if m.id == payload.message_id else m for m in fetched.messages]

    def deleted(self, channel_id: int, message_ids: set[int]) -> None:
        """Drop deleted messages from a fetch."""
        fetched = self._fetched.get(channel_id)
        if fetched is not None:
            fetched.messages = [m for m in fetched.messages if m.id not in message_ids]

    def _horizon(self) -> int:
        """Messages with a larger id are all in the gateway cache."""
        cache = self._client.cached_messages
        evicted = len(cache) >= self._cache_size
        return max(self._session_start, cache[0].id) if evicted and cache else self._session_start
