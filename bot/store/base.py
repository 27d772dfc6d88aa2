"""The store's interface: what the bot remembers, whatever engine keeps it.

The store keeps ids and plain values only, never Discord objects. Every write is its own
committed transaction, so a crash loses nothing written before it. Failures of the engine
(unreachable server, unreadable file) are raised as :class:`~bot.errors.StoreError` with the
store's URL, password redacted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from bot.store.events import LocalEvents, StoreEvents

__all__ = [
    "ChannelState", "Webhook", "StoreInfo", "Snapshot", "Store", "Remembered", "Recalled", "MemoryCount",
]


@dataclass(frozen=True)
class ChannelState:
    """What the bot remembers about one channel."""

    channel_id: int
    character: str | None = None
    fence_id: int | None = None
    anchor_id: str | None = None
    wake_words: bool | None = None
    note: str | None = None  # the channel's author's note to the character
    cast: tuple[str, ...] | None = None  # the characters who play in the channel (None: never set)
    summary: str | None = None  # the running summary of what scrolled out of the window
    memory: bool | None = None  # memory (recall, summary) in this channel; None: the config's default


@dataclass(frozen=True)
class Remembered:
    """One message kept for recall: who wrote it (``author_id``, for forget-me), the name it was
    shown under, its text as the prompt shows it, and when it was written (Unix seconds)."""

    message_id: int
    channel_id: int
    author_id: int
    speaker: str
    text: str
    at: int


@dataclass(frozen=True)
class Recalled:
    """A remembered message found by a search; ``score``: the engine's relevance, higher is better."""

    message_id: int
    speaker: str
    text: str
    score: float


@dataclass(frozen=True)
class MemoryCount:
    """How much is remembered in one channel: messages, and the oldest one's time (Unix seconds)."""

    messages: int
    oldest_at: int | None = None


@dataclass(frozen=True)
class Webhook:
    """A channel webhook the bot created (id and token are enough to post through it).

    ``avatar_hash`` identifies the avatar the bot last set on it (None: Discord's default).
    """

    channel_id: int
    webhook_id: int
    token: str
    avatar_hash: str | None = None


@dataclass(frozen=True)
class StoreInfo:
    """What ``python -m bot check`` reports: the store reached (redacted), its engine and schema."""

    url: str
    engine: str
    server: str
    schema_version: int


@dataclass(frozen=True)
class Snapshot:
    """Every row of every table, as plain values (for ``python -m bot store copy``)."""

    tables: dict[str, list[dict[str, object]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {table: len(rows) for table, rows in self.tables.items()}


class Store(ABC):
    """One store, whatever its engine. ``async with await Store.open(url_or_path) as store``, or
    ``async with open_store(url) as store``."""

    #: the store's URL with any password redacted (safe to log)
    url: str

    @classmethod
    async def open(cls, target: str | Path) -> Store:
        """Open (creating and upgrading as needed) the store at a URL, or a SQLite file path."""
        from bot.store.registry import connect
        from bot.store.urls import sqlite_url

        text = str(target)
        return await connect(text if "://" in text else sqlite_url(text))

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    _events: StoreEvents | None = None

    @property
    def events(self) -> StoreEvents:
        """Events between the processes sharing this store (no-one to tell for SQLite)."""
        if self._events is None:
            self._events = LocalEvents()
        return self._events

    @abstractmethod
    async def close(self) -> None:
        """Release the store (pending writes are already committed)."""

    @abstractmethod
    async def info(self) -> StoreInfo:
        """The store reached: redacted URL, engine, server version, schema version."""

    # ------------------------------------------------------------------ channels

    @abstractmethod
    async def channel(self, channel_id: int) -> ChannelState:
        """The channel's state (defaults when never written)."""

    @abstractmethod
    async def recent_channels(self, limit: int = 8) -> list[ChannelState]:
        """Channels with a remembered window, the one the character last spoke in first (for pre-warming)."""

    @abstractmethod
    async def set_channel_character(self, channel_id: int, character: str | None) -> None:
        """Choose the channel's character (None: fall back to the server's); resets the anchor."""

    @abstractmethod
    async def set_fence(self, channel_id: int, message_id: int) -> None:
        """Forget the channel's history up to and including ``message_id``; resets the anchor."""

    @abstractmethod
    async def set_anchor(self, channel_id: int, anchor_id: str | None) -> None:
        """Remember the first message of the channel's prompt window (set at each reply, so it
        also marks the channel as active now)."""

    @abstractmethod
    async def set_wake_words(self, channel_id: int, enabled: bool | None) -> None:
        """Turn wake words on or off in one channel (None: the config's default)."""

    @abstractmethod
    async def set_note(self, channel_id: int, note: str | None) -> None:
        """Set (or with None clear) the channel's author's note."""

    @abstractmethod
    async def set_cast(self, channel_id: int, cast: tuple[str, ...] | list[str] | None) -> None:
        """Set (or with None clear) the names of the characters who play in the channel, in order."""

    @abstractmethod
    async def set_summary(self, channel_id: int, summary: str | None) -> None:
        """Set (or with None clear) the running summary of the channel's older history."""

    @abstractmethod
    async def set_memory(self, channel_id: int, enabled: bool | None) -> None:
        """Turn memory on or off in one channel (None: the config's default)."""

    # ------------------------------------------------------------------ memory

    @abstractmethod
    async def remember(self, messages: Sequence[Remembered]) -> None:
        """Index messages for recall (a message already kept is replaced: its edit)."""

    @abstractmethod
    async def edit_remembered(self, message_id: int, text: str) -> None:
        """A kept message was edited (nothing if it is not kept)."""

    @abstractmethod
    async def forget_messages(self, message_ids: Sequence[int]) -> None:
        """Deleted messages leave the index."""

    @abstractmethod
    async def forget_channel_memory(self, channel_id: int, upto: int | None = None) -> int:
        """Drop the channel's kept messages (up to and including ``upto``, else all); returns how many."""

    @abstractmethod
    async def forget_author(self, author_id: int) -> dict[int, int]:
        """Drop every kept message written by ``author_id``, in every channel; returns how many
        per channel."""

    @abstractmethod
    async def prune_memory(self, before: int) -> int:
        """Drop kept messages written before ``before`` (Unix seconds); returns how many."""

    @abstractmethod
    async def memory_count(self, channel_id: int) -> MemoryCount:
        """How much of the channel is kept."""

    @abstractmethod
    async def recall(
        self, channel_id: int, terms: Sequence[str], *, at_least: int = 1, after_id: int, before_id: int,
        limit: int,
    ) -> list[Recalled]:
        """The channel's kept messages with ids strictly between ``after_id`` and ``before_id`` whose
        search words (:func:`bot.memory.words.index_words`) hold ``at_least`` (1 or 2) of ``terms``,
        best first, at most ``limit``. Terms too common to tell messages apart may be left out."""

    # ------------------------------------------------------------------ guilds

    @abstractmethod
    async def guild_character(self, guild_id: int) -> str | None:
        """The server's default character, if one was set."""

    @abstractmethod
    async def set_guild_character(self, guild_id: int, character: str | None) -> None:
        """Set the server's default character."""

    # ------------------------------------------------------------------ webhooks

    @abstractmethod
    async def webhook(self, channel_id: int) -> Webhook | None:
        """The webhook the bot uses in this channel, if any."""

    @abstractmethod
    async def set_webhook(self, channel_id: int, webhook_id: int, token: str) -> None:
        """Remember the channel's webhook (a new webhook has Discord's default avatar)."""

    @abstractmethod
    async def webhook_ids(self) -> set[int]:
        """Every webhook the bot has ever posted through (its past replies are the character's)."""

    @abstractmethod
    async def set_webhook_avatar(self, channel_id: int, webhook_id: int, avatar_hash: str | None) -> None:
        """Remember the avatar just set on the channel's webhook (nothing if it was replaced meanwhile)."""

    @abstractmethod
    async def forget_webhook(self, channel_id: int) -> None:
        """Drop a webhook that no longer works."""

    # ------------------------------------------------------------------ whole store

    @abstractmethod
    async def snapshot(self) -> Snapshot:
        """Every row of every table (one consistent read)."""

    @abstractmethod
    async def restore(self, snapshot: Snapshot, *, replace: bool = False) -> None:
        """Write a snapshot's rows in one transaction; with ``replace``, every existing row goes
        first. StoreError if the store already holds state and ``replace`` is false."""
