"""Events between processes sharing a store: PostgreSQL LISTEN/NOTIFY on a real server, and
SQLite's one process telling no one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_fixtures import PostgresServer, start_postgres

from bot.conversations import Conversations
from bot.store import Store, open_store
from bot.store.events import RESYNC, PostgresEvents, StoreEvent


def collector() -> tuple[list[StoreEvent], object]:
    heard: list[StoreEvent] = []

    async def handler(event: StoreEvent) -> None:
        heard.append(event)

    return heard, handler


async def until(condition: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_an_event_from_one_process_reaches_the_other_and_not_itself(postgres_url: str) -> None:
    async with open_store(postgres_url) as first, open_store(postgres_url) as second:
        heard_first, on_first = collector()
        heard_second, on_second = collector()
        first.events.subscribe(on_first)  # type: ignore[arg-type]
        second.events.subscribe(on_second)  # type: ignore[arg-type]
        await first.events.start()
        await second.events.start()
        await until(lambda: first.events.listening and second.events.listening)
        await first.events.publish("conversation_changed", key="42")
        await until(lambda: heard_second)
        await asyncio.sleep(0.2)
    assert heard_second == [StoreEvent("conversation_changed", {"key": "42"})]
    assert heard_first == []


async def test_sqlite_has_no_other_process_to_tell(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "troupe.db") as store:
        heard, handler = collector()
        store.events.subscribe(handler)  # type: ignore[arg-type]
        await store.events.start()
        await store.events.publish("characters_changed")
        assert store.events.listening and heard == []


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.close()


async def test_the_listener_reconnects_after_the_server_restarts_and_asks_for_a_resync(
    own_postgres: PostgresServer,
) -> None:
    url = own_postgres.url("postgres")
    listener = PostgresEvents(url, "test", retry=0.1, retry_max=0.5, keepalive=0.2)
    sender = PostgresEvents(url, "test")
    heard, handler = collector()
    listener.subscribe(handler)  # type: ignore[arg-type]
    await listener.start()
    try:
        await until(lambda: listener.listening)
        await asyncio.to_thread(own_postgres.stop)
        await until(lambda: not listener.listening)
        await asyncio.to_thread(own_postgres.start)
        await until(lambda: listener.listening, timeout=20)
        await sender.publish("characters_changed")
        await until(lambda: len(heard) == 2)
    finally:
        own_postgres.start()
        await listener.close()
        await sender.close()
    assert heard == [StoreEvent(RESYNC), StoreEvent("characters_changed")]


async def test_a_conversation_changed_by_one_process_is_read_afresh_by_the_other(postgres_url: str) -> None:
    async with open_store(postgres_url) as first_store, open_store(postgres_url) as second_store:
        first, second = Conversations(None, first_store), Conversations(None, second_store)
        first.announce = lambda kind, data: first_store.events.publish(kind, **data)

        async def apply(event: StoreEvent) -> None:
            second.heard(event.kind, event.data)

        second_store.events.subscribe(apply)
        for store in (first_store, second_store):
            await store.events.start()
        await until(lambda: first_store.events.listening and second_store.events.listening)
        assert (await second.get("5")).note is None  # now cached in the second process
        await first.set_note("5", "the bard owes us two silver")
        for _ in range(500):  # the cached copy is used until the event drops it
            if (await second.get("5")).note is not None:
                break
            await asyncio.sleep(0.02)
        assert (await second.get("5")).note == "the bard owes us two silver"
