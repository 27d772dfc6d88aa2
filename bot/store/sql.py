"""The store's queries, written once for every SQL engine.

An engine supplies three things: run a read, run several reads in one transaction, and run
several writes in one committed transaction. Queries use ``?`` placeholders; an engine whose
driver wants another style rewrites them. Upserts (``INSERT ... ON CONFLICT``) and the
ordering used here mean the same in SQLite and PostgreSQL, so both engines behave alike.
"""

from __future__ import annotations

import itertools
import json
import time
from abc import abstractmethod
from collections.abc import Sequence

from bot.errors import StoreError
from bot.memory.words import index_words
from bot.store.base import ChannelState, MemoryCount, Recalled, Remembered, Snapshot, Store, Webhook
from bot.store.migrations import Dialect, table_columns

__all__ = ["SqlStore", "Statement"]

#: one SQL statement and its parameters
Statement = tuple[str, tuple[object, ...]]

_CHANNEL_COLUMNS = "character, fence_id, anchor_id, wake_words, note, cast_names, summary, memory"
_SETTABLE = {
    "character", "fence_id", "anchor_id", "wake_words", "note", "active_at", "cast_names", "summary",
    "memory",
}

#: the channel's kept messages, between two ids, whose words hold one of the groups the match
#: names; best first (SQLite: bm25, PostgreSQL: ts_rank)
_RECALL: dict[Dialect, str] = {
    "sqlite": (
        "SELECT m.message_id, m.speaker, m.text, -bm25(memory_fts) AS score FROM memory_fts "
        "JOIN memory m ON m.message_id = memory_fts.rowid "
        "WHERE memory_fts MATCH ? AND memory_fts.rowid > ? AND memory_fts.rowid < ? AND m.channel_id = ? "
        "ORDER BY score DESC LIMIT ?"
    ),
    "postgresql": (
        "SELECT message_id, speaker, text, ts_rank(search, q) AS score "
        "FROM memory, to_tsquery('simple', ?) q "
        "WHERE search @@ q AND message_id > ? AND message_id < ? AND channel_id = ? "
        "ORDER BY score DESC, message_id DESC LIMIT ?"
    ),
}
#: a word kept in more than this share of all messages says too little to search by (SQLite)
_COMMON_SHARE = 0.02
_COMMON_FLOOR = 200  # ... but a word in this many messages or fewer is always searched


def _match(dialect: Dialect, terms: Sequence[str], at_least: int) -> str:
    """The engine's full-text query: messages holding ``at_least`` (1 or 2) of ``terms``
    (terms are \\w+ words, quoted for FTS5)."""
    quote = (lambda t: f'"{t}"') if dialect == "sqlite" else (lambda t: t)
    either, both = (" OR ", " AND ") if dialect == "sqlite" else (" | ", " & ")
    if at_least <= 1 or len(terms) < 2:
        return either.join(quote(t) for t in terms)
    return either.join(f"({quote(a)}{both}{quote(b)})" for a, b in itertools.combinations(terms, 2))


def _channel_state(
    channel_id: int, character: str | None, fence_id: int | None, anchor_id: str | None,
    wake_words: int | None, note: str | None, cast_names: str | None, summary: str | None,
    memory: int | None = None,
) -> ChannelState:
    wake = None if wake_words is None else bool(wake_words)
    cast = None if cast_names is None else tuple(json.loads(cast_names))
    remembers = None if memory is None else bool(memory)
    return ChannelState(int(channel_id), character, fence_id, anchor_id, wake, note, cast, summary, remembers)


class SqlStore(Store):
    """The store's behaviour over any SQL engine (subclasses supply the driver)."""

    #: which engine's SQL the few engine-specific queries (full-text search) use
    dialect: Dialect

    # ------------------------------------------------------------------ engine

    @abstractmethod
    async def _fetch(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Rows of one read."""

    @abstractmethod
    async def _fetch_together(self, queries: Sequence[str]) -> list[list[tuple[object, ...]]]:
        """Rows of several reads made in one transaction (one consistent view)."""

    @abstractmethod
    async def _write(self, statements: Sequence[Statement]) -> None:
        """Run the statements in one transaction and commit."""

    # ------------------------------------------------------------------ channels

    async def channel(self, channel_id: int) -> ChannelState:
        rows = await self._fetch(f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE channel_id = ?", (channel_id,))
        return _channel_state(channel_id, *rows[0]) if rows else ChannelState(channel_id)  # type: ignore[arg-type]

    async def recent_channels(self, limit: int = 8) -> list[ChannelState]:
        rows = await self._fetch(
            f"SELECT channel_id, {_CHANNEL_COLUMNS} FROM channels WHERE anchor_id IS NOT NULL "
            "ORDER BY active_at IS NULL, active_at DESC, channel_id DESC LIMIT ?",
            (limit,),
        )
        return [_channel_state(*row) for row in rows]  # type: ignore[arg-type]

    async def set_channel_character(self, channel_id: int, character: str | None) -> None:
        await self._upsert_channel(channel_id, character=character, anchor_id=None)

    async def set_fence(self, channel_id: int, message_id: int) -> None:
        await self._upsert_channel(channel_id, fence_id=message_id, anchor_id=None)

    async def set_anchor(self, channel_id: int, anchor_id: str | None) -> None:
        await self._upsert_channel(channel_id, anchor_id=anchor_id, active_at=time.time_ns())

    async def set_wake_words(self, channel_id: int, enabled: bool | None) -> None:
        await self._upsert_channel(channel_id, wake_words=None if enabled is None else int(enabled))

    async def set_note(self, channel_id: int, note: str | None) -> None:
        await self._upsert_channel(channel_id, note=note)

    async def set_cast(self, channel_id: int, cast: tuple[str, ...] | list[str] | None) -> None:
        await self._upsert_channel(channel_id, cast_names=None if cast is None else json.dumps(list(cast)))

    async def set_summary(self, channel_id: int, summary: str | None) -> None:
        await self._upsert_channel(channel_id, summary=summary)

    async def set_memory(self, channel_id: int, enabled: bool | None) -> None:
        await self._upsert_channel(channel_id, memory=None if enabled is None else int(enabled))

    async def _upsert_channel(self, channel_id: int, **values: object) -> None:
        columns = list(values)  # keyword names chosen by this class, never user input
        assert set(columns) <= _SETTABLE
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
        await self._write([(
            f"INSERT INTO channels (channel_id, {', '.join(columns)}) VALUES (?{', ?' * len(columns)}) "
            f"ON CONFLICT (channel_id) DO UPDATE SET {updates}",
            (channel_id, *values.values()),
        )])

    # ------------------------------------------------------------------ memory

    async def remember(self, messages: Sequence[Remembered]) -> None:
        if not messages:
            return
        await self._write([(
            "INSERT INTO memory (message_id, channel_id, author_id, speaker, text, words, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO UPDATE SET speaker = excluded.speaker, "
            "text = excluded.text, words = excluded.words",
            (m.message_id, m.channel_id, m.author_id, m.speaker, m.text, index_words(m.text), m.at),
        ) for m in messages])

    async def edit_remembered(self, message_id: int, text: str) -> None:
        await self._write([(
            "UPDATE memory SET text = ?, words = ? WHERE message_id = ? AND text <> ?",
            (text, index_words(text), message_id, text),
        )])

    async def forget_messages(self, message_ids: Sequence[int]) -> None:
        ids = list(message_ids)
        if ids:
            marks = ", ".join("?" * len(ids))
            await self._write([(f"DELETE FROM memory WHERE message_id IN ({marks})", tuple(ids))])

    async def forget_channel_memory(self, channel_id: int, upto: int | None = None) -> int:
        where, params = ("channel_id = ? AND message_id <= ?", (channel_id, upto)) if upto is not None else (
            "channel_id = ?", (channel_id,))
        return await self._delete_counted(where, params)

    async def forget_author(self, author_id: int) -> dict[int, int]:
        rows = await self._fetch(
            "SELECT channel_id, count(*) FROM memory WHERE author_id = ? GROUP BY channel_id", (author_id,)
        )
        if rows:
            await self._write([("DELETE FROM memory WHERE author_id = ?", (author_id,))])
        return {int(channel): int(count) for channel, count in rows}  # type: ignore[call-overload]

    async def prune_memory(self, before: int) -> int:
        return await self._delete_counted("at < ?", (before,))

    async def _delete_counted(self, where: str, params: tuple[object, ...]) -> int:
        rows = await self._fetch(f"SELECT count(*) FROM memory WHERE {where}", params)
        count = int(rows[0][0])  # type: ignore[call-overload]
        if count:
            await self._write([(f"DELETE FROM memory WHERE {where}", params)])
        return count

    async def memory_count(self, channel_id: int) -> MemoryCount:
        rows = await self._fetch("SELECT count(*), min(at) FROM memory WHERE channel_id = ?", (channel_id,))
        count, oldest = rows[0]
        return MemoryCount(int(count), None if oldest is None else int(oldest))  # type: ignore[call-overload]

    async def recall(
        self, channel_id: int, terms: Sequence[str], *, at_least: int = 1, after_id: int, before_id: int,
        limit: int,
    ) -> list[Recalled]:
        terms = await self._telling(list(dict.fromkeys(terms)))
        if not terms or limit <= 0 or before_id <= after_id + 1:
            return []
        rows = await self._fetch(
            _RECALL[self.dialect],
            (_match(self.dialect, terms, at_least), after_id, before_id, channel_id, limit),
        )
        return [
            Recalled(int(i), str(speaker), str(text), float(score))  # type: ignore[call-overload, arg-type]
            for i, speaker, text, score in rows
        ]

    async def _telling(self, terms: list[str]) -> list[str]:
        """The terms worth searching by: words in no kept message, and words found in more than a
        small share of them (they match thousands of messages and find nothing particular), are
        left out. SQLite reads each word's count from FTS5's vocabulary table; PostgreSQL counts
        through the GIN index, stopping once a word is known to be too common."""
        if not terms:
            return terms
        if self.dialect == "sqlite":
            marks = ", ".join("?" * len(terms))
            counts = dict(await self._fetch(
                f"SELECT term, doc FROM memory_fts_vocab WHERE term IN ({marks})", tuple(terms)
            ))
            total = await self._fetch("SELECT count(*) FROM memory_fts_docsize")
            limit = int(max(_COMMON_FLOOR, _COMMON_SHARE * int(total[0][0])))  # type: ignore[call-overload]
        else:
            total = await self._fetch("SELECT greatest(reltuples, 0) FROM pg_class WHERE relname = 'memory'")
            limit = int(max(_COMMON_FLOOR, _COMMON_SHARE * float(total[0][0] if total else 0)))  # type: ignore[arg-type]
            counts = dict(await self._fetch(
                "SELECT t, (SELECT count(*) FROM (SELECT 1 FROM memory WHERE search @@ to_tsquery('simple', t) "
                "LIMIT ?) AS s) FROM unnest(?::text[]) AS t", (limit + 1, terms)
            ))
        return [t for t in terms if 0 < int(counts.get(t, 0)) <= limit]  # type: ignore[call-overload]

    # ------------------------------------------------------------------ guilds

    async def guild_character(self, guild_id: int) -> str | None:
        rows = await self._fetch("SELECT character FROM guilds WHERE guild_id = ?", (guild_id,))
        return rows[0][0] if rows else None  # type: ignore[return-value]

    async def set_guild_character(self, guild_id: int, character: str | None) -> None:
        await self._write([(
            "INSERT INTO guilds (guild_id, character) VALUES (?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET character = excluded.character",
            (guild_id, character),
        )])

    # ------------------------------------------------------------------ webhooks

    async def webhook(self, channel_id: int) -> Webhook | None:
        rows = await self._fetch(
            "SELECT webhook_id, token, avatar_hash FROM webhooks WHERE channel_id = ?", (channel_id,)
        )
        if not rows:
            return None
        webhook_id, token, avatar_hash = rows[0]
        return Webhook(channel_id, int(webhook_id), token, avatar_hash)  # type: ignore[arg-type, call-overload]

    async def set_webhook(self, channel_id: int, webhook_id: int, token: str) -> None:
        await self._write([
            (
                "INSERT INTO webhooks (channel_id, webhook_id, token) VALUES (?, ?, ?) "
                "ON CONFLICT (channel_id) DO UPDATE SET webhook_id = excluded.webhook_id, "
                "token = excluded.token, avatar_hash = NULL",
                (channel_id, webhook_id, token),
            ),
            ("INSERT INTO webhooks_used (webhook_id) VALUES (?) ON CONFLICT (webhook_id) DO NOTHING", (webhook_id,)),
        ])

    async def webhook_ids(self) -> set[int]:
        rows = await self._fetch("SELECT webhook_id FROM webhooks_used UNION SELECT webhook_id FROM webhooks")
        return {int(row[0]) for row in rows}  # type: ignore[call-overload]

    async def set_webhook_avatar(self, channel_id: int, webhook_id: int, avatar_hash: str | None) -> None:
        await self._write([(
            "UPDATE webhooks SET avatar_hash = ? WHERE channel_id = ? AND webhook_id = ?",
            (avatar_hash, channel_id, webhook_id),
        )])

    async def forget_webhook(self, channel_id: int) -> None:
        await self._write([("DELETE FROM webhooks WHERE channel_id = ?", (channel_id,))])

    # ------------------------------------------------------------------ whole store

    async def snapshot(self) -> Snapshot:
        tables = table_columns()
        queries = [f"SELECT {', '.join(cols)} FROM {table} ORDER BY {cols[0]}" for table, cols in tables.items()]
        results = await self._fetch_together(queries)
        return Snapshot({
            table: [dict(zip(cols, row, strict=True)) for row in rows]
            for (table, cols), rows in zip(tables.items(), results, strict=True)
        })

    async def restore(self, snapshot: Snapshot, *, replace: bool = False) -> None:
        tables = table_columns()
        unknown = set(snapshot.tables) - set(tables)
        if unknown:
            raise StoreError(f"{self.url}: the copy holds tables this version does not know: {sorted(unknown)}")
        if not replace:
            held = {t: n for t, n in (await self.snapshot()).counts().items() if n}
            if held:
                counts = ", ".join(f"{n} {t}" for t, n in held.items())
                raise StoreError(f"{self.url} already holds state ({counts}); copy into an empty store or replace it")
        statements: list[Statement] = [(f"DELETE FROM {table}", ()) for table in tables] if replace else []
        for table, rows in snapshot.tables.items():
            for row in rows:
                cols = [c for c in tables[table] if c in row]
                statements.append((
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    tuple(row[c] for c in cols),
                ))
        await self._write(statements)
