"""Persistent state in SQLite (aiosqlite): characters per channel and server, fences,
window anchors and webhooks (with the avatar last set on each). Ids and plain values
only, never Discord objects.

The database runs in WAL mode and every write is its own committed transaction,
so a crash (even SIGKILL) loses nothing that was written before it. A database
written by an older version is brought up to date when it is opened: columns are
added, never dropped, and ``PRAGMA user_version`` records the schema version.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiosqlite

from bot.errors import StoreError

__all__ = ["ChannelState", "Webhook", "Store"]

log = logging.getLogger(__name__)

_SCHEMA_VERSION = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    channel_id   INTEGER PRIMARY KEY,
    character    TEXT,
    fence_id     INTEGER,
    anchor_id    TEXT,
    wake_words   INTEGER,
    note         TEXT,
    active_at    INTEGER
);
CREATE TABLE IF NOT EXISTS guilds (
    guild_id     INTEGER PRIMARY KEY,
    character    TEXT
);
CREATE TABLE IF NOT EXISTS webhooks (
    channel_id   INTEGER PRIMARY KEY,
    webhook_id   INTEGER NOT NULL,
    token        TEXT NOT NULL,
    avatar_hash  TEXT
);
CREATE TABLE IF NOT EXISTS webhooks_used (
    webhook_id   INTEGER PRIMARY KEY
);
"""
#: columns added since version 1, by table: (column, SQL type); added to older databases on open
_ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "webhooks": (("avatar_hash", "TEXT"),),  # version 2
    "channels": (("note", "TEXT"), ("active_at", "INTEGER")),  # version 3
}


@dataclass(frozen=True)
class ChannelState:
    """What the bot remembers about one channel."""

    channel_id: int
    character: str | None = None
    fence_id: int | None = None
    anchor_id: str | None = None
    wake_words: bool | None = None
    note: str | None = None  # the channel's author's note to the character


_CHANNEL_COLUMNS = "character, fence_id, anchor_id, wake_words, note"


def _channel_state(
    channel_id: int, character: str | None, fence_id: int | None, anchor_id: str | None,
    wake_words: int | None, note: str | None,
) -> ChannelState:
    wake = None if wake_words is None else bool(wake_words)
    return ChannelState(channel_id, character, fence_id, anchor_id, wake, note)


@dataclass(frozen=True)
class Webhook:
    """A channel webhook the bot created (id and token are enough to post through it).

    ``avatar_hash`` identifies the avatar the bot last set on it (None: Discord's default).
    """

    channel_id: int
    webhook_id: int
    token: str
    avatar_hash: str | None = None


class Store:
    """The SQLite store. Use ``async with Store.open(path) as store``."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) the database file."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.executescript(_SCHEMA)
            await _upgrade(db)
            await db.commit()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from exc
        log.info("Store opened at %s", path)
        return cls(db, path)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the database (pending writes are already committed)."""
        try:
            await self._db.close()
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"cannot close the store {self.path}: {exc}") from exc

    # ------------------------------------------------------------------ channels

    async def channel(self, channel_id: int) -> ChannelState:
        """The channel's state (defaults when never written)."""
        row = await self._one(f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE channel_id = ?", (channel_id,))
        return ChannelState(channel_id) if row is None else _channel_state(channel_id, *row)  # type: ignore[arg-type]

    async def recent_channels(self, limit: int = 8) -> list[ChannelState]:
        """Channels with a remembered window, the one the character last spoke in first (for pre-warming)."""
        try:
            async with self._db.execute(
                f"SELECT channel_id, {_CHANNEL_COLUMNS} FROM channels "
                "WHERE anchor_id IS NOT NULL ORDER BY active_at DESC, rowid DESC LIMIT ?", (limit,)
            ) as cursor:
                rows = await cursor.fetchall()
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"store read failed ({self.path}): {exc}") from exc
        return [_channel_state(*row) for row in rows]

    async def set_channel_character(self, channel_id: int, character: str | None) -> None:
        """Choose the channel's character (None: fall back to the server's)."""
        await self._upsert_channel(channel_id, character=character, anchor_id=None)

    async def set_fence(self, channel_id: int, message_id: int) -> None:
        """Forget the channel's history up to and including ``message_id``."""
        await self._upsert_channel(channel_id, fence_id=message_id, anchor_id=None)

    async def set_anchor(self, channel_id: int, anchor_id: str | None) -> None:
        """Remember the first message of the channel's prompt window (set at each reply, so it
        also marks the channel as active now)."""
        await self._upsert_channel(channel_id, anchor_id=anchor_id, active_at=time.time_ns())

    async def set_wake_words(self, channel_id: int, enabled: bool | None) -> None:
        """Turn wake words on or off in one channel (None: the config's default)."""
        await self._upsert_channel(channel_id, wake_words=None if enabled is None else int(enabled))

    async def set_note(self, channel_id: int, note: str | None) -> None:
        """Set (or with None clear) the channel's author's note."""
        await self._upsert_channel(channel_id, note=note)

    async def _upsert_channel(self, channel_id: int, **values: object) -> None:
        columns = list(values)  # keyword names chosen by this class, never user input
        assert set(columns) <= {"character", "fence_id", "anchor_id", "wake_words", "note", "active_at"}
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
        await self._write(
            f"INSERT INTO channels (channel_id, {', '.join(columns)}) VALUES (?{', ?' * len(columns)}) "
            f"ON CONFLICT(channel_id) DO UPDATE SET {updates}",
            (channel_id, *values.values()),
        )

    # ------------------------------------------------------------------ guilds

    async def guild_character(self, guild_id: int) -> str | None:
        """The server's default character, if one was set."""
        row = await self._one("SELECT character FROM guilds WHERE guild_id = ?", (guild_id,))
        return row[0] if row else None

    async def set_guild_character(self, guild_id: int, character: str | None) -> None:
        """Set the server's default character."""
        await self._write(
            "INSERT INTO guilds (guild_id, character) VALUES (?, ?) "
            "ON CONFLICT(guild_id) DO UPDATE SET character = excluded.character",
            (guild_id, character),
        )

    # ------------------------------------------------------------------ webhooks

    async def webhook(self, channel_id: int) -> Webhook | None:
        """The webhook the bot uses in this channel, if any."""
        row = await self._one(
            "SELECT webhook_id, token, avatar_hash FROM webhooks WHERE channel_id = ?", (channel_id,)
        )
        return Webhook(channel_id, row[0], row[1], row[2]) if row else None

    async def set_webhook(self, channel_id: int, webhook_id: int, token: str) -> None:
        """Remember the channel's webhook (a new webhook has Discord's default avatar)."""
        await self._write(
            "INSERT INTO webhooks (channel_id, webhook_id, token) VALUES (?, ?, ?) "
            "ON CONFLICT(channel_id) DO UPDATE SET webhook_id = excluded.webhook_id, token = excluded.token, "
            "avatar_hash = NULL",
            (channel_id, webhook_id, token),
        )
        await self._write("INSERT OR IGNORE INTO webhooks_used (webhook_id) VALUES (?)", (webhook_id,))

    async def webhook_ids(self) -> set[int]:
        """Every webhook the bot has ever posted through (its past replies are the character's)."""
        try:
            async with self._db.execute(
                "SELECT webhook_id FROM webhooks_used UNION SELECT webhook_id FROM webhooks"
            ) as cursor:
                return {int(row[0]) for row in await cursor.fetchall()}
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"store read failed ({self.path}): {exc}") from exc

    async def set_webhook_avatar(self, channel_id: int, webhook_id: int, avatar_hash: str | None) -> None:
        """Remember the avatar just set on the channel's webhook (nothing if it was replaced meanwhile)."""
        await self._write(
            "UPDATE webhooks SET avatar_hash = ? WHERE channel_id = ? AND webhook_id = ?",
            (avatar_hash, channel_id, webhook_id),
        )

    async def forget_webhook(self, channel_id: int) -> None:
        """Drop a webhook that no longer works."""
        await self._write("DELETE FROM webhooks WHERE channel_id = ?", (channel_id,))

    # ------------------------------------------------------------------ plumbing

    async def _one(self, sql: str, params: tuple[object, ...]) -> tuple[object, ...] | None:
        try:
            async with self._db.execute(sql, params) as cursor:
                row = await cursor.fetchone()
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"store read failed ({self.path}): {exc}") from exc
        return tuple(row) if row is not None else None

    async def _write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            await self._db.execute(sql, params)
            await self._db.commit()
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"store write failed ({self.path}): {exc}") from exc


async def _upgrade(db: aiosqlite.Connection) -> None:
    """Add the columns an older database lacks and record the schema version.

    A database from a newer version keeps its version number (its extra columns are unused).
    """
    for table, columns in _ADDED_COLUMNS.items():
        async with db.execute(f"PRAGMA table_info({table})") as cursor:
            present = {row[1] for row in await cursor.fetchall()}
        for name, sql_type in columns:
            if name not in present:
                log.info("Store: adding %s.%s (schema version %d)", table, name, _SCHEMA_VERSION)
                await db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    if row is None or row[0] < _SCHEMA_VERSION:
        await db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
