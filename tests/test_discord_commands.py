"""Slash commands end to end against the fake Discord."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord, FakeDiscordError
from fakediscord.interactions import Interaction

from bot.testing import ScriptedBackend

pytestmark = pytest.mark.discord


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


def said(interaction: Interaction) -> str:
    """Everything the bot answered to an interaction, as text."""
    texts = []
    for response in interaction.responses:
        data = response.get("data") or {}
        texts.append(data.get("content") or "")
        texts.extend(e.get("description", "") + " ".join(f["value"] for f in e.get("fields", []))
                     for e in data.get("embeds", []))
    texts.extend(m.content for m in interaction.followups)
    return "\n".join(texts)


async def answered(fake: FakeDiscord, interaction: Interaction, *, followups: int = 0, timeout: float = 5.0) -> str:
    await interaction.wait_response(timeout)
    await fake.wait_for(lambda: len(interaction.followups) >= followups, timeout)
    return said(interaction)


async def test_commands_are_synced(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()):
        names = {c["name"] for c in fake_discord.commands.all()}
    assert {"character", "reset", "regenerate", "stop", "stats", "model", "config"} <= names


async def test_character_list_shows_every_character(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()):
        interaction = await fake_discord.invoke(world.channel, world.alice, "character", subcommand="list")
        text = await answered(fake_discord, interaction)
    assert "Aria" in text and "Captain Brass" in text and "Professor Quill" in text


async def test_autocomplete_offers_matching_names(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()):
        interaction = await fake_discord.autocomplete(world.channel, world.alice, "character", subcommand="set",
                                                      focused="name", options={"name": "cap"})
        await interaction.wait_response()
    assert [c["value"] for c in interaction.choices] == ["Captain Brass"]


async def test_character_set_greets_and_survives_a_restart(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path)
    backend = ScriptedBackend([["Aye, what is it?"]])
    async with running_bot(fake_discord, config, backend):
        interaction = await fake_discord.invoke(world.channel, world.alice, "character", subcommand="set",
                                                options={"name": "captain brass"})
        assert "Captain Brass" in await answered(fake_discord, interaction)
        await fake_discord.wait_for(lambda: any(m.username == "Captain Brass" for m in fake_discord.sent_by_bot(world.channel)))
    async with running_bot(fake_discord, config, backend):  # a new process would see the same store
        await fake_discord.user_says(world.channel, world.alice, "captain, a word", mention_bot=True)
        await fake_discord.wait_for(lambda: any(m.content == "Aye, what is it?" for m in fake_discord.sent_by_bot(world.channel)))
    reply = fake_discord.sent_by_bot(world.channel)[-1]
    assert reply.username == "Captain Brass"
    assert backend.requests[0].prompt.rstrip().endswith("[Captain Brass]:")
    assert "is now this channel's character" not in backend.requests[0].prompt  # bot notices stay out
    assert "[Captain Brass]: " in backend.requests[0].prompt  # the greeting is the character's turn


async def test_server_scope_is_for_admins(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    other = world.guild.add_text_channel("deck")
    backend = ScriptedBackend([["Hoot."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        refused = await fake_discord.invoke(world.channel, world.alice, "character", subcommand="set",
                                            options={"name": "Professor Quill", "scope": "server"})
        assert "Only server admins" in await answered(fake_discord, refused)
        allowed = await fake_discord.invoke(world.channel, world.admin, "character", subcommand="set",
                                            options={"name": "Professor Quill", "scope": "server"})
        assert "server's default" in await answered(fake_discord, allowed)
        await fake_discord.user_says(other, world.alice, "hello", mention_bot=True)
        await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(other))
    assert fake_discord.sent_by_bot(other)[-1].username == "Professor Quill"


async def test_character_info_shows_the_card_with_its_avatar(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()):
        interaction = await fake_discord.invoke(world.channel, world.alice, "character", subcommand="info",
                                                options={"name": "Professor Quill"})
        await interaction.wait_response()
    data = interaction.responses[0]["data"]
    [embed] = data["embeds"]
    assert embed["title"] == "Professor Quill"
    assert embed["thumbnail"]["url"] == "attachment://avatar.png"


async def test_import_refuses_a_bad_card_with_its_reason(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()) as bot:
        bad = await fake_discord.invoke(world.channel, world.admin, "character", subcommand="import",
                                        options={"file": ("broken.json", b'{"name": 5}')})
        text = await answered(fake_discord, bad, followups=1)
        assert "Card refused" in text and "name" in text
        good_card = json.dumps({"spec": "chara_card_v2", "spec_version": "2.0",
                                "data": {"name": "Mira", "description": "A travelling bard."}}).encode()
        good = await fake_discord.invoke(world.channel, world.admin, "character", subcommand="import",
                                         options={"file": ("mira.json", good_card)})
        assert "Imported **Mira**" in await answered(fake_discord, good, followups=1)
        assert bot.library.get("mira") is not None
        again = await fake_discord.invoke(world.channel, world.admin, "character", subcommand="import",
                                          options={"file": ("mira.json", good_card)})
        assert "already" in (await answered(fake_discord, again, followups=1)).lower()


async def test_admin_commands_are_refused_for_others(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()):
        imported = await fake_discord.invoke(world.channel, world.alice, "character", subcommand="import",
                                             options={"file": ("x.json", b"{}")})
        assert "Only admins" in await answered(fake_discord, imported)
        loaded = await fake_discord.invoke(world.channel, world.alice, "model", subcommand="load",
                                           options={"name": "other"})
        assert "Only admins" in await answered(fake_discord, loaded)
        reload = await fake_discord.invoke(world.channel, world.alice, "config", subcommand="reload",
                                           enforce_permissions=False)
        assert "Only admins" in await answered(fake_discord, reload)
    [config_command] = [c for c in fake_discord.commands.all() if c["name"] == "config"]
    assert config_command["default_member_permissions"] == "32"  # Manage Server, set on Discord's side too


async def test_config_reload_refuses_a_broken_file_and_keeps_running(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path)
    assert config.source is not None
    backend = ScriptedBackend([["Still here."]])
    async with running_bot(fake_discord, config, backend) as bot:
        config.source.write_text("prompt: [broken\n")
        interaction = await fake_discord.invoke(world.channel, world.admin, "config", subcommand="reload")
        text = await answered(fake_discord, interaction, followups=1)
        assert "Config refused" in text and "not valid YAML" in text
        assert bot.config is config
        config.source.write_text(
            f"characters_dir: {tmp_path / 'characters'}\nstore: {{path: {tmp_path / 'troupe.db'}}}\n"
            f"discord: {{api_url: '{fake_discord.api_url}', gateway_url: '{fake_discord.gateway_url}', "
            f"token: '{fake_discord.token}', user_cooldown: 9}}\n"
        )
        ok = await fake_discord.invoke(world.channel, world.admin, "config", subcommand="reload")
        assert "Config reloaded" in await answered(fake_discord, ok, followups=1)
        assert bot.config.discord.user_cooldown == 9
        await fake_discord.user_says(world.channel, world.alice, "still there?", mention_bot=True)
        await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(world.channel))


async def test_reset_fences_off_earlier_history(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([["Fresh start."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "my secret password is swordfish")
        reset = await fake_discord.invoke(world.channel, world.alice, "reset")
        assert "forgotten" in await answered(fake_discord, reset)
        await fake_discord.user_says(world.channel, world.alice, "what did I tell you?", mention_bot=True)
        await fake_discord.wait_for(lambda: [m for m in fake_discord.sent_by_bot(world.channel) if m.webhook_id])
    prompt = backend.requests[0].prompt
    assert "swordfish" not in prompt and "what did I tell you?" in prompt


async def test_regenerate_rewrites_the_last_reply(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([["Take one."], ["Take two."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "sing", mention_bot=True)
        await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(world.channel))
        interaction = await fake_discord.invoke(world.channel, world.alice, "regenerate")
        assert "Rewritten" in await answered(fake_discord, interaction, followups=1)
    live = [m.content for m in fake_discord.sent_by_bot(world.channel) if m.webhook_id]
    assert live == ["Take two."]
    assert "Take one." not in backend.requests[1].prompt and "sing" in backend.requests[1].prompt


async def test_stop_aborts_the_running_reply(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([[f"word{i} " for i in range(400)]], chunk_delay=0.02)
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "talk forever", mention_bot=True)
        await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(world.channel))
        interaction = await fake_discord.invoke(world.channel, world.alice, "stop")
        assert "Stopped" in await answered(fake_discord, interaction)
        await asyncio.sleep(0.5)
        [reply] = [m for m in fake_discord.sent_by_bot(world.channel) if m.webhook_id]
        frozen = reply.content
        await asyncio.sleep(0.5)
    assert reply.content == frozen and "word399" not in frozen
    assert backend.aborted == [str(world.channel.id)] and backend.active == 0


async def test_stats_and_model_info(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = ScriptedBackend([["Stew."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "food?", mention_bot=True)
        await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(world.channel))
        await asyncio.sleep(0.2)
        stats = await fake_discord.invoke(world.channel, world.alice, "stats")
        assert "context used:" in await answered(fake_discord, stats)
        info = await fake_discord.invoke(world.channel, world.alice, "model", subcommand="info")
        assert "scripted" in await answered(fake_discord, info, followups=1)


async def test_wake_words_can_be_turned_off_per_channel(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["You called?"]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        refused = await fake_discord.invoke(world.channel, world.alice, "wakewords", options={"mode": "off"})
        assert "Only admins" in await answered(fake_discord, refused)
        off = await fake_discord.invoke(world.channel, world.admin, "wakewords", options={"mode": "off"})
        assert "off in this channel" in await answered(fake_discord, off)
        await fake_discord.user_says(world.channel, world.alice, "Aria is lovely")
        await asyncio.sleep(0.3)
        assert backend.requests == []
        default = await fake_discord.invoke(world.channel, world.admin, "wakewords", options={"mode": "default"})
        assert "on in this channel" in await answered(fake_discord, default)  # confirmed before anyone talks
        await fake_discord.user_says(world.channel, world.alice, "Aria is lovely")
        await fake_discord.wait_for(lambda: backend.requests)


async def test_stats_shows_each_pool_member(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    from bot.backends.pool import PoolBackend

    first, second = ScriptedBackend([["From the pool."]]), ScriptedBackend([["From the pool."]])
    first.name, second.name = "gpu-a", "gpu-b"
    pool = PoolBackend([first, second], health_interval=0.2)
    try:
        async with running_bot(fake_discord, make_config(fake_discord, tmp_path), pool):
            await fake_discord.user_says(world.channel, world.alice, "hello", mention_bot=True)
            await fake_discord.wait_for(lambda: [m for m in fake_discord.sent_by_bot(world.channel) if m.webhook_id])
            stats = await fake_discord.invoke(world.channel, world.alice, "stats")
            text = await answered(fake_discord, stats)
    finally:
        await pool.aclose()
    assert "member gpu-a: up" in text and "member gpu-b: up" in text and "1 served" in text


async def test_cards_dropped_into_the_folder_go_live_without_a_restart(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(fake_discord, tmp_path, characters_watch=0.05)
    folder = tmp_path / "characters"
    async with running_bot(fake_discord, config, ScriptedBackend()) as bot:
        (folder / "nova.yaml").write_text("name: Nova\ndescription: A star pilot who answers in short bursts.\n")
        (folder / "broken.json").write_text("{not json")
        await fake_discord.wait_for(lambda: "Nova" in bot.library)
        interaction = await fake_discord.invoke(world.channel, world.alice, "character", subcommand="list")
        text = await answered(fake_discord, interaction)
        assert "Nova" in text and "Aria" in text  # the broken card is skipped, the others stay
        assert any("broken.json" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
        (folder / "nova.yaml").unlink()
        await fake_discord.wait_for(lambda: "Nova" not in bot.library)
        assert "Aria" in bot.library


async def test_a_channel_note_steers_the_next_replies_until_cleared(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Evening."], ["Closing up."], ["Morning!"]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        refused = await fake_discord.invoke(world.channel, world.alice, "note", subcommand="set",
                                            options={"text": "Everyone is a pirate."})
        assert "Only admins" in await answered(fake_discord, refused)
        set_note = await fake_discord.invoke(world.channel, world.admin, "note", subcommand="set",
                                             options={"text": "It is night and the tavern is about to close."})
        assert "about to close" in await answered(fake_discord, set_note)
        shown = await fake_discord.invoke(world.channel, world.alice, "note", subcommand="show")
        assert "about to close" in await answered(fake_discord, shown)
        await fake_discord.user_says(world.channel, world.alice, "one more drink?", mention_bot=True)
        await fake_discord.wait_for(lambda: len(backend.requests) == 1)
        with_note = backend.requests[-1].prompt
        cleared = await fake_discord.invoke(world.channel, world.admin, "note", subcommand="clear")
        assert "no note" in await answered(fake_discord, cleared)
        await fake_discord.user_says(world.channel, world.alice, "and now?", mention_bot=True)
        await fake_discord.wait_for(lambda: len(backend.requests) == 2)
    history_end = with_note.index("one more drink?")
    assert with_note.find("It is night and the tavern is about to close.") > history_end  # after the talk
    assert with_note.rstrip().endswith("[Aria]:")
    assert "about to close" not in backend.requests[-1].prompt


async def test_discord_itself_refuses_a_note_over_the_length_limit(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), ScriptedBackend()):
        fits = await fake_discord.invoke(world.channel, world.admin, "note", subcommand="set", options={"text": "x" * 1000})
        assert "now" in await answered(fake_discord, fits)
        with pytest.raises(FakeDiscordError, match="'text': length out of range"):
            await fake_discord.invoke(world.channel, world.admin, "note", subcommand="set", options={"text": "x" * 1001})
