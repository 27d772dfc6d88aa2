"""The store, on both engines (``store_url`` runs each test on SQLite and on a real PostgreSQL):
defaults, writes that survive reopening, a killed writer, concurrent writers, migrations."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap

from bot.store import ChannelState, Store, Webhook, open_store
from bot.store.migrations import LATEST

SNOWFLAKE = 1_234_567_890_123_456_789  # Discord ids need all 64 bits


async def test_unknown_channel_has_defaults(store_url: str) -> None:
    async with open_store(store_url) as store:
        assert await store.channel(1) == ChannelState(1)
        assert await store.guild_character(9) is None
        assert await store.webhook(1) is None
        assert await store.webhook_ids() == set()
        assert await store.recent_channels() == []


async def test_settings_survive_reopening(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.set_channel_character(10, "Aria")
        await store.set_fence(10, 555)
        await store.set_anchor(10, "600")
        await store.set_wake_words(10, False)
        await store.set_guild_character(1, "Captain Brass")
        await store.set_webhook(10, 77, "tok")
    async with open_store(store_url) as store:
        assert await store.channel(10) == ChannelState(10, "Aria", 555, "600", False)
        assert await store.guild_character(1) == "Captain Brass"
        assert await store.webhook(10) == Webhook(10, 77, "tok")


async def test_store_open_takes_a_url_or_a_sqlite_path(store_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with await Store.open(store_url) as store:
        await store.set_guild_character(1, "Aria")
        assert await store.guild_character(1) == "Aria"
    async with await Store.open(tmp_path / "plain.db") as store:  # the older call, a file path
        assert store.url == f"sqlite:///{tmp_path / 'plain.db'}"


async def test_discord_snowflakes_round_trip(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.set_fence(SNOWFLAKE, SNOWFLAKE + 1)
        await store.set_webhook(SNOWFLAKE, SNOWFLAKE + 2, "tok")
        await store.set_guild_character(SNOWFLAKE + 3, "Aria")
        assert (await store.channel(SNOWFLAKE)).fence_id == SNOWFLAKE + 1
        assert await store.webhook(SNOWFLAKE) == Webhook(SNOWFLAKE, SNOWFLAKE + 2, "tok")
        assert await store.webhook_ids() == {SNOWFLAKE + 2}
        assert await store.guild_character(SNOWFLAKE + 3) == "Aria"


async def test_changing_character_or_fence_resets_the_anchor(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.set_anchor(3, "100")
        await store.set_channel_character(3, "Aria")
        assert (await store.channel(3)).anchor_id is None
        await store.set_anchor(3, "101")
        await store.set_fence(3, 200)
        state = await store.channel(3)
        assert state.anchor_id is None and state.character == "Aria" and state.fence_id == 200


async def test_forgotten_webhook_is_gone(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.set_webhook(4, 1, "a")
        await store.forget_webhook(4)
        assert await store.webhook(4) is None


async def test_every_webhook_ever_used_is_remembered(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.set_webhook(1, 100, "a")
        await store.set_webhook(1, 101, "b")  # replaced after someone deleted the first
        await store.set_webhook(2, 200, "c")
        await store.forget_webhook(2)
        assert await store.webhook_ids() == {100, 101, 200}


async def test_webhook_avatar_is_remembered_until_the_webhook_is_replaced(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.set_webhook(5, 50, "a")
        await store.set_webhook_avatar(5, 50, "hash-1")
        await store.set_webhook_avatar(5, 49, "stale")  # an older webhook of the channel: ignored
    async with open_store(store_url) as store:
        assert await store.webhook(5) == Webhook(5, 50, "a", "hash-1")
        await store.set_webhook(5, 51, "b")  # a new webhook starts with Discord's default avatar
        assert await store.webhook(5) == Webhook(5, 51, "b", None)


async def test_a_channel_note_is_kept_until_cleared(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.set_anchor(3, "30")
        await store.set_note(3, "The storm has cut the power.")
        assert (await store.channel(3)).note == "The storm has cut the power."
        assert [s.note for s in await store.recent_channels()] == ["The storm has cut the power."]
        await store.set_note(3, None)
        state = await store.channel(3)
    assert state.note is None and state.anchor_id == "30"


async def test_a_channel_cast_keeps_its_order_until_cleared(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.set_cast(6, ["Aria", "Captain Brass", "Zoë"])
        await store.set_note(6, "kept beside the cast")
    async with open_store(store_url) as store:
        assert (await store.channel(6)).cast == ("Aria", "Captain Brass", "Zoë")
        await store.set_cast(6, [])
        assert (await store.channel(6)).cast == ()
        await store.set_cast(6, None)
        state = await store.channel(6)
    assert state.cast is None and state.note == "kept beside the cast"


async def test_a_channel_summary_is_kept_until_cleared(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.set_summary(7, "Aria met the captain at the docks.")
    async with open_store(store_url) as store:
        assert (await store.channel(7)).summary == "Aria met the captain at the docks."
        await store.set_summary(7, None)
        assert (await store.channel(7)).summary is None


async def test_recent_channels_are_the_ones_the_character_last_spoke_in(store_url: str) -> None:
    async with open_store(store_url) as store:
        for channel in (1, 2, 3):
            await store.set_anchor(channel, f"{channel}0")
        await store.set_anchor(1, "11")  # channel 1 talks again: it is the most recent now
        await store.set_wake_words(4, True)  # a channel the character never spoke in
        assert [s.channel_id for s in await store.recent_channels()] == [1, 3, 2]
        assert [s.channel_id for s in await store.recent_channels(2)] == [1, 3]


async def test_concurrent_writes_all_land(store_url: str) -> None:
    async with open_store(store_url) as store:
        await asyncio.gather(*(
            write for i in range(40)
            for write in (store.set_channel_character(i, f"char{i}"), store.set_webhook(i, 1000 + i, f"t{i}"))
        ))
        states = await asyncio.gather(*(store.channel(i) for i in range(40)))
        assert [s.character for s in states] == [f"char{i}" for i in range(40)]
        assert await store.webhook_ids() == {1000 + i for i in range(40)}


async def test_a_new_store_is_at_the_latest_schema_version(store_url: str) -> None:
    async with open_store(store_url) as store:
        info = await store.info()
    async with open_store(store_url) as store:  # opening again migrates nothing
        assert await store.info() == info
    assert info.schema_version == LATEST and info.engine in store_url


async def test_writes_before_sigkill_are_kept(store_url: str) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from bot.store import Store
        async def main():
            store = await Store.open({store_url!r})
            for i in range(50):
                await store.set_channel_character(i, f"char{{i}}")
            print("written", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL and "written" in proc.stdout, proc.stderr
    async with open_store(store_url) as store:
        for i in range(50):
            assert (await store.channel(i)).character == f"char{i}"
