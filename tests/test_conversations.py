"""The conversation owner: one place that reads, changes and persists a conversation's state."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cards import CharacterLibrary
from bot.conversations import Conversations
from bot.errors import SceneError, StoreError
from bot.store import Store


@pytest.fixture
def library(characters_dir: Path) -> CharacterLibrary:
    library = CharacterLibrary(characters_dir)
    library.load()
    return library


async def test_channel_state_is_persisted_and_survives_a_restart(library: CharacterLibrary, tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        conversations = Conversations(library, store, default_character="Aria")
        await conversations.set_character("42", "Captain Brass")
        await conversations.set_note("42", "It is night.")
        await conversations.reset("42", 1000)
        await conversations.set_wake_words("42", False)
        await conversations.window_moved("42", "1001", replied=True)
    async with await Store.open(tmp_path / "t.db") as store:
        again = await Conversations(library, store).get("42")
    assert (again.character, again.note, again.fence_id, again.wake_words, again.anchor) == (
        "Captain Brass", "It is night.", 1000, False, "1001")


async def test_reset_and_a_new_character_start_the_window_over(library: CharacterLibrary, tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        conversations = Conversations(library, store)
        await conversations.window_moved("42", "5", replied=True)
        await conversations.reset("42", 9)
        assert (await conversations.get("42")).anchor is None
        await conversations.window_moved("42", "10", replied=True)
        await conversations.set_character("42", "Aria")
        assert (await conversations.get("42")).anchor is None


async def test_the_character_is_the_channels_then_the_servers_then_the_default(
    library: CharacterLibrary, tmp_path: Path
) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        conversations = Conversations(library, store, default_character="Professor Quill")
        assert (await conversations.character("1", guild_id=5)).name == "Professor Quill"
        await conversations.set_server_character(5, "Captain Brass")
        assert (await conversations.character("1", guild_id=5)).name == "Captain Brass"
        await conversations.set_character("1", "Aria")
        assert (await conversations.character("1", guild_id=5)).name == "Aria"


async def test_a_missing_default_character_falls_back_to_the_first_and_says_so(
    library: CharacterLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    conversations = Conversations(library, default_character="Nobody")
    chosen = await conversations.character("console")
    assert chosen is not None and chosen.name == library.names()[0]
    assert "default_character 'Nobody' is not in" in caplog.text


async def test_conversations_without_a_channel_live_in_memory(library: CharacterLibrary, tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        conversations = Conversations(library, store)
        await conversations.set_note("serve:abc", "hi")
        assert (await conversations.get("serve:abc")).note == "hi"
        assert await store.recent_channels() == []


async def test_a_failed_store_write_changes_nothing(library: CharacterLibrary, tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "t.db")
    conversations = Conversations(library, store)
    await conversations.set_note("42", "before")
    await store.close()
    with pytest.raises(StoreError):
        await conversations.set_note("42", "after")
    assert (await conversations.get("42")).note == "before"


async def test_a_model_switch_forgets_every_window(library: CharacterLibrary) -> None:
    conversations = Conversations(library)
    await conversations.window_moved("a", "1", replied=True)
    await conversations.window_moved("b", "2", replied=True)
    conversations.forget_windows()
    assert (await conversations.get("a")).anchor is None and (await conversations.get("b")).anchor is None


async def test_a_scene_cast_is_persisted_in_order_and_survives_a_restart(
    library: CharacterLibrary, tmp_path: Path
) -> None:
    async with await Store.open(tmp_path / "t.db") as store:
        conversations = Conversations(library, store, default_character="Aria")
        await conversations.add_member("42", "Professor Quill", most=6)  # Aria, who spoke alone, stays first
    async with await Store.open(tmp_path / "t.db") as store:
        cast = await Conversations(library, store, default_character="Aria").cast("42")
    assert [c.name for c in cast] == ["Aria", "Professor Quill"]


async def test_a_full_scene_refuses_another_member(library: CharacterLibrary) -> None:
    conversations = Conversations(library, default_character="Aria")
    await conversations.add_member("console", "Captain Brass", most=2)
    with pytest.raises(SceneError, match="full"):
        await conversations.add_member("console", "Professor Quill", most=2)


async def test_the_last_member_cannot_leave_the_scene(library: CharacterLibrary) -> None:
    conversations = Conversations(library, default_character="Aria")
    await conversations.add_member("console", "Captain Brass", most=6)
    assert await conversations.remove_member("console", "Aria") == ("Captain Brass",)
    with pytest.raises(SceneError, match="only one left"):
        await conversations.remove_member("console", "Captain Brass")


async def test_choosing_a_character_makes_a_cast_of_one(library: CharacterLibrary) -> None:
    conversations = Conversations(library, default_character="Aria")
    await conversations.set_cast("console", ["Aria", "Captain Brass"])
    await conversations.set_character("console", "Professor Quill")
    assert [c.name for c in await conversations.cast("console")] == ["Professor Quill"]


async def test_members_no_longer_in_the_library_leave_the_cast(library: CharacterLibrary) -> None:
    conversations = Conversations(library, default_character="Aria")
    await conversations.set_cast("console", ["Gone Character", "Captain Brass"])
    assert [c.name for c in await conversations.cast("console")] == ["Captain Brass"]


def test_who_spoke_is_counted_per_conversation(library: CharacterLibrary) -> None:
    conversations = Conversations(library)
    for name in ("Aria", "Captain Brass", "Aria"):
        conversations.spoke("7", name)
    assert conversations.spoken("7") == {"Aria": 2, "Captain Brass": 1}
    assert conversations.last_speaker("7") == "Aria" and conversations.last_speaker("8") is None
