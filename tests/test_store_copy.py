"""``python -m bot store copy``: a bot's whole state moves between SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.store import ChannelState, Remembered, Store, Webhook, copy_store, open_store
from bot.store.urls import sqlite_url

ROOT = Path(__file__).resolve().parent.parent


async def _fill(store: Store) -> None:
    """A bot's state with something in every table and column."""
    await store.set_channel_character(10, "Aria")
    await store.set_fence(10, 1_234_567_890_123_456_789)
    await store.set_wake_words(10, False)
    await store.set_note(10, "It is night.")
    await store.set_cast(10, ["Aria", "Captain Brass"])
    await store.set_summary(10, "They met at the docks.")
    await store.set_memory(10, False)
    await store.remember([Remembered(1_234_567_890_123_456_790, 10, 5, "Alice", "My cat is Biscuit.", 1_700_000_000)])
    for channel in (11, 12, 10):  # 10 spoke last
        await store.set_anchor(channel, f"{channel}00")
    await store.set_guild_character(1, "Captain Brass")
    await store.set_webhook(10, 77, "tok-a")
    await store.set_webhook_avatar(10, 77, "hash-1")
    await store.set_webhook(11, 78, "tok-b")
    await store.forget_webhook(11)  # its id stays among those ever used


async def _assert_filled(store: Store) -> None:
    assert await store.channel(10) == ChannelState(
        10, "Aria", 1_234_567_890_123_456_789, "1000", False, "It is night.", ("Aria", "Captain Brass"),
        "They met at the docks.", False,
    )
    [kept] = await store.recall(10, ["biscuit"], after_id=0, before_id=2**63 - 1, limit=5)
    assert kept.text == "My cat is Biscuit."  # the copy's recall index was built as it was written
    assert [s.channel_id for s in await store.recent_channels()] == [10, 12, 11]
    assert await store.guild_character(1) == "Captain Brass"
    assert await store.webhook(10) == Webhook(10, 77, "tok-a", "hash-1")
    assert await store.webhook(11) is None
    assert await store.webhook_ids() == {77, 78}


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "troupe.db")


@pytest.mark.parametrize("direction", ["sqlite-to-postgresql", "postgresql-to-sqlite"])
async def test_copy_moves_every_channel_server_and_webhook(sqlite_store: str, postgres_url: str, direction: str) -> None:
    source, target = (sqlite_store, postgres_url) if direction.startswith("sqlite") else (postgres_url, sqlite_store)
    async with open_store(source) as store:
        await _fill(store)
    counts = await copy_store(source, target)
    assert counts == {"channels": 3, "guilds": 1, "webhooks": 1, "webhooks_used": 2, "memory": 1}
    async with open_store(target) as store:
        await _assert_filled(store)


async def test_a_round_trip_gives_back_the_same_state(sqlite_store: str, postgres_url: str, tmp_path: Path) -> None:
    async with open_store(sqlite_store) as store:
        await _fill(store)
        before = await store.snapshot()
    back = sqlite_url(tmp_path / "back.db")
    await copy_store(sqlite_store, postgres_url)
    await copy_store(postgres_url, back)
    async with open_store(back) as store:
        assert await store.snapshot() == before


async def test_copy_refuses_a_target_that_holds_state(sqlite_store: str, postgres_url: str) -> None:
    async with open_store(sqlite_store) as store:
        await _fill(store)
    async with open_store(postgres_url) as store:
        await store.set_guild_character(2, "Mira")
    with pytest.raises(StoreError, match=r"already holds state \(1 guilds\)"):
        await copy_store(sqlite_store, postgres_url)
    async with open_store(postgres_url) as store:
        assert (await store.snapshot()).counts() == {"channels": 0, "guilds": 1, "webhooks": 0, "webhooks_used": 0, "memory": 0}


async def test_copy_with_replace_drops_what_the_target_held(sqlite_store: str, postgres_url: str) -> None:
    async with open_store(sqlite_store) as store:
        await _fill(store)
    async with open_store(postgres_url) as store:
        await store.set_guild_character(2, "Mira")
    await copy_store(sqlite_store, postgres_url, replace=True)
    async with open_store(postgres_url) as store:
        assert await store.guild_character(2) is None
        await _assert_filled(store)


async def test_copy_from_a_missing_sqlite_file_is_refused_and_creates_nothing(tmp_path: Path, postgres_url: str) -> None:
    with pytest.raises(StoreError, match="there is no SQLite file at"):
        await copy_store(sqlite_url(tmp_path / "typo.db"), postgres_url)
    assert not (tmp_path / "typo.db").exists()


async def test_copy_refuses_to_copy_a_store_onto_itself(sqlite_store: str) -> None:
    with pytest.raises(StoreError, match="the same store"):
        await copy_store(sqlite_store, sqlite_store)


async def test_the_copy_command_reports_rows_and_never_shows_the_password(
    sqlite_store: str, postgres_url: str
) -> None:
    async with open_store(sqlite_store) as store:
        await _fill(store)
    target = postgres_url.replace("postgres:@", "postgres:${TROUPE_TEST_PG_PASSWORD}@")  # as an owner would type it
    result = subprocess.run(
        [sys.executable, "-m", "bot", "store", "copy", "--from", sqlite_store, "--to", target],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "TROUPE_TEST_PG_PASSWORD": "s3cret-pw"},
    )
    assert result.returncode == 0, result.stderr
    assert "3 channels, 1 guilds, 1 webhooks, 2 webhooks_used" in result.stdout
    assert "postgres:***@" in result.stdout
    assert "s3cret-pw" not in result.stdout + result.stderr
    async with open_store(postgres_url) as store:
        await _assert_filled(store)
