"""PostgreSQL stopped and started again while the store is in use: calls fail clearly (the URL
named, its password not), the pool recovers by itself, and nothing written before is lost.

These tests stop their own server (started once for this module), not the session's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from postgres_fixtures import PostgresServer, start_postgres

from bot.errors import StoreError
from bot.store import Store, open_store

PASSWORD = "s3cret-pw"  # in the URL; the server trusts local connections, so only its hiding is tested


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.close()


@pytest.fixture
async def store(own_postgres: PostgresServer) -> AsyncIterator[Store]:
    own_postgres.start()  # running, even if an earlier test failed while it was stopped
    url = own_postgres.url("postgres").replace("postgres:@", f"postgres:{PASSWORD}@")
    async with open_store(url) as store:
        await store.restore(await store.snapshot(), replace=True)  # nothing from earlier tests
        yield store


async def _stopped(server: PostgresServer, mode: str = "fast") -> None:
    await asyncio.to_thread(server.stop, mode)


async def _started(server: PostgresServer) -> None:
    await asyncio.to_thread(server.start)


async def test_a_read_while_the_server_is_down_raises_store_error_naming_the_redacted_url(
    own_postgres: PostgresServer, store: Store
) -> None:
    await _stopped(own_postgres)
    with pytest.raises(StoreError, match=r"store unreachable \(postgresql://postgres:\*\*\*@.*the read failed") as caught:
        await store.channel(1)
    assert PASSWORD not in str(caught.value)


async def test_a_write_while_the_server_is_down_raises_store_error_naming_the_redacted_url(
    own_postgres: PostgresServer, store: Store
) -> None:
    await _stopped(own_postgres)
    with pytest.raises(StoreError, match=r"store unreachable \(postgresql://postgres:\*\*\*@.*the write failed") as caught:
        await store.set_note(1, "lost with the server down")
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("mode", ["fast", "immediate"])  # a clean shutdown, and one like a crash
async def test_the_pool_recovers_by_itself_and_keeps_what_was_written_before(
    own_postgres: PostgresServer, store: Store, mode: str
) -> None:
    await store.set_note(1, "before the stop")
    await store.set_webhook(1, 77, "tok")
    await _stopped(own_postgres, mode)
    with pytest.raises(StoreError):
        await store.set_note(2, "during the stop")
    await _started(own_postgres)
    assert (await store.channel(1)).note == "before the stop"  # the first call after the restart succeeds
    assert await store.webhook_ids() == {77}
    await store.set_note(2, "after the restart")
    assert (await store.channel(2)).note == "after the restart"


async def test_a_restart_between_two_calls_goes_unnoticed(own_postgres: PostgresServer, store: Store) -> None:
    await store.set_note(1, "before")
    await _stopped(own_postgres)  # every pooled connection dies with it
    await _started(own_postgres)
    await store.set_note(1, "after")
    assert (await store.channel(1)).note == "after"


async def test_the_log_says_when_the_store_went_away_and_when_it_came_back(
    own_postgres: PostgresServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.store")
    await _stopped(own_postgres)
    for _ in range(3):
        with pytest.raises(StoreError):
            await store.channel(1)
    await _started(own_postgres)
    await store.channel(1)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("bot.store")]
    assert sum("is unreachable" in m for m in messages) == 1  # once, not at every call
    assert sum("is reachable again" in m for m in messages) == 1
    assert PASSWORD not in caplog.text



async def test_a_pooled_connection_the_server_dropped_is_replaced_unnoticed(
    own_postgres: PostgresServer, store: Store
) -> None:
    await store.set_note(1, "before")
    await asyncio.to_thread(  # as a proxy or firewall dropping idle connections would
        own_postgres.sql,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    assert (await store.channel(1)).note == "before"
    await store.set_note(1, "after")
    assert (await store.channel(1)).note == "after"
