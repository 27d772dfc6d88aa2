"""Scenes end to end: several characters in one channel, the real bot and discord.py
against the strict fake Discord."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord
from fakediscord.model import Message

from bot.backends.base import GenerationRequest
from bot.backends.llama_cpp import LlamaCppBackend
from bot.cards import CharacterLibrary
from bot.director import first_speaker, member_of
from bot.testing import ScriptedBackend

pytestmark = pytest.mark.discord

CAST = ["Aria", "Captain Brass", "Professor Quill"]


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


def spoken(fake: FakeDiscord, world: World) -> list[Message]:
    """The characters' messages in the channel (webhook posts), oldest first."""
    return [m for m in fake.sent_by_bot(world.channel) if m.webhook_id is not None]


async def said(fake: FakeDiscord, world: World, count: int, timeout: float = 5.0) -> list[Message]:
    """Wait until the characters have posted ``count`` messages."""
    return await fake.wait_for(lambda: (m := spoken(fake, world)) and len(m) >= count and m, timeout)


async def command(fake: FakeDiscord, world: World, sub: str, user: Any = None, **options: str) -> str:
    """Run ``/scene SUB`` and return what the bot answered."""
    interaction = await fake.invoke(world.channel, user or world.alice, "scene", subcommand=sub,
                                    options=options or None)
    await interaction.wait_response(5.0)
    return "\n".join((r.get("data") or {}).get("content") or "" for r in interaction.responses)


async def cast_of_three(fake: FakeDiscord, world: World) -> None:
    """Aria (the default character) is joined by the Captain and the Professor."""
    await command(fake, world, "add", name="Captain Brass")
    await command(fake, world, "add", name="Professor Quill")


def by_speaker(request: GenerationRequest) -> list[str]:
    """A scripted reply that says who was asked to speak (the prompt's last tag)."""
    speaker = request.prompt.rsplit("\n[", 1)[1].removesuffix("]:")
    return [f"{speaker} here."]


async def test_scene_add_builds_a_cast_of_three_that_scene_list_shows(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()):
        await cast_of_three(fake_discord, world)
        listed = await command(fake_discord, world, "list")
    assert [line.strip("*") for line in listed.splitlines()[1:]] == CAST


async def test_a_member_named_in_a_message_answers_it(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([by_speaker])
    config = make_config(fake_discord, tmp_path, scene={"max_chain": 0})
    async with running_bot(fake_discord, config, backend):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Professor, and you Aria, what is that star?")
        [reply] = await said(fake_discord, world, 1)
        await asyncio.sleep(0.3)
    assert reply.username == "Professor Quill" and reply.content == "Professor Quill here."
    assert len(backend.requests) == 1


async def test_each_named_member_answers_in_order_when_configured(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path, scene={"max_chain": 0, "answer_all_named": True})
    async with running_bot(fake_discord, config, ScriptedBackend([by_speaker])):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Quill and Captain, a toast!")
        replies = await said(fake_discord, world, 2)
        await asyncio.sleep(0.3)
    assert [m.username for m in spoken(fake_discord, world)] == ["Professor Quill", "Captain Brass"]
    assert replies[1].content == "Captain Brass here."


async def test_a_reply_to_a_members_message_is_answered_by_that_member(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([by_speaker])
    config = make_config(fake_discord, tmp_path, scene={"max_chain": 0})
    async with running_bot(fake_discord, config, backend):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Captain, status?")
        [brass] = await said(fake_discord, world, 1)
        await fake_discord.user_says(world.channel, world.alice, "say that again", reply_to=brass)
        await said(fake_discord, world, 2)
    assert [m.username for m in spoken(fake_discord, world)] == ["Captain Brass", "Captain Brass"]
    assert "[Captain Brass]: Captain Brass here.\n" in backend.requests[1].prompt  # the member's own turn


async def test_a_mention_naming_nobody_goes_to_the_directors_seeded_choice(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path, scene={"max_chain": 0})
    async with running_bot(fake_discord, config, ScriptedBackend([by_speaker])) as bot:
        await cast_of_three(fake_discord, world)
        members = [member_of(c) for c in await bot.conversations.cast(str(world.channel.id))]
        asked = await fake_discord.user_says(world.channel, world.alice, "anyone there?", mention_bot=True)
        [reply] = await said(fake_discord, world, 1)
    assert reply.username == first_speaker(members, mode="natural", seed=asked.id)


async def test_the_model_director_picks_the_speaker_and_ends_the_chain_when_it_expects_a_person(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    picks = iter(["Professor Quill]", "Alice]"])

    def model(request: GenerationRequest) -> list[str]:
        return [next(picks)] if request.prompt.endswith("\n[") else by_speaker(request)

    backend = ScriptedBackend([model])
    config = make_config(fake_discord, tmp_path, scene={"director": "model", "max_chain": 2})
    async with running_bot(fake_discord, config, backend):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "anyone there?", mention_bot=True)
        await said(fake_discord, world, 1)
        await asyncio.sleep(0.5)
    [reply] = spoken(fake_discord, world)
    assert reply.username == "Professor Quill" and reply.content == "Professor Quill here."
    pick, answer, second_pick = (r.prompt for r in backend.requests)
    assert answer.startswith(pick.removesuffix("[")) and second_pick.endswith("[Professor Quill]: Professor Quill here.\n[")


async def test_characters_answer_each_other_up_to_max_chain(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([by_speaker])
    config = make_config(fake_discord, tmp_path, scene={"director": "list", "max_chain": 2})
    async with running_bot(fake_discord, config, backend):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Aria, start the story")
        await said(fake_discord, world, 3)
        await asyncio.sleep(0.5)
    messages = spoken(fake_discord, world)
    assert [m.username for m in messages] == CAST  # the named member, then two more turns in list order
    assert len({m.webhook_id for m in messages}) == 1  # one channel webhook, each with its own name
    assert backend.requests[2].prompt.endswith("[Aria]: Aria here.\n[Captain Brass]: Captain Brass here.\n"
                                               "[Professor Quill]:")


async def test_a_persons_message_ends_a_chain_before_the_next_turn_writes(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([by_speaker], first_chunk_delay=0.6)
    config = make_config(fake_discord, tmp_path, scene={"director": "list", "max_chain": 5})
    async with running_bot(fake_discord, config, backend):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Aria, start the story")
        await said(fake_discord, world, 1)
        await asyncio.sleep(0.2)  # the second member is reading the prompt, nothing posted yet
        await fake_discord.user_says(world.channel, world.admin, "hold on, everyone")
        await asyncio.sleep(2.0)
    assert [m.username for m in spoken(fake_discord, world)] == ["Aria"]
    assert len(backend.requests) == 2


async def test_a_persons_message_lets_a_turn_already_writing_finish_then_ends_the_chain(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    def slow(request: GenerationRequest) -> list[str]:
        return [*by_speaker(request), " And", " more", " to", " say."]

    backend = ScriptedBackend([slow], chunk_delay=0.3)
    config = make_config(fake_discord, tmp_path, scene={"director": "list", "max_chain": 5},
                         discord={"edit_interval": 1.0})  # within Discord's 5 requests per 5 s in a channel
    async with running_bot(fake_discord, config, backend):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Aria, start the story")
        await said(fake_discord, world, 2, timeout=15)  # the second member has started writing
        await fake_discord.user_says(world.channel, world.admin, "hold on, everyone")
        await fake_discord.wait_for(lambda: spoken(fake_discord, world)[1].content.endswith("say."), timeout=10)
        await asyncio.sleep(2.0)
    messages = spoken(fake_discord, world)
    assert [m.username for m in messages] == ["Aria", "Captain Brass"]
    assert messages[1].content == "Captain Brass here. And more to say."


async def test_stop_ends_a_chain_at_once(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([by_speaker], first_chunk_delay=0.6)
    config = make_config(fake_discord, tmp_path, scene={"director": "list", "max_chain": 5})
    async with running_bot(fake_discord, config, backend):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Aria, start the story")
        await said(fake_discord, world, 1)
        await asyncio.sleep(0.2)  # the second member is reading the prompt now
        stop = await fake_discord.invoke(world.channel, world.admin, "stop")
        await stop.wait_response(5.0)
        await asyncio.sleep(2.0)
    assert [m.username for m in spoken(fake_discord, world)] == ["Aria"]
    assert len(backend.requests) == 2


async def test_ambient_replies_follow_the_chance_and_the_cooldown(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path, scene={"ambient": 1.0, "ambient_cooldown": 60, "max_chain": 0},
                         default_character="Echo")
    (tmp_path / "characters" / "echo.yaml").write_text(
        "name: Echo\npersona: Answers everything.\nextensions:\n  talkativeness: 1.0\n")
    backend = ScriptedBackend([by_speaker])
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "nice weather")  # no character spoke yet
        await asyncio.sleep(0.3)
        assert backend.requests == []
        await fake_discord.user_says(world.channel, world.alice, "Echo?")
        await said(fake_discord, world, 1)
        await fake_discord.user_says(world.channel, world.admin, "it is raining again")  # joined in on
        await said(fake_discord, world, 2)
        await fake_discord.user_says(world.channel, world.alice, "so it is")  # within the cooldown
        await asyncio.sleep(0.5)
    assert len(spoken(fake_discord, world)) == 2 and len(backend.requests) == 2


async def test_ambient_replies_never_go_where_access_is_denied(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path, scene={"ambient": 1.0, "ambient_cooldown": 0, "max_chain": 0},
                         default_character="Echo", discord={"access": {"deny_users": [world.admin.id]}})
    (tmp_path / "characters" / "echo.yaml").write_text(
        "name: Echo\npersona: Answers everything.\nextensions:\n  talkativeness: 1.0\n")
    backend = ScriptedBackend([by_speaker])
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "Echo?")
        await said(fake_discord, world, 1)
        await fake_discord.user_says(world.channel, world.admin, "it is raining again")
        await asyncio.sleep(0.5)
    assert len(backend.requests) == 1


async def test_no_reply_contains_another_members_or_a_persons_turn(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Aye, deckhand.", "\n[Aria]: Don't mind her.", "\n[Alice]: ok"]])
    config = make_config(fake_discord, tmp_path, scene={"max_chain": 0})
    async with running_bot(fake_discord, config, backend):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Captain?")
        [reply] = await said(fake_discord, world, 1)
    assert reply.username == "Captain Brass" and reply.content == "Aye, deckhand."
    stops = backend.requests[0].stops
    assert {"\n[Aria]:", "\n[Professor Quill]:", "\n[Alice]:"} <= set(stops) and "\n[Captain Brass]:" not in stops


async def test_every_speaker_shares_one_prompt_but_its_last_tag(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([by_speaker])
    config = make_config(fake_discord, tmp_path, scene={"max_chain": 0})
    async with running_bot(fake_discord, config, backend):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Aria?")
        await said(fake_discord, world, 1)
        await fake_discord.user_says(world.channel, world.alice, "Captain?")
        await said(fake_discord, world, 2)
    first, second = (r.prompt for r in backend.requests)
    assert second.startswith(first.removesuffix("[Aria]:"))  # the second reply reads only what is new
    assert second.endswith("[Aria]: Aria here.\n[Alice]: Captain?\n[Captain Brass]:")


async def test_the_cast_survives_a_restart(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    config = make_config(fake_discord, tmp_path, scene={"max_chain": 0})
    async with running_bot(fake_discord, config, ScriptedBackend()):
        await cast_of_three(fake_discord, world)
    async with running_bot(fake_discord, config, ScriptedBackend([by_speaker])):
        listed = await command(fake_discord, world, "list")
        await fake_discord.user_says(world.channel, world.alice, "Quill, a word?")
        [reply] = await said(fake_discord, world, 1)
    assert [line.strip("*") for line in listed.splitlines()[1:]] == CAST
    assert reply.username == "Professor Quill"


async def test_scene_remove_and_clear_shrink_the_cast(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()):
        await cast_of_three(fake_discord, world)
        await command(fake_discord, world, "remove", name="Aria")
        after_remove = await command(fake_discord, world, "list")
        cleared = await command(fake_discord, world, "clear")
        after_clear = await command(fake_discord, world, "list")
    assert [line.strip("*") for line in after_remove.splitlines()[1:]] == ["Captain Brass", "Professor Quill"]
    assert "Aria" in cleared and [line.strip("*") for line in after_clear.splitlines()[1:]] == ["Aria"]


async def test_character_set_makes_a_cast_of_one(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()):
        await cast_of_three(fake_discord, world)
        interaction = await fake_discord.invoke(world.channel, world.alice, "character", subcommand="set",
                                                options={"name": "Captain Brass"})
        await interaction.wait_response(5.0)
        listed = await command(fake_discord, world, "list")
    assert [line.strip("*") for line in listed.splitlines()[1:]] == ["Captain Brass"]


async def test_the_cast_is_limited_to_max_cast(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    config = make_config(fake_discord, tmp_path, scene={"max_cast": 2})
    async with running_bot(fake_discord, config, ScriptedBackend()):
        await command(fake_discord, world, "add", name="Captain Brass")
        refused = await command(fake_discord, world, "add", name="Professor Quill")
    assert "full" in refused and "scene.max_cast" in refused


async def test_only_admins_change_the_scene_when_configured(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path, scene={"manage": "admins"})
    async with running_bot(fake_discord, config, ScriptedBackend()):
        refused = await command(fake_discord, world, "add", name="Captain Brass")
        allowed = await command(fake_discord, world, "add", user=world.admin, name="Captain Brass")
    assert "Only admins" in refused and "joins the scene" in allowed


async def test_a_joining_character_says_its_group_greeting(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path)
    (tmp_path / "characters" / "bard.yaml").write_text(
        "name: Lute\npersona: A wandering bard.\ngroup_only_greetings:\n  - '*{{char}} tunes a lute.* Evening, all!'\n"
    )
    async with running_bot(fake_discord, config, ScriptedBackend()):
        await command(fake_discord, world, "add", name="Lute")
        [greeting] = await said(fake_discord, world, 1)
    assert greeting.username == "Lute" and greeting.content == "*Lute tunes a lute.* Evening, all!"


async def test_regenerate_rewrites_the_last_reply_with_the_same_speaker(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([by_speaker])
    config = make_config(fake_discord, tmp_path, scene={"max_chain": 0})
    async with running_bot(fake_discord, config, backend):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Captain?")
        [first] = await said(fake_discord, world, 1)
        interaction = await fake_discord.invoke(world.channel, world.alice, "regenerate")
        await fake_discord.wait_for(lambda: interaction.followups, timeout=5)
    [rewritten] = spoken(fake_discord, world)
    assert rewritten.id != first.id and rewritten.username == "Captain Brass"
    assert backend.requests[1].prompt.endswith("[Alice]: Captain?\n[Captain Brass]:")


async def test_stats_shows_the_cast_and_who_spoke(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    config = make_config(fake_discord, tmp_path, scene={"max_chain": 0})
    async with running_bot(fake_discord, config, ScriptedBackend([by_speaker])):
        await cast_of_three(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "Captain?")
        await said(fake_discord, world, 1)
        interaction = await fake_discord.invoke(world.channel, world.alice, "stats")
        await interaction.wait_response(5.0)
    text = (interaction.responses[0].get("data") or {}).get("content") or ""
    assert "last speaker: Captain Brass" in text
    assert "Aria (0 replies), Captain Brass (1 replies), Professor Quill (0 replies)" in text


async def test_real_model_two_member_scene_never_writes_another_turn(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, model_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path, backend={"model": str(model_path), "n_ctx": 2048},
                         prompt={"max_reply_tokens": 48}, scene={"director": "list", "max_chain": 1})
    backend = LlamaCppBackend(config.backend)  # type: ignore[arg-type]
    try:
        async with running_bot(fake_discord, config, backend):
            await command(fake_discord, world, "add", name="Captain Brass")
            await fake_discord.user_says(world.channel, world.alice, "Aria, tell the captain about the stew!")
            replies = await said(fake_discord, world, 2, timeout=120)
            await asyncio.sleep(0.5)
    finally:
        await backend.aclose()
    assert [m.username for m in replies] == ["Aria", "Captain Brass"]
    for reply in replies:
        assert reply.content.strip() and "\n[" not in reply.content and "[Alice]" not in reply.content
        assert "[Aria]" not in reply.content and "[Captain Brass]" not in reply.content


def test_bundled_cards_have_the_talkativeness_the_director_reads(characters_dir: Path) -> None:
    library = CharacterLibrary(characters_dir)
    library.load()
    assert [member_of(c).talkativeness for c in library.all()] == [0.5, 0.6, 0.5]
