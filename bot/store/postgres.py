"""The PostgreSQL engine (asyncpg with a connection pool): a store several processes share.

The URL is libpq's (``postgresql://user:password@host:port/db``, ``?host=/socket/dir`` for a
Unix socket); a password left out of it comes from ``PGPASSWORD`` (or ``~/.pgpass``), as
with every PostgreSQL client. Migrations run in one transaction under an advisory lock, so
processes starting together upgrade the schema once; ``troupe_schema`` records each version.

When the server goes away, reads and writes raise StoreError naming the (redacted) URL; a
call that meets a connection the server dropped retries once on a fresh one (every write is
an idempotent upsert), and the pool reconnects by itself when the server is back.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg

from bot.errors import StoreError
from bot.store.base import StoreInfo
from bot.store.events import PostgresEvents
from bot.store.migrations import LATEST, MIGRATIONS, render
from bot.store.sql import SqlStore, Statement
from bot.store.urls import redact, scrub

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds to connect, and for one statement, before the store counts as unreachable
_TIMEOUT = 10.0
#: key of the advisory lock held while migrating (any constant; "troupe" in ASCII)
_MIGRATION_LOCK = 0x74726F757065
_SCHEMA_TABLE = (
    "CREATE TABLE IF NOT EXISTS troupe_schema (version INTEGER PRIMARY KEY, summary TEXT NOT NULL, "
    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)
#: errors that mean the connection, not the statement, failed
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,  # includes ConnectionDoesNotExistError
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # the server is shutting down or starting
    # a connection the server dropped mid-use can leave asyncpg's protocol in an impossible state
    # ("cannot switch to state 11; another operation is in progress"): a fresh connection fixes it
    asyncpg.exceptions.InternalClientError,
)


#: set while writing what only saves work (a window anchor): that commit does not wait for the disk
_HASTY: contextvars.ContextVar[bool] = contextvars.ContextVar("troupe_hasty_commit", default=False)


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> str:
    """``?`` placeholders as asyncpg's ``$1, $2, ...`` (the store's SQL has no ``?`` in literals)."""
    count = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


class PostgresStore(SqlStore):
    """The store in a PostgreSQL database."""

    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn
        self.url = redact(dsn)
        self._unreachable = False
        self._events = PostgresEvents(dsn, self.url)

    @classmethod
    async def connect(cls, url: str, *, max_connections: int = 10) -> PostgresStore:
        """Connect a pool to the database a ``postgresql://`` URL names and bring its schema up to date."""
        shown = redact(url)
        try:
            pool = await asyncpg.create_pool(
                url, min_size=0, max_size=max_connections, timeout=_TIMEOUT, command_timeout=_TIMEOUT
            )
        except (asyncpg.PostgresError, *_CONNECTION_ERRORS, TimeoutError, ValueError) as exc:
            raise StoreError(f"cannot reach the store {shown}: {scrub(_describe(exc), url)}") from exc
        store = cls(pool, url)
        try:
            await store._run(store._migrate, "open")
        except BaseException:
            await pool.close()
            raise
        log.info("Store opened at %s", shown)
        return store

    async def close(self) -> None:
        await self.events.close()
        try:
            await asyncio.wait_for(self._pool.close(), _TIMEOUT)
        except (asyncpg.PostgresError, *_CONNECTION_ERRORS, TimeoutError) as exc:
            self._pool.terminate()
            log.warning("Store %s closed abruptly: %s", self.url, scrub(_describe(exc), self._dsn))

    async def info(self) -> StoreInfo:
        async def read(conn: asyncpg.Connection) -> StoreInfo:
            server = await conn.fetchval("SHOW server_version")
            version = await conn.fetchval("SELECT max(version) FROM troupe_schema")
            return StoreInfo(self.url, "postgresql", f"PostgreSQL {server}", int(version or 0))

        return await self._run(read)

    async def set_anchor(self, channel_id: int, anchor_id: str | None) -> None:
        """The window's anchor changes with nearly every reply and only saves re-reading, so its
        commit does not wait for the disk (``synchronous_commit`` off for that transaction: about
        12 ms less per reply here; a server crash may lose the last anchors, a clean stop none)."""
        hasty = _HASTY.set(True)
        try:
            await super().set_anchor(channel_id, anchor_id)
        finally:
            _HASTY.reset(hasty)

    # ------------------------------------------------------------------ engine

    async def _fetch(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        async def read(conn: asyncpg.Connection) -> list[tuple[object, ...]]:
            return [tuple(row) for row in await conn.fetch(_numbered(sql), *params)]

        return await self._run(read)

    async def _fetch_together(self, queries: Sequence[str]) -> list[list[tuple[object, ...]]]:
        async def read(conn: asyncpg.Connection) -> list[list[tuple[object, ...]]]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return [[tuple(row) for row in await conn.fetch(sql)] for sql in queries]

        return await self._run(read, "read")

    async def _write(self, statements: Sequence[Statement]) -> None:
        async def write(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                if _HASTY.get():
                    await conn.execute("SET LOCAL synchronous_commit = off")
                for sql, params in statements:
                    await conn.execute(_numbered(sql), *params)

        await self._run(write, "write")

    async def _run(self, work: Callable[[asyncpg.Connection], Awaitable[T]], action: str = "read") -> T:
        """Run ``work`` on a pooled connection; once more on a fresh one if the connection was dropped."""
        for attempt in (1, 2):
            try:
                async with self._pool.acquire(timeout=_TIMEOUT) as conn:
                    result = await work(conn)
            except TimeoutError as exc:  # before OSError, its base class: a timeout is not retried
                self._went_away(exc, action)
                raise StoreError(f"store timed out ({self.url}) after {_TIMEOUT:g} s; the {action} may not "
                                 "have been made") from exc
            except _CONNECTION_ERRORS as exc:
                if attempt == 1:
                    await self._pool.expire_connections()  # every pooled connection may be stale: reconnect
                    continue
                self._went_away(exc, action)
                raise StoreError(
                    f"store unreachable ({self.url}): {scrub(_describe(exc), self._dsn)}; the {action} failed"
                ) from exc
            except asyncpg.PostgresError as exc:
                raise StoreError(f"store {action} failed ({self.url}): {scrub(_describe(exc), self._dsn)}") from exc
            if self._unreachable:
                self._unreachable = False
                log.warning("Store %s is reachable again", self.url)
            return result
        raise AssertionError("unreachable")

    def _went_away(self, exc: BaseException, action: str) -> None:
        if action != "open" and not self._unreachable:  # a store that never opened is the caller's error
            self._unreachable = True
            log.error("Store %s is unreachable (%s); reads and writes fail until it is back",
                      self.url, scrub(_describe(exc), self._dsn))

    # ------------------------------------------------------------------ migrations

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(_SCHEMA_TABLE)
            recorded = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM troupe_schema"))
            if recorded > LATEST:
                log.warning("Store %s has schema version %d, newer than this Troupe's %d; its extra columns "
                            "are unused", self.url, recorded, LATEST)
            for migration in MIGRATIONS:
                if migration.version <= recorded:
                    continue
                for step in migration.steps:
                    if sql := render(step, "postgresql"):
                        await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO troupe_schema (version, summary) VALUES ($1, $2)", migration.version, migration.summary
                )
                log.info("Store %s: schema version %d (%s)", self.url, migration.version, migration.summary)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"cannot connect: {text}" if isinstance(exc, OSError) else text
