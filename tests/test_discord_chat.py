"""Conversations end to end: the real bot, real discord.py, the strict fake Discord."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord
from fakediscord.model import Message
from fakediscord.permissions import DEFAULT_BOT_PERMISSIONS, Perm

from bot.backends.llama_cpp import LlamaCppBackend
from bot.cogs.chat import BUSY, COOLDOWN
from bot.errors import BackendUnavailable
from bot.testing import ScriptedBackend

pytestmark = pytest.mark.discord


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


async def bot_messages(fake: FakeDiscord, world: World, count: int = 1, timeout: float = 5.0) -> list[Message]:
    """Wait until the bot has posted ``count`` messages in the channel and none is still changing."""
    return await fake.wait_for(lambda: (m := fake.sent_by_bot(world.channel)) and len(m) >= count and m, timeout)


async def test_mention_is_answered_as_the_character_through_a_webhook(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Welcome, ", "Alice! The stew's ", "good tonight."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "what's good tonight?", mention_bot=True)
        await fake_discord.wait_for(lambda: any(
            m.content == "Welcome, Alice! The stew's good tonight." for m in fake_discord.sent_by_bot(world.channel)
        ))
    [reply] = fake_discord.sent_by_bot(world.channel)
    assert reply.webhook_id is not None and reply.username == "Aria"
    assert backend.requests[0].prompt.endswith("[Alice]: @Aria what's good tonight?\n[Aria]:")
    assert backend.requests[0].conversation == str(world.channel.id)
    assert fake_discord.pinged() == [] and fake_discord.unhandled == []


async def test_real_model_answers_a_mention_without_writing_other_turns(
    fake_discord: FakeDiscord, world: World, tmp_path: Path, model_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path, backend={"model": str(model_path), "n_ctx": 2048},
                         prompt={"max_reply_tokens": 48})
    backend = LlamaCppBackend(config.backend)  # type: ignore[arg-type]
    try:
        async with running_bot(fake_discord, config, backend):
            await fake_discord.user_says(world.channel, world.alice, "Evening, Aria! Any stew left?", mention_bot=True)
            [reply] = await bot_messages(fake_discord, world, timeout=60)
            await asyncio.sleep(0.5)
    finally:
        await backend.aclose()
    assert reply.username == "Aria" and reply.content.strip()
    assert "[Alice]" not in reply.content and "\n[" not in reply.content


async def test_long_reply_continues_in_new_messages_split_at_paragraphs(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    paragraphs = [f"Paragraph {i}. " + " ".join(f"Then came day {i * 40 + j} of the tale." for j in range(30))
                  + " And on and on." for i in range(6)]
    text = "\n\n".join(paragraphs)
    backend = ScriptedBackend([[text[i:i + 50] for i in range(0, len(text), 50)]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "tell me a long story", mention_bot=True)
        await fake_discord.wait_for(
            lambda: "".join(m.content for m in fake_discord.sent_by_bot(world.channel)).count("Paragraph") == 6
            and fake_discord.sent_by_bot(world.channel)[-1].content.endswith("on and on."), timeout=15)
    parts = fake_discord.sent_by_bot(world.channel)
    assert len(parts) >= 3 and all(len(p.content) <= 2000 for p in parts)
    assert all(p.content.rstrip().endswith("on and on.") for p in parts)  # cut at a paragraph, not mid-word
    assert "\n\n".join(p.content for p in parts).split() == text.split()


async def test_streaming_edits_are_throttled(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    fake_discord.set_rate_limit(5, 5.0)
    words = [f"word{i} " for i in range(120)]
    backend = ScriptedBackend([words], chunk_delay=0.02)  # about 2.4 s of streaming
    config = make_config(fake_discord, tmp_path, discord={"edit_interval": 1.0})
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "count for me", mention_bot=True)
        [reply] = await bot_messages(fake_discord, world)
        await fake_discord.wait_for(lambda: reply.content.endswith("word119"), timeout=10)
    assert 1 <= len(reply.edits) <= 4  # about one edit a second, never one per chunk
    assert fake_discord.rate_limited == []


async def test_model_output_never_pings(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    role = world.guild.add_role("Regulars", mentionable=True)
    hostile = f"@everyone @here <@&{role.id}> {world.alice.mention} drinks on me!"
    backend = ScriptedBackend([[hostile]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "shout it", mention_bot=True)
        [reply] = await bot_messages(fake_discord, world)
    assert "drinks on me!" in reply.content
    assert fake_discord.pinged() == []
    assert reply.allowed_mentions is not None and reply.allowed_mentions.get("parse") == []


async def test_without_manage_webhooks_the_bot_speaks_with_the_name_in_bold(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    world.guild.set_bot_permissions(DEFAULT_BOT_PERMISSIONS & ~Perm.MANAGE_WEBHOOKS)
    backend = ScriptedBackend([["Stew's on."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "food?", mention_bot=True)
        [reply] = await bot_messages(fake_discord, world)
    assert reply.webhook_id is None and reply.content == "**Aria**: Stew's on."
    assert reply.reference_id is not None  # answers the message it replies to


async def test_replies_to_the_character_and_wake_words_are_answered(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["First."], ["Second."], ["Third."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "hello", mention_bot=True)
        [first] = await bot_messages(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "really?", reply_to=first)
        await bot_messages(fake_discord, world, 2)
        await fake_discord.user_says(world.channel, world.alice, "I think aria would know")
        await bot_messages(fake_discord, world, 3)
        await fake_discord.user_says(world.channel, world.alice, "nobody asked the barmaid")  # not for us
        await asyncio.sleep(0.3)
    assert [m.content for m in fake_discord.sent_by_bot(world.channel)] == ["First.", "Second.", "Third."]
    assert "[Aria]: First." in backend.requests[1].prompt  # its own reply, under the character's name


async def test_other_bots_are_ignored_unless_opted_in(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    robot = fake_discord.add_user("robo", bot=True)
    world.guild.add_member(robot)
    backend = ScriptedBackend([["Hi robot."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, robot, "beep", mention_bot=True)
        await asyncio.sleep(0.3)
        assert backend.requests == []
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path, discord={"respond_to_bots": True}),
                           backend):
        await fake_discord.user_says(world.channel, robot, "beep again", mention_bot=True)
        await bot_messages(fake_discord, world)


async def test_dms_are_answered_when_allowed(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    dm = fake_discord.dm_channel(world.alice)
    backend = ScriptedBackend([["Psst, hello."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(dm, world.alice, "hi in private")
        await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(dm))
    [reply] = fake_discord.sent_by_bot(dm)
    assert reply.content == "**Aria**: Psst, hello."  # no webhooks in DMs


async def test_dms_are_ignored_when_not_allowed(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    dm = fake_discord.dm_channel(world.alice)
    backend = ScriptedBackend([["nope"]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path, discord={"allow_dms": False}), backend):
        await fake_discord.user_says(dm, world.alice, "hi in private")
        await asyncio.sleep(0.3)
    assert fake_discord.sent_by_bot(dm) == [] and backend.requests == []


async def test_thread_reads_its_own_history_and_the_starter(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["In the thread."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "unrelated channel chatter")
        starter = await fake_discord.user_says(world.channel, world.alice, "Let's plan the harvest feast")
        thread = world.channel.add_thread("feast", starter_message=starter)
        await fake_discord.user_says(thread, world.alice, "what should we cook?", mention_bot=True)
        await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(thread))
    prompt = backend.requests[0].prompt
    assert "Let's plan the harvest feast" in prompt and "unrelated channel chatter" not in prompt
    [reply] = fake_discord.sent_by_bot(thread)
    assert reply.username == "Aria" and reply.content == "In the thread."


async def test_attachments_and_mentions_are_named_in_the_transcript(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Nice map."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.admin, f"hey {world.alice.mention}, look",
                                     attachments=[("map.png", b"\x89PNG fake")])
        await fake_discord.user_says(world.channel, world.alice, "what do you think?", mention_bot=True)
        await bot_messages(fake_discord, world)
    assert "[Boss]: hey @Alice, look [attachment: map.png]\n" in backend.requests[0].prompt


async def test_empty_reply_is_retried_then_the_fallback_is_sent(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["  "], ["\n[alice]: hi"]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "say something", mention_bot=True)
        [reply] = await bot_messages(fake_discord, world)
    assert reply.content == "…" and len(backend.requests) == 2


async def test_backend_failure_gets_one_honest_message_and_the_next_mention_works(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([BackendUnavailable("connection refused"), ["Back again."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "hello?", mention_bot=True)
        [notice] = await bot_messages(fake_discord, world)
        await fake_discord.user_says(world.channel, world.alice, "hello again?", mention_bot=True)
        await bot_messages(fake_discord, world, 2)
    messages = [m.content for m in fake_discord.sent_by_bot(world.channel)]
    assert "model server isn't reachable" in notice.content
    assert messages[1] == "Back again."


async def test_mentions_queue_per_channel_and_overflow_gets_a_busy_reaction(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["One."], ["Two."], ["Three."]], first_chunk_delay=0.5)
    config = make_config(fake_discord, tmp_path, discord={"queue_size": 1})
    async with running_bot(fake_discord, config, backend):
        sent = [await fake_discord.user_says(world.channel, world.alice, f"q{i}", mention_bot=True) for i in range(4)]
        await bot_messages(fake_discord, world, 2, timeout=10)
        await fake_discord.wait_for(lambda: all(BUSY in m.reactions for m in sent[2:]))
        await asyncio.sleep(0.3)
    assert [m.content for m in fake_discord.sent_by_bot(world.channel)] == ["One.", "Two."]
    assert backend.active == 0 and len(backend.requests) == 2


async def test_per_user_cooldown_turns_away_with_a_reaction(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Easy there."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path, discord={"user_cooldown": 60}), backend):
        await fake_discord.user_says(world.channel, world.alice, "one", mention_bot=True)
        await bot_messages(fake_discord, world)
        second = await fake_discord.user_says(world.channel, world.alice, "two", mention_bot=True)
        await fake_discord.wait_for(lambda: COOLDOWN in second.reactions)
    assert len(backend.requests) == 1


async def test_access_lists_decide_where_the_bot_speaks(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    other = world.guild.add_text_channel("quiet")
    backend = ScriptedBackend([["Allowed here."]])
    config = make_config(fake_discord, tmp_path, discord={"access": {"deny_channels": [other.id]}})
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(other, world.alice, "hello?", mention_bot=True)
        await fake_discord.user_says(world.channel, world.alice, "hello?", mention_bot=True)
        await bot_messages(fake_discord, world)
        await asyncio.sleep(0.2)
    assert fake_discord.sent_by_bot(other) == [] and len(backend.requests) == 1


class WarmableBackend(ScriptedBackend):
    """A scripted backend that also records pre-warm requests (the embedded one keeps state)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.warmed: list[tuple[str, str]] = []

    async def prewarm(self, conversation: str, text: str, **options: object) -> int:
        self.warmed.append((conversation, text))
        return len(text) // 4


async def test_active_channels_are_prewarmed_at_start(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    config = make_config(fake_discord, tmp_path)
    backend = WarmableBackend([["Hello."], ["Again."]])
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "hi", mention_bot=True)
        await bot_messages(fake_discord, world)
    assert backend.warmed == []  # nothing was active before the first start
    async with running_bot(fake_discord, config, backend):
        await fake_discord.wait_for(lambda: len(backend.warmed) == 2)
        await fake_discord.user_says(world.channel, world.alice, "hi again", mention_bot=True)
        await bot_messages(fake_discord, world, 2)
    [(conversation, prefix), (same, history)] = backend.warmed  # the card at once, then the channel's talk
    assert conversation == same == str(world.channel.id)
    assert history.startswith(prefix) and "Copper Kettle" in prefix
    assert history.endswith("[Alice]: @Aria hi\n[Aria]: Hello.\n")
    assert backend.requests[-1].prompt.startswith(history)  # the first reply after the restart adds only the mention


async def test_after_a_restart_earlier_replies_are_still_the_characters(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = make_config(fake_discord, tmp_path)
    backend = ScriptedBackend([["The stew is hot."], ["As I said."]])
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "food?", mention_bot=True)
        [first] = await bot_messages(fake_discord, world)
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "what did you say?", reply_to=first)
        await bot_messages(fake_discord, world, 2)
    assert "[Aria]: The stew is hot.\n" in backend.requests[1].prompt
    assert "Aria (user)" not in backend.requests[1].prompt


async def test_quiet_channel_is_read_ahead_before_the_next_mention(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = WarmableBackend([["Hello."], ["Again."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "quiet before the bot speaks")
        await asyncio.sleep(1.0)
        assert backend.warmed == []  # not a channel the character talks in yet
        await fake_discord.user_says(world.channel, world.alice, "hi", mention_bot=True)
        await bot_messages(fake_discord, world)
        await fake_discord.user_says(world.channel, world.admin, "the harvest is early this year")
        await fake_discord.user_says(world.channel, world.alice, "so it is")
        await fake_discord.wait_for(lambda: backend.warmed, timeout=5)
        await fake_discord.user_says(world.channel, world.alice, "Aria?", mention_bot=True)
        await bot_messages(fake_discord, world, 2)
    [(conversation, history)] = backend.warmed
    assert conversation == str(world.channel.id)
    assert history.endswith("[Alice]: so it is\n")
    assert backend.requests[-1].prompt.startswith(history)  # the reply only adds the mention and its opening


async def test_read_ahead_can_be_turned_off(fake_discord: FakeDiscord, world: World, tmp_path: Path) -> None:
    backend = WarmableBackend([["Hello."]])
    config = make_config(fake_discord, tmp_path, prompt={"read_ahead": False})
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "hi", mention_bot=True)
        await bot_messages(fake_discord, world)
        await fake_discord.user_says(world.channel, world.admin, "chatter")
        await asyncio.sleep(1.0)
    assert backend.warmed == []


async def test_a_shard_answers_only_the_servers_discord_gives_it(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    def shard_of(guild_id: int) -> int:
        return (guild_id >> 22) % 2  # Discord's rule for two shards

    other = fake_discord.add_guild("Far Inn")
    while shard_of(other.id) == shard_of(world.guild.id):
        await asyncio.sleep(0.002)  # a server made a millisecond later lands on the other shard
        other = fake_discord.add_guild("Far Inn")
    other.add_member(world.alice)
    far = other.add_text_channel("common-room")
    backend = ScriptedBackend([["Here."], ["Also here?"]])
    config = make_config(fake_discord, tmp_path, discord={"shard_count": 2, "shard_id": shard_of(world.guild.id)})
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(far, world.alice, "anyone over here?", mention_bot=True)
        await fake_discord.user_says(world.channel, world.alice, "hello there?", mention_bot=True)
        await fake_discord.wait_for(lambda: fake_discord.sent_by_bot(world.channel))
        await asyncio.sleep(0.3)
    assert fake_discord.sent_by_bot(far) == [] and len(backend.requests) == 1


async def test_out_of_character_messages_are_neither_answered_nor_read(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["In character, always."]])
    async with running_bot(fake_discord, make_config(fake_discord, tmp_path), backend):
        await fake_discord.user_says(world.channel, world.alice, "// brb, pizza is here", mention_bot=True)
        await fake_discord.user_says(world.channel, world.admin, "  (( is the bot lagging? ))")
        await asyncio.sleep(0.3)
        assert backend.requests == []  # the OOC mention got no reply
        await fake_discord.user_says(world.channel, world.alice, "Aria, pour me a cider", mention_bot=True)
        await bot_messages(fake_discord, world)
    [request] = backend.requests
    assert "pour me a cider" in request.prompt
    assert "pizza" not in request.prompt and "lagging" not in request.prompt


async def test_out_of_character_prefixes_can_be_turned_off(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Comments are welcome here."]])
    config = make_config(fake_discord, tmp_path, discord={"ooc_prefixes": []})
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "// a comment for Aria", mention_bot=True)
        await bot_messages(fake_discord, world)
    assert "// a comment for Aria" in backend.requests[-1].prompt
