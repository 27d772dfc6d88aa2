"""Schema migrations: SQLite files from every earlier version of Troupe open and upgrade, and
processes starting together against one PostgreSQL migrate it once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from old_stores import OLD_SCHEMAS, old_file

from bot.store import Webhook, open_store
from bot.store.migrations import LATEST, MIGRATIONS, table_columns
from bot.store.urls import sqlite_url


def _shape(path: Path) -> tuple[int, dict[str, tuple[str, ...]]]:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = [row[0] for row in db.execute(  # the recall index (FTS5 and its shadow tables) is derived, not data
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'memory_fts%' ORDER BY name")]
        return version, {t: tuple(row[1] for row in db.execute(f"PRAGMA table_info({t})")) for t in tables}


@pytest.mark.parametrize("release", OLD_SCHEMAS)
async def test_a_file_from_an_earlier_release_upgrades_to_the_latest_schema(tmp_path: Path, release: str) -> None:
    path = old_file(tmp_path / f"{release}.db", OLD_SCHEMAS[release])
    async with open_store(sqlite_url(path)):
        pass
    assert _shape(path) == (LATEST, table_columns())


@pytest.mark.parametrize("release", OLD_SCHEMAS)
async def test_a_file_from_an_earlier_release_keeps_its_state(tmp_path: Path, release: str) -> None:
    path = old_file(tmp_path / f"{release}.db", OLD_SCHEMAS[release])
    async with open_store(sqlite_url(path)) as store:
        state = await store.channel(10)
        assert (state.character, state.fence_id, state.anchor_id, state.wake_words) == ("Aria", 5, "600", False)
        assert state.note == ("It is night." if release.startswith("v3") else None)
        assert await store.guild_character(1) == "Captain Brass"
        avatar = "hash-1" if release in {"v2", "v3-first", "v3"} else None
        assert await store.webhook(10) == Webhook(10, 77, "tok", avatar)
        assert await store.webhook_ids() == ({77} if release == "v1-first" else {76, 77})
        assert [s.channel_id for s in await store.recent_channels()] == [10]


@pytest.mark.parametrize("release", OLD_SCHEMAS)
async def test_an_upgraded_file_takes_new_writes_and_reopens_unchanged(tmp_path: Path, release: str) -> None:
    path = old_file(tmp_path / f"{release}.db", OLD_SCHEMAS[release])
    async with open_store(sqlite_url(path)) as store:
        await store.set_webhook_avatar(10, 77, "hash-2")
        await store.set_cast(10, ["Aria", "Mira"])
        await store.set_anchor(11, "700")
    upgraded = _shape(path)
    async with open_store(sqlite_url(path)) as store:
        assert (await store.webhook(10)).avatar_hash == "hash-2"  # type: ignore[union-attr]
        assert (await store.channel(10)).cast == ("Aria", "Mira")
        assert [s.channel_id for s in await store.recent_channels()] == [11, 10]
    assert _shape(path) == upgraded


async def test_a_file_from_a_newer_release_opens_and_keeps_its_version(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    async with open_store(sqlite_url(path)) as store:
        await store.set_note(1, "from today")
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE channels ADD COLUMN mood TEXT")
        db.execute(f"PRAGMA user_version = {LATEST + 1}")
    async with open_store(sqlite_url(path)) as store:
        assert (await store.channel(1)).note == "from today"
    assert _shape(path)[0] == LATEST + 1


def test_migrations_are_numbered_one_by_one_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1))


async def test_processes_opening_one_postgresql_together_migrate_it_once(postgres_url: str) -> None:
    async def open_and_read() -> int:
        async with open_store(postgres_url) as store:
            return (await store.info()).schema_version

    assert await asyncio.gather(*(open_and_read() for _ in range(4))) == [LATEST] * 4
    async with open_store(postgres_url) as store:
        rows = await store._fetch("SELECT version FROM troupe_schema ORDER BY version")  # type: ignore[attr-defined]
    assert [row[0] for row in rows] == list(range(1, LATEST + 1))
