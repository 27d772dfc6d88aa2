"""Schema migrations: SQLite files from every earlier version of Troupe open and upgrade, and
processes starting together against one PostgreSQL migrate it once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.store import Webhook, open_store
from bot.store.migrations import LATEST, MIGRATIONS, table_columns
from bot.store.urls import sqlite_url

# The schemas earlier releases wrote, by hand, each with the rows such a bot would hold.
_V1_FIRST = """
CREATE TABLE channels (channel_id INTEGER PRIMARY KEY, character TEXT, fence_id INTEGER,
                       anchor_id TEXT, wake_words INTEGER);
CREATE TABLE guilds (guild_id INTEGER PRIMARY KEY, character TEXT);
CREATE TABLE webhooks (channel_id INTEGER PRIMARY KEY, webhook_id INTEGER NOT NULL, token TEXT NOT NULL);
INSERT INTO channels (channel_id, character, fence_id, anchor_id, wake_words) VALUES (10, 'Aria', 5, '600', 0);
INSERT INTO guilds VALUES (1, 'Captain Brass');
INSERT INTO webhooks VALUES (10, 77, 'tok');
PRAGMA user_version = 1;
"""  # the first release: no webhooks_used yet, though the version is 1
_V1 = _V1_FIRST.replace("PRAGMA user_version = 1;", """
CREATE TABLE webhooks_used (webhook_id INTEGER PRIMARY KEY);
INSERT INTO webhooks_used VALUES (76);
INSERT INTO webhooks_used VALUES (77);
PRAGMA user_version = 1;
""")
_V2 = _V1.replace("token TEXT NOT NULL)", "token TEXT NOT NULL, avatar_hash TEXT)").replace(
    "INSERT INTO webhooks VALUES (10, 77, 'tok');", "INSERT INTO webhooks VALUES (10, 77, 'tok', 'hash-1');"
).replace("user_version = 1", "user_version = 2")
_V3_FIRST = _V2.replace("wake_words INTEGER)", "wake_words INTEGER, note TEXT)").replace(
    "VALUES (10, 'Aria', 5, '600', 0)", "VALUES (10, 'Aria', 5, '600', 0); UPDATE channels SET note = 'It is night.'"
).replace("user_version = 2", "user_version = 3")  # version 3 as first released: no active_at yet
_V3 = _V3_FIRST.replace("note TEXT)", "note TEXT, active_at INTEGER)").replace(
    "SET note = 'It is night.'", "SET note = 'It is night.', active_at = 1700000000000000000"
)
OLD_SCHEMAS = {"v1-first": _V1_FIRST, "v1": _V1, "v2": _V2, "v3-first": _V3_FIRST, "v3": _V3}


def _old_file(path: Path, schema: str) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(schema)
    return path


def _shape(path: Path) -> tuple[int, dict[str, tuple[str, ...]]]:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return version, {t: tuple(row[1] for row in db.execute(f"PRAGMA table_info({t})")) for t in tables}


@pytest.mark.parametrize("release", OLD_SCHEMAS)
async def test_a_file_from_an_earlier_release_upgrades_to_the_latest_schema(tmp_path: Path, release: str) -> None:
    path = _old_file(tmp_path / f"{release}.db", OLD_SCHEMAS[release])
    async with open_store(sqlite_url(path)):
        pass
    assert _shape(path) == (LATEST, table_columns())


@pytest.mark.parametrize("release", OLD_SCHEMAS)
async def test_a_file_from_an_earlier_release_keeps_its_state(tmp_path: Path, release: str) -> None:
    path = _old_file(tmp_path / f"{release}.db", OLD_SCHEMAS[release])
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
    path = _old_file(tmp_path / f"{release}.db", OLD_SCHEMAS[release])
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
