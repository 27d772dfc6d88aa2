"""The SQLite store: defaults, writes that survive reopening, a killed writer, older databases."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from bot.store import ChannelState, Store, Webhook


async def test_unknown_channel_has_defaults(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        assert await store.channel(1) == ChannelState(1)
        assert await store.guild_character(9) is None
        assert await store.webhook(1) is None


async def test_settings_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.db"
    async with await Store.open(path) as store:
        await store.set_channel_character(10, "Aria")
        await store.set_fence(10, 555)
        await store.set_anchor(10, "600")
        await store.set_wake_words(10, False)
        await store.set_guild_character(1, "Captain Brass")
        await store.set_webhook(10, 77, "tok")
    async with await Store.open(path) as store:
        assert await store.channel(10) == ChannelState(10, "Aria", 555, "600", False)
        assert await store.guild_character(1) == "Captain Brass"
        assert await store.webhook(10) == Webhook(10, 77, "tok")


async def test_changing_character_or_fence_resets_the_anchor(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        await store.set_anchor(3, "100")
        await store.set_channel_character(3, "Aria")
        assert (await store.channel(3)).anchor_id is None
        await store.set_anchor(3, "101")
        await store.set_fence(3, 200)
        state = await store.channel(3)
        assert state.anchor_id is None and state.character == "Aria" and state.fence_id == 200


async def test_forgotten_webhook_is_gone(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        await store.set_webhook(4, 1, "a")
        await store.forget_webhook(4)
        assert await store.webhook(4) is None


async def test_writes_before_sigkill_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal, sys
        from bot.store import Store
        async def main():
            store = await Store.open({str(path)!r})
            for i in range(50):
                await store.set_channel_character(i, f"char{{i}}")
            print("written", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL and "written" in proc.stdout
    async with await Store.open(path) as store:
        for i in range(50):
            assert (await store.channel(i)).character == f"char{i}"


async def test_every_webhook_ever_used_is_remembered(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        await store.set_webhook(1, 100, "a")
        await store.set_webhook(1, 101, "b")  # replaced after someone deleted the first
        await store.set_webhook(2, 200, "c")
        await store.forget_webhook(2)
        assert await store.webhook_ids() == {100, 101, 200}


async def test_webhook_avatar_is_remembered_until_the_webhook_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    async with await Store.open(path) as store:
        await store.set_webhook(5, 50, "a")
        await store.set_webhook_avatar(5, 50, "hash-1")
        await store.set_webhook_avatar(5, 49, "stale")  # an older webhook of the channel: ignored
    async with await Store.open(path) as store:
        assert await store.webhook(5) == Webhook(5, 50, "a", "hash-1")
        await store.set_webhook(5, 51, "b")  # a new webhook starts with Discord's default avatar
        assert await store.webhook(5) == Webhook(5, 51, "b", None)


# the schema of version 1, as the previous release created it
_SCHEMA_V1 = """
CREATE TABLE channels (channel_id INTEGER PRIMARY KEY, character TEXT, fence_id INTEGER,
                       anchor_id TEXT, wake_words INTEGER);
CREATE TABLE guilds (guild_id INTEGER PRIMARY KEY, character TEXT);
CREATE TABLE webhooks (channel_id INTEGER PRIMARY KEY, webhook_id INTEGER NOT NULL, token TEXT NOT NULL);
CREATE TABLE webhooks_used (webhook_id INTEGER PRIMARY KEY);
INSERT INTO channels (channel_id, character) VALUES (10, 'Aria');
INSERT INTO webhooks VALUES (10, 77, 'tok');
INSERT INTO webhooks_used VALUES (77);
PRAGMA user_version = 1;
"""


def _columns(path: Path, table: str) -> tuple[int, list[str]]:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        return version, [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


async def test_database_of_the_first_schema_opens_and_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA_V1)
    assert _columns(path, "webhooks") == (1, ["channel_id", "webhook_id", "token"])
    async with await Store.open(path) as store:
        assert await store.webhook(10) == Webhook(10, 77, "tok", None)
        assert (await store.channel(10)).character == "Aria"
        await store.set_webhook_avatar(10, 77, "hash-1")
        await store.set_note(10, "It is night.")
    assert _columns(path, "webhooks") == (3, ["channel_id", "webhook_id", "token", "avatar_hash"])
    assert _columns(path, "channels")[1][-2:] == ["note", "active_at"]
    async with await Store.open(path) as store:  # opening an upgraded database again changes nothing
        assert await store.webhook(10) == Webhook(10, 77, "tok", "hash-1")
        assert (await store.channel(10)).note == "It is night."
        assert await store.webhook_ids() == {77}


async def test_a_channel_note_is_kept_until_cleared(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        await store.set_anchor(3, "30")
        await store.set_note(3, "The storm has cut the power.")
        assert (await store.channel(3)).note == "The storm has cut the power."
        assert [s.note for s in await store.recent_channels()] == ["The storm has cut the power."]
        await store.set_note(3, None)
        state = await store.channel(3)
    assert state.note is None and state.anchor_id == "30"


async def test_recent_channels_are_the_ones_the_character_last_spoke_in(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        for channel in (1, 2, 3):
            await store.set_anchor(channel, f"{channel}0")
        await store.set_anchor(1, "11")  # channel 1 talks again: it is the most recent now
        await store.set_wake_words(4, True)  # a channel the character never spoke in
        assert [s.channel_id for s in await store.recent_channels()] == [1, 3, 2]
        assert [s.channel_id for s in await store.recent_channels(2)] == [1, 3]
