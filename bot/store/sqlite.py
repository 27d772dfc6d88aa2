"""The SQLite engine (aiosqlite): one file, the default store.

The database runs in WAL mode and every write is its own committed transaction, so a crash
(even SIGKILL) loses nothing written before it. ``PRAGMA user_version`` records the schema
version. Files written before versioned migrations (versions 1 to 3) do not always hold the
shape their number says (early version-1 files lack ``webhooks_used``, early version-3 files
lack ``channels.active_at``), so for them every migration runs; each is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from bot.errors import StoreError
from bot.ownership import write_hint
from bot.store.base import StoreInfo
from bot.store.migrations import LATEST, MIGRATIONS, AddColumn, render
from bot.store.sql import SqlStore, Statement
from bot.store.urls import sqlite_path, sqlite_url

__all__ = ["SqliteStore"]

log = logging.getLogger(__name__)

#: the last schema version written by the code before versioned migrations
_LEGACY_VERSION = 3


class SqliteStore(SqlStore):
    """The store in one SQLite file."""

    dialect = "sqlite"

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._lock = asyncio.Lock()  # one connection: one transaction at a time
        self.path = path
        self.url = sqlite_url(path)

    @classmethod
    async def connect(cls, url: str) -> SqliteStore:
        """Open (creating if needed) the file a ``sqlite:///`` URL names, and bring its schema up to date."""
        path = sqlite_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None)  # transactions are explicit
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the store {sqlite_url(path)}: {exc}{write_hint(path)}") from exc
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await _migrate(db, path)
        except (sqlite3.Error, OSError) as exc:
            await db.close()
            raise StoreError(f"cannot open the store {sqlite_url(path)}: {exc}{write_hint(path)}") from exc
        log.info("Store opened at %s", sqlite_url(path))
        return cls(db, path)

    async def close(self) -> None:
        try:
            await self._db.close()
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"cannot close the store {self.url}: {exc}") from exc

    async def info(self) -> StoreInfo:
        rows = await self._fetch("PRAGMA user_version")
        return StoreInfo(self.url, "sqlite", f"SQLite {sqlite3.sqlite_version}", int(rows[0][0]))  # type: ignore[call-overload]

    async def _fetch(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            async with self._lock, self._db.execute(sql, params) as cursor:
                return [tuple(row) for row in await cursor.fetchall()]
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"store read failed ({self.url}): {exc}") from exc

    async def _fetch_together(self, queries: Sequence[str]) -> list[list[tuple[object, ...]]]:
        try:
            async with self._lock:
                results = await self._read_in_transaction(queries)
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"store read failed ({self.url}): {exc}") from exc
        return results

    async def _read_in_transaction(self, queries: Sequence[str]) -> list[list[tuple[object, ...]]]:
        await self._db.execute("BEGIN")
        try:
            results = []
            for sql in queries:
                async with self._db.execute(sql) as cursor:
                    results.append([tuple(row) for row in await cursor.fetchall()])
        finally:
            await self._db.execute("COMMIT")
        return results

    async def _write(self, statements: Sequence[Statement]) -> None:
        try:
            async with self._lock:
                await self._db.execute("BEGIN IMMEDIATE")
                try:
                    for sql, params in statements:
                        await self._db.execute(sql, params)
                except BaseException:
                    await self._db.execute("ROLLBACK")
                    raise
                await self._db.execute("COMMIT")
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"store write failed ({self.url}): {exc}") from exc


async def _migrate(db: aiosqlite.Connection, path: Path) -> None:
    """Run the migrations the file lacks, each in its own transaction with its version number."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    recorded = int(row[0]) if row else 0
    if recorded > LATEST:
        log.warning("Store %s has schema version %d, newer than this Troupe's %d; its extra columns are unused",
                    sqlite_url(path), recorded, LATEST)
        return
    start = 0 if recorded <= _LEGACY_VERSION else recorded
    for migration in MIGRATIONS:
        if migration.version <= start:
            continue
        await db.execute("BEGIN IMMEDIATE")
        try:
            for step in migration.steps:
                if isinstance(step, AddColumn) and await _has_column(db, step.table, step.column.name):
                    continue
                sql = render(step, "sqlite")
                if sql:
                    await db.execute(sql)
            await db.execute(f"PRAGMA user_version={max(migration.version, recorded)}")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")
        if migration.version > recorded:
            log.info("Store %s: schema version %d (%s)", sqlite_url(path), migration.version, migration.summary)


async def _has_column(db: aiosqlite.Connection, table: str, column: str) -> bool:
    async with db.execute(f"PRAGMA table_info({table})") as cursor:
        return column in {row[1] for row in await cursor.fetchall()}
