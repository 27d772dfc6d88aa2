"""The fake Discord, driven by the real discord.py client over sockets (not Troupe's bot)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from fakediscord import FakeDiscord, FakeDiscordError, Perm, User, run_client
from fakediscord.fixtures import check_clean, fake_discord  # noqa: F401  (pytest fixture)
from fakediscord.model import Channel, Guild, Role

pytestmark = [pytest.mark.discord, pytest.mark.timeout(30)]


@dataclass
class Scene:
    fake: FakeDiscord
    guild: Guild
    channel: Channel
    alice: User
    admin: User
    fans: Role


@pytest.fixture
def scene(fake_discord: FakeDiscord) -> Scene:  # noqa: F811
    guild = fake_discord.add_guild("Test Server")
    channel = guild.add_text_channel("general", guild.add_category("Chat"))
    alice = fake_discord.add_user("alice")
    admin = fake_discord.add_user("root")
    fans = guild.add_role("fans", mentionable=True)
    guild.add_member(alice, roles=[fans], nick="Ali")
    guild.add_member(admin, permissions=Perm.ADMINISTRATOR)
    return Scene(fake_discord, guild, channel, alice, admin, fans)


class QuickBot(commands.Bot):
    """A plain discord.py bot that re-identifies at once (discord.py normally waits 5 s)."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


def make_bot(*, content: bool = True, members: bool = False, **options: object) -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = content
    intents.members = members
    return QuickBot(command_prefix="!", intents=intents, guild_ready_timeout=0.05, help_command=None, **options)


@asynccontextmanager
async def running(fake: FakeDiscord, bot: commands.Bot | None = None) -> AsyncIterator[commands.Bot]:
    async with run_client(bot or make_bot(), fake) as client:
        yield client


def inbox(bot: commands.Bot) -> list[discord.Message]:
    """Collect every message event the bot receives."""
    received: list[discord.Message] = []

    async def on_message(message: discord.Message) -> None:
        received.append(message)

    bot.add_listener(on_message)
    return received


async def raw(fake: FakeDiscord, method: str, path: str, **kwargs: object) -> tuple[int, dict[str, str], object]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, fake.api_url + path, **kwargs) as response:  # type: ignore[arg-type]
            body = await response.json() if response.content_type == "application/json" else await response.text()
            return response.status, dict(response.headers), body


# -- login and events ------------------------------------------------------------------------


async def test_login_gets_ready_then_guild_create_with_channels_roles_and_bot_member(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        guild = bot.get_guild(scene.guild.id)
        assert guild is not None and guild.name == "Test Server"
        assert bot.user is not None and bot.user.id == scene.fake.bot_user.id
        assert bot.application_id == scene.fake.application_id
        channel = guild.get_channel(scene.channel.id)
        assert isinstance(channel, discord.TextChannel) and channel.category is not None
        assert channel.category.name == "Chat"
        assert {r.name for r in guild.roles} >= {"@everyone", "fans", "Troupe"}
        assert guild.me.guild_permissions.manage_webhooks
        assert scene.fake.gateway.count("IDENTIFY") == 1


async def test_wrong_token_fails_login(scene: Scene) -> None:
    client = discord.Client(intents=discord.Intents.default())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()
    assert scene.fake.requests[-1].status == 401


async def test_on_message_sees_user_message_with_mentions(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        sent = await scene.fake.user_says(scene.channel, scene.alice, f"hi {scene.fans.mention}", mention_bot=True)
        await scene.fake.wait_for(lambda: received)
        message = received[0]
        assert message.id == sent.id
        assert message.content == f"<@{bot.user.id}> hi <@&{scene.fans.id}>"
        assert [m.id for m in message.mentions] == [bot.user.id]
        assert [r.id for r in message.role_mentions] == [scene.fans.id]
        assert isinstance(message.author, discord.Member) and message.author.display_name == "Ali"


async def test_content_is_hidden_without_the_message_content_intent_unless_bot_is_mentioned(scene: Scene) -> None:
    async with running(scene.fake, make_bot(content=False)) as bot:
        received = inbox(bot)
        await scene.fake.user_says(scene.channel, scene.alice, "secret")
        await scene.fake.user_says(scene.channel, scene.alice, "hey", mention_bot=True)
        await scene.fake.wait_for(lambda: len(received) == 2)
        assert [m.content for m in received] == ["", f"<@{bot.user.id}> hey"]


async def test_history_hides_content_when_the_intent_is_off_in_the_portal(scene: Scene) -> None:
    scene.fake.message_content_intent = False
    await scene.fake.user_says(scene.channel, scene.alice, "secret")
    await scene.fake.user_says(scene.channel, scene.alice, "hey", mention_bot=True)
    async with running(scene.fake, make_bot(content=False)) as bot:
        history = [m.content async for m in bot.get_channel(scene.channel.id).history(limit=10)]
    assert history == [f"<@{scene.fake.bot_user.id}> hey", ""]


async def test_message_content_intent_refused_when_disabled_in_portal(scene: Scene) -> None:
    scene.fake.message_content_intent = False
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running(scene.fake):
            pass


async def test_members_intent_chunks_every_member(scene: Scene) -> None:
    async with running(scene.fake, make_bot(members=True)) as bot:
        guild = bot.get_guild(scene.guild.id)
        assert guild is not None and guild.get_member(scene.alice.id) is not None
        assert guild.chunked


# -- messages -----------------------------------------------------------------------------------


async def test_send_then_edit_updates_the_stored_message(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        channel = bot.get_channel(scene.channel.id)
        message = await channel.send("draft")
        edited = await message.edit(content="final")
        stored = scene.fake.sent_by_bot(scene.channel)
        assert [m.content for m in stored] == ["final"]
        assert stored[0].edits == ["draft"]
        assert edited.edited_at is not None


async def test_history_is_newest_first_and_honours_before_after_around(scene: Scene) -> None:
    sent = [await scene.fake.user_says(scene.channel, scene.alice, f"m{i}") for i in range(6)]
    async with running(scene.fake) as bot:
        channel = bot.get_channel(scene.channel.id)
        latest = [m.content async for m in channel.history(limit=3)]
        before = [m.content async for m in channel.history(limit=2, before=discord.Object(sent[3].id))]
        after = [m.content async for m in channel.history(limit=2, after=discord.Object(sent[1].id), oldest_first=True)]
        around = [m.content async for m in channel.history(limit=3, around=discord.Object(sent[3].id))]
    assert latest == ["m5", "m4", "m3"]
    assert before == ["m2", "m1"]
    assert after == ["m2", "m3"]
    assert around == ["m4", "m3", "m2"]


async def test_message_over_2000_characters_is_refused_with_50035(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        with pytest.raises(discord.HTTPException) as caught:
            await bot.get_channel(scene.channel.id).send("x" * 2001)
    assert (caught.value.status, caught.value.code) == (400, 50035)
    assert "In content: Must be 2000 or fewer in length." in caught.value.text
    assert scene.fake.sent_by_bot() == []


async def test_empty_message_is_refused_with_50006(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        with pytest.raises(discord.HTTPException) as caught:
            await bot.get_channel(scene.channel.id).send("   ")
    assert (caught.value.status, caught.value.code) == (400, 50006)


async def test_embed_description_over_4096_is_refused(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        with pytest.raises(discord.HTTPException) as caught:
            await bot.get_channel(scene.channel.id).send(embed=discord.Embed(description="d" * 4097))
    assert (caught.value.status, caught.value.code) == (400, 50035)


async def test_file_upload_is_stored_and_served_by_the_cdn(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        sent = await bot.get_channel(scene.channel.id).send("card", file=discord.File(io.BytesIO(b"PNGDATA"), "aria.png"))
        assert await sent.attachments[0].read() == b"PNGDATA"
    stored = scene.fake.sent_by_bot(scene.channel)[0]
    assert [(a.filename, a.data) for a in stored.attachments] == [("aria.png", b"PNGDATA")]


async def test_user_attachment_reaches_the_bot_and_downloads(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        await scene.fake.user_says(scene.channel, scene.alice, "", attachments=[("card.json", b'{"name": "Aria"}')])
        await scene.fake.wait_for(lambda: received)
        assert await received[0].attachments[0].read() == b'{"name": "Aria"}'


async def test_editing_someone_elses_message_is_forbidden(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        await scene.fake.user_says(scene.channel, scene.alice, "mine")
        await scene.fake.wait_for(lambda: received)
        with pytest.raises(discord.Forbidden) as caught:
            await received[0].edit(content="hijacked")
    assert caught.value.code == 50005


async def test_unknown_channel_and_message_answer_404(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        with pytest.raises(discord.NotFound) as no_channel:
            await bot.fetch_channel(12345)
        with pytest.raises(discord.NotFound) as no_message:
            await bot.get_channel(scene.channel.id).fetch_message(12345)
    assert (no_channel.value.code, no_message.value.code) == (10003, 10008)


async def test_reply_to_deleted_message_fails_unless_fail_if_not_exists_is_false(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        original = await scene.fake.user_says(scene.channel, scene.alice, "question")
        await scene.fake.wait_for(lambda: received)
        await scene.fake.delete_message(original)
        with pytest.raises(discord.HTTPException) as caught:
            await received[0].reply("answer")
        sent = await received[0].channel.send("answer", reference=received[0].to_reference(fail_if_not_exists=False))
    assert (caught.value.status, caught.value.code) == (400, 50035)
    assert sent.reference is None and scene.fake.sent_by_bot()[0].reference is None


async def test_reply_to_a_deleted_message_arrives_with_a_deleted_reference(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        first = await bot.get_channel(scene.channel.id).send("said by bot")
        reply = await scene.fake.user_says(scene.channel, scene.alice, "replying", reply_to=scene.fake.sent_by_bot()[0])
        await scene.fake.delete_message(scene.fake.sent_by_bot()[0])
        fetched = await first.channel.fetch_message(reply.id)
    assert isinstance(fetched.reference.resolved, discord.DeletedReferencedMessage)


async def test_typing_is_recorded(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        await bot.get_channel(scene.channel.id).typing()
    assert [channel_id for channel_id, _ in scene.fake.typing] == [scene.channel.id]


async def test_reactions_are_stored_and_user_reactions_dispatched(scene: Scene) -> None:
    reactions: list[str] = []

    async def on_reaction_add(reaction: discord.Reaction, user: discord.User) -> None:
        reactions.append(str(reaction.emoji))

    async with running(scene.fake) as bot:
        bot.add_listener(on_reaction_add)
        sent = await bot.get_channel(scene.channel.id).send("react to me")
        await sent.add_reaction("⏳")
        stored = scene.fake.sent_by_bot()[0]
        await scene.fake.user_reacts(stored, scene.alice, "👍")
        await scene.fake.wait_for(lambda: "👍" in reactions)
    assert stored.reactions == {"⏳": [scene.fake.bot_user.id], "👍": [scene.alice.id]}


async def test_json_answers_have_exact_content_type_and_bot_routes_need_the_token(scene: Scene) -> None:
    status, headers, _ = await raw(scene.fake, "GET", "/users/@me", headers={"Authorization": f"Bot {scene.fake.token}"})
    denied, _, body = await raw(scene.fake, "GET", "/users/@me")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert (denied, body) == (401, {"message": "401: Unauthorized", "code": 0})


@pytest.mark.fake_discord_unhandled_ok
async def test_unimplemented_route_is_recorded_as_unhandled(scene: Scene) -> None:
    status, _, _ = await raw(scene.fake, "GET", "/voice/regions", headers={"Authorization": f"Bot {scene.fake.token}"})
    assert status == 404
    assert [r.path for r in scene.fake.unhandled] == ["/voice/regions"]


# -- mentions ----------------------------------------------------------------------------------


async def test_without_allowed_mentions_everyone_roles_and_users_are_pinged(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        await bot.get_channel(scene.channel.id).send(f"@everyone {scene.fans.mention} {scene.alice.mention}")
    message = scene.fake.sent_by_bot()[0]
    assert message.allowed_mentions is None
    assert message.pings.everyone and message.pings.roles == {scene.fans.id}
    assert message.pings.users == {scene.alice.id}
    assert scene.fake.pinged() == [message]


async def test_allowed_mentions_none_is_recorded_and_pings_nobody(scene: Scene) -> None:
    async with running(scene.fake, make_bot(allowed_mentions=discord.AllowedMentions.none())) as bot:
        received = inbox(bot)
        await bot.get_channel(scene.channel.id).send(f"@everyone @here {scene.fans.mention} {scene.alice.mention}")
        await scene.fake.wait_for(lambda: received)
    message = scene.fake.sent_by_bot()[0]
    assert message.allowed_mentions == {"parse": []}
    assert not message.pings and scene.fake.pinged() == []
    assert received[0].mention_everyone is False and received[0].mentions == []


async def test_reply_pings_its_author_unless_replied_user_is_false(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        await scene.fake.user_says(scene.channel, scene.alice, "ping me")
        await scene.fake.wait_for(lambda: received)
        await received[0].reply("loud")
        await received[0].reply("quiet", mention_author=False)
    loud, quiet = scene.fake.sent_by_bot()
    assert loud.pings.users == {scene.alice.id} and not quiet.pings


async def test_everyone_does_not_ping_when_the_bot_lacks_mention_everyone(scene: Scene) -> None:
    scene.guild.default_role.set_permissions(scene.guild.default_role.permissions & ~Perm.MENTION_EVERYONE)
    async with running(scene.fake) as bot:
        await bot.get_channel(scene.channel.id).send("@everyone hello")
    assert not scene.fake.sent_by_bot()[0].pings.everyone


# -- webhooks ----------------------------------------------------------------------------------


async def test_webhook_created_and_sends_with_username_and_avatar(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        hook = await bot.get_channel(scene.channel.id).create_webhook(name="Troupe voice")
        sent = await hook.send("I am Aria", username="Aria", avatar_url="https://example.com/aria.png", wait=True,
                               allowed_mentions=discord.AllowedMentions.none())
        await scene.fake.wait_for(lambda: received)
    stored = scene.fake.sent_by_bot(scene.channel)[0]
    assert (stored.username, stored.avatar_url, stored.webhook_id) == ("Aria", "https://example.com/aria.png", hook.id)
    assert stored.allowed_mentions == {"parse": []}
    assert sent.webhook_id == hook.id and received[0].author.name == "Aria"


async def test_webhook_username_containing_discord_is_refused(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        hook = await bot.get_channel(scene.channel.id).create_webhook(name="voice")
        with pytest.raises(discord.HTTPException) as caught:
            await hook.send("hi", username="Discord Staff", wait=True)
    assert (caught.value.status, caught.value.code) == (400, 50035)


async def test_webhook_creation_without_manage_webhooks_is_forbidden(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        channel = bot.get_channel(scene.channel.id)
        scene.channel.deny_bot(Perm.MANAGE_WEBHOOKS)
        await scene.fake.wait_for(lambda: not channel.permissions_for(channel.guild.me).manage_webhooks)
        with pytest.raises(discord.Forbidden) as caught:
            await channel.create_webhook(name="voice")
    assert caught.value.code == 50013


async def test_webhook_message_edit_shares_the_channel_rate_limit(scene: Scene) -> None:
    scene.fake.set_rate_limit(2, 0.3)
    async with running(scene.fake) as bot:
        hook = await bot.get_channel(scene.channel.id).create_webhook(name="voice")
        sent = await hook.send("one", wait=True)
        started = time.monotonic()
        for text in ("two", "three", "four"):
            await sent.edit(content=text)
        elapsed = time.monotonic() - started
    assert scene.fake.sent_by_bot()[0].content == "four"
    assert elapsed >= 0.25 and scene.fake.rate_limited == []


# -- rate limits and faults --------------------------------------------------------------------


async def test_429_is_retried_by_discordpy_and_the_send_succeeds(fake_discord: FakeDiscord) -> None:  # noqa: F811
    fake_discord.advertise_rate_limits = False
    fake_discord.set_rate_limit(2, 0.3)
    guild = fake_discord.add_guild("g")
    channel = guild.add_text_channel("c")
    async with running(fake_discord) as bot:
        for i in range(3):
            await bot.get_channel(channel.id).send(f"n{i}")
    assert [m.content for m in fake_discord.sent_by_bot()] == ["n0", "n1", "n2"]
    assert [r.status for r in fake_discord.errors] == [429]
    assert fake_discord.errors[0].path == f"/channels/{channel.id}/messages"


async def test_rate_limit_headers_let_discordpy_wait_instead_of_hitting_429(scene: Scene) -> None:
    scene.fake.set_rate_limit(2, 0.3)
    async with running(scene.fake) as bot:
        started = time.monotonic()
        for i in range(5):
            await bot.get_channel(scene.channel.id).send(f"n{i}")
        elapsed = time.monotonic() - started
    assert len(scene.fake.sent_by_bot()) == 5
    assert scene.fake.rate_limited == [] and elapsed >= 0.5


async def test_fail_next_injects_an_error_once(scene: Scene) -> None:
    scene.fake.fail_next("POST", "/channels/*/messages", 403, 50013)
    async with running(scene.fake) as bot:
        channel = bot.get_channel(scene.channel.id)
        with pytest.raises(discord.Forbidden) as caught:
            await channel.send("first")
        await channel.send("second")
    assert caught.value.code == 50013
    assert [m.content for m in scene.fake.sent_by_bot()] == ["second"]


async def test_injected_429_is_retried(scene: Scene) -> None:
    scene.fake.fail_next("PATCH", "/channels/*/messages/*", 429, times=2)
    async with running(scene.fake) as bot:
        sent = await bot.get_channel(scene.channel.id).send("a")
        await sent.edit(content="b")
    assert scene.fake.sent_by_bot()[0].content == "b"
    assert [r.status for r in scene.fake.requests if r.method == "PATCH"] == [429, 429, 200]


# -- application commands ----------------------------------------------------------------------


def character_bot(handler: object = None) -> commands.Bot:
    bot = make_bot()
    group = app_commands.Group(name="character", description="Choose the channel's character")

    @group.command(name="set", description="Set this channel's character")
    @app_commands.describe(name="Character name")
    async def set_character(interaction: discord.Interaction, name: str) -> None:
        if handler is not None:
            await handler(interaction, name)  # type: ignore[operator]
            return
        await interaction.response.send_message(f"Now playing {name}")
        await interaction.followup.send("Greeting!")

    @set_character.autocomplete("name")
    async def names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=n, value=n) for n in ("Aria", "Arthur", "Bob") if n.startswith(current)]

    @group.command(name="import", description="Import a card")
    async def import_card(interaction: discord.Interaction, card: discord.Attachment) -> None:
        data = await card.read()
        await interaction.response.send_message(f"{card.filename}: {len(data)} bytes", ephemeral=True)

    @app_commands.command(name="reload", description="Re-read the config")
    @app_commands.default_permissions(manage_guild=True)
    async def reload(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("reloaded", ephemeral=True)

    bot.tree.add_command(group)
    bot.tree.add_command(reload)
    return bot


async def test_command_tree_sync_registers_the_commands(scene: Scene) -> None:
    async with running(scene.fake, character_bot()) as bot:
        synced = await bot.tree.sync()
    assert [c.name for c in synced] == ["character", "reload"]
    stored = scene.fake.commands.find("character", None)
    assert stored is not None and [o["name"] for o in stored["options"]] == ["set", "import"]


async def test_invoked_command_answers_with_a_response_and_a_followup(scene: Scene) -> None:
    async with running(scene.fake, character_bot()) as bot:
        await bot.tree.sync()
        interaction = await scene.fake.invoke(scene.channel, scene.alice, "character", subcommand="set",
                                              options={"name": "Aria"})
        await interaction.wait_response()
        await scene.fake.wait_for(lambda: interaction.followups)
    assert interaction.responses[0]["type"] == 4
    assert interaction.original is not None and interaction.original.content == "Now playing Aria"
    assert [m.content for m in interaction.followups] == ["Greeting!"]
    assert [m.content for m in scene.fake.messages(scene.channel)] == ["Now playing Aria", "Greeting!"]


async def test_answer_after_the_deadline_gets_unknown_interaction(scene: Scene) -> None:
    scene.fake.interaction_deadline = 0.1
    errors: list[discord.HTTPException] = []

    async def slow(interaction: discord.Interaction, name: str) -> None:
        await asyncio.sleep(0.2)
        try:
            await interaction.response.send_message("too late")
        except discord.HTTPException as exc:
            errors.append(exc)

    async with running(scene.fake, character_bot(slow)) as bot:
        await bot.tree.sync()
        interaction = await scene.fake.invoke(scene.channel, scene.alice, "character", subcommand="set",
                                              options={"name": "Aria"})
        await scene.fake.wait_for(lambda: errors)
    assert isinstance(errors[0], discord.NotFound) and errors[0].code == 10062
    assert not interaction.acknowledged and interaction.rejected[0].code == 10062


async def test_second_acknowledgement_is_refused_with_40060(scene: Scene) -> None:
    async with running(scene.fake, character_bot()) as bot:
        await bot.tree.sync()
        interaction = await scene.fake.invoke(scene.channel, scene.alice, "character", subcommand="set",
                                              options={"name": "Aria"})
        await scene.fake.wait_for(lambda: interaction.followups)
    status, _, body = await raw(scene.fake, "POST", f"/interactions/{interaction.id}/{interaction.token}/callback",
                                json={"type": 4, "data": {"content": "again"}})
    assert (status, body["code"]) == (400, 40060)


async def test_followup_before_any_response_is_unknown_webhook(scene: Scene) -> None:
    errors: list[discord.HTTPException] = []

    async def eager(interaction: discord.Interaction, name: str) -> None:
        try:
            await interaction.followup.send("before answering")
        except discord.HTTPException as exc:
            errors.append(exc)
        await interaction.response.send_message("ok")

    async with running(scene.fake, character_bot(eager)) as bot:
        await bot.tree.sync()
        interaction = await scene.fake.invoke(scene.channel, scene.alice, "character", subcommand="set",
                                              options={"name": "Aria"})
        await interaction.wait_response()
    assert isinstance(errors[0], discord.NotFound) and errors[0].code == 10015


async def test_deferred_answer_is_completed_by_the_first_followup(scene: Scene) -> None:
    async def deferring(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"Loaded {name}")

    async with running(scene.fake, character_bot(deferring)) as bot:
        await bot.tree.sync()
        interaction = await scene.fake.invoke(scene.channel, scene.alice, "character", subcommand="set",
                                              options={"name": "Aria"})
        await scene.fake.wait_for(lambda: interaction.followups)
    assert interaction.deferred
    assert interaction.original is interaction.followups[0]
    assert interaction.original.content == "Loaded Aria" and interaction.original.flags & 128 == 0


async def test_original_response_can_be_fetched_and_edited_after_a_defer(scene: Scene) -> None:
    async def deferring(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content=f"Playing {name}")
        fetched = await interaction.original_response()
        await interaction.followup.send(f"fetched: {fetched.content}")

    async with running(scene.fake, character_bot(deferring)) as bot:
        await bot.tree.sync()
        interaction = await scene.fake.invoke(scene.channel, scene.alice, "character", subcommand="set",
                                              options={"name": "Aria"})
        await scene.fake.wait_for(lambda: interaction.followups)
    assert interaction.original.content == "Playing Aria" and interaction.original.edits == [""]
    assert [m.content for m in interaction.followups] == ["fetched: Playing Aria"]


async def test_interaction_response_with_a_file_is_sent_as_multipart(scene: Scene) -> None:
    async def with_file(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message("card", file=discord.File(io.BytesIO(b"CARD"), f"{name}.png"))

    async with running(scene.fake, character_bot(with_file)) as bot:
        await bot.tree.sync()
        interaction = await scene.fake.invoke(scene.channel, scene.alice, "character", subcommand="set",
                                              options={"name": "Aria"})
        await interaction.wait_response()
    callback = next(r for r in scene.fake.requests if r.path.endswith("/callback"))
    assert callback.headers["Content-Type"].startswith("multipart/form-data")
    assert [(a.filename, a.data) for a in interaction.original.attachments] == [("Aria.png", b"CARD")]


async def test_autocomplete_returns_the_bots_choices(scene: Scene) -> None:
    async with running(scene.fake, character_bot()) as bot:
        await bot.tree.sync()
        interaction = await scene.fake.autocomplete(scene.channel, scene.alice, "character", subcommand="set",
                                                    focused="name", options={"name": "Ar"})
        await interaction.wait_response()
    assert [c["value"] for c in interaction.choices] == ["Aria", "Arthur"]


async def test_attachment_option_is_resolved_and_ephemeral_answer_stays_out_of_history(scene: Scene) -> None:
    async with running(scene.fake, character_bot()) as bot:
        await bot.tree.sync()
        interaction = await scene.fake.invoke(scene.channel, scene.admin, "character", subcommand="import",
                                              options={"card": ("aria.json", b"{}")})
        await interaction.wait_response()
    assert interaction.ephemeral and interaction.original.content == "aria.json: 2 bytes"
    assert scene.fake.messages(scene.channel) == []


async def test_default_member_permissions_hide_admin_commands_from_members(scene: Scene) -> None:
    async with running(scene.fake, character_bot()) as bot:
        await bot.tree.sync()
        with pytest.raises(FakeDiscordError):
            await scene.fake.invoke(scene.channel, scene.alice, "reload")
        as_admin = await scene.fake.invoke(scene.channel, scene.admin, "reload")
        granted = await scene.fake.invoke(scene.channel, scene.alice, "reload", enforce_permissions=False)
        await as_admin.wait_response()
        await granted.wait_response()


async def test_invoking_an_unsynced_command_is_a_test_error(scene: Scene) -> None:
    async with running(scene.fake, character_bot()):
        with pytest.raises(FakeDiscordError):
            await scene.fake.invoke(scene.channel, scene.alice, "character", subcommand="set", options={"name": "A"})


# -- gateway faults ----------------------------------------------------------------------------


async def _received_ids(fake: FakeDiscord, received: list[discord.Message], count: int) -> list[int]:
    await fake.wait_for(lambda: len(received) >= count)
    await asyncio.sleep(0.1)
    return [m.id for m in received]


async def test_reconnect_resumes_and_replays_missed_events_once(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        first = await scene.fake.user_says(scene.channel, scene.alice, "before")
        await scene.fake.wait_for(lambda: received)
        await scene.fake.reconnect_gateway()
        missed = await scene.fake.user_says(scene.channel, scene.alice, "while away")
        ids = await _received_ids(scene.fake, received, 2)
        after = await scene.fake.user_says(scene.channel, scene.alice, "after")
        ids = await _received_ids(scene.fake, received, 3)
    assert ids == [first.id, missed.id, after.id]
    assert (scene.fake.gateway.count("IDENTIFY"), scene.fake.gateway.count("RESUMED")) == (1, 1)
    assert scene.fake.gateway.connections[-1].path == "/gateway-resume"


async def test_resumable_invalid_session_resumes(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        await scene.fake.invalidate_session(resumable=True)
        missed = await scene.fake.user_says(scene.channel, scene.alice, "while away")
        assert await _received_ids(scene.fake, received, 1) == [missed.id]
    assert (scene.fake.gateway.count("IDENTIFY"), scene.fake.gateway.count("RESUMED")) == (1, 1)


async def test_non_resumable_invalid_session_identifies_again(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        await scene.fake.invalidate_session(resumable=False)
        await scene.fake.wait_for(lambda: scene.fake.gateway.count("IDENTIFY") == 2 and scene.fake.connected)
        await scene.fake.wait_for(lambda: bot.get_guild(scene.guild.id) is not None)
        later = await scene.fake.user_says(scene.channel, scene.alice, "hello again")
        assert await _received_ids(scene.fake, received, 1) == [later.id]
    assert scene.fake.gateway.count("RESUMED") == 0


async def test_closed_connection_resumes_with_missed_events(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        await scene.fake.close_gateway(4000)
        missed = await scene.fake.user_says(scene.channel, scene.alice, "while closed")
        assert await _received_ids(scene.fake, received, 1) == [missed.id]
    assert scene.fake.gateway.count("RESUMED") == 1


# -- threads and DMs ---------------------------------------------------------------------------


async def test_thread_from_a_message_reaches_the_bot_with_its_parent_and_starter(scene: Scene) -> None:
    created: list[discord.Thread] = []

    async def on_thread_create(thread: discord.Thread) -> None:
        created.append(thread)

    async with running(scene.fake) as bot:
        bot.add_listener(on_thread_create)
        received = inbox(bot)
        starter = await scene.fake.user_says(scene.channel, scene.alice, "let's talk")
        thread = scene.channel.add_thread("talk", starter_message=starter)
        await scene.fake.wait_for(lambda: created)
        await scene.fake.user_says(thread, scene.alice, "in the thread")
        await scene.fake.wait_for(lambda: len(received) == 2)
        assert created[0].id == starter.id and created[0].parent_id == scene.channel.id
        assert isinstance(received[1].channel, discord.Thread)
        await received[1].channel.send("bot in thread")
        fetched_starter = await created[0].parent.fetch_message(created[0].id)
    assert fetched_starter.content == "let's talk"
    assert [m.content for m in scene.fake.messages(thread)][1:] == ["in the thread", "bot in thread"]
    assert scene.fake.messages(thread)[0].type == 21


async def test_bot_can_start_a_thread_from_a_message(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        sent = await bot.get_channel(scene.channel.id).send("topic")
        thread = await sent.create_thread(name="discussion")
        await thread.send("first post")
    stored = scene.fake.world.channel(thread.id)
    assert stored is not None and stored.parent is scene.channel
    assert [m.content for m in scene.fake.messages(stored)][1:] == ["first post"]


async def test_dm_from_a_user_is_answered_in_the_dm(scene: Scene) -> None:
    dm = scene.fake.dm_channel(scene.alice)
    async with running(scene.fake) as bot:
        received = inbox(bot)
        await scene.fake.user_says(dm, scene.alice, "private hello")
        await scene.fake.wait_for(lambda: received)
        assert isinstance(received[0].channel, discord.DMChannel)
        await received[0].channel.send("private answer")
        other = bot.get_user(scene.admin.id) or await bot.fetch_user(scene.admin.id)
        await other.send("opened by the bot")
    assert [m.content for m in scene.fake.messages(dm)] == ["private hello", "private answer"]
    assert [m.content for m in scene.fake.messages(scene.fake.dm_channel(scene.admin))] == ["opened by the bot"]


async def test_missing_heartbeats_close_the_connection_and_the_client_resumes(scene: Scene) -> None:
    async with running(scene.fake) as bot:
        received = inbox(bot)
        scene.fake.gateway.heartbeat_timeout = 0.3  # the client beats once a second
        await scene.fake.wait_for(lambda: scene.fake.gateway.count("HEARTBEAT_MISSED"), timeout=3)
        scene.fake.gateway.heartbeat_timeout = 10.0
        await scene.fake.wait_for(lambda: scene.fake.gateway.count("RESUMED"), timeout=3)
        later = await scene.fake.user_says(scene.channel, scene.alice, "still there?")
        assert await _received_ids(scene.fake, received, 1) == [later.id]


async def test_conflicting_allowed_mentions_are_refused(scene: Scene) -> None:
    status, _, body = await raw(
        scene.fake, "POST", f"/channels/{scene.channel.id}/messages",
        headers={"Authorization": f"Bot {scene.fake.token}"},
        json={"content": "hi", "allowed_mentions": {"parse": ["users"], "users": [str(scene.alice.id)]}},
    )
    assert (status, body["code"]) == (400, 50035)


# -- long runs and the fixture's own check -----------------------------------------------------


async def test_keep_at_most_forgets_a_channels_oldest_messages(scene: Scene) -> None:
    scene.fake.keep_at_most(messages_per_channel=3, requests=10)
    said = [await scene.fake.user_says(scene.channel, scene.alice, f"line {i}") for i in range(5)]
    assert scene.fake.messages(scene.channel) == said[-3:]
    assert said[0].id not in scene.fake.world.messages
    auth = {"Authorization": f"Bot {scene.fake.token}"}
    for _ in range(12):
        await raw(scene.fake, "GET", "/users/@me", headers=auth)
    status, _, history = await raw(scene.fake, "GET", f"/channels/{scene.channel.id}/messages", headers=auth)
    assert status == 200 and [m["content"] for m in history] == ["line 4", "line 3", "line 2"]
    assert len(scene.fake.requests) == 10
    assert scene.fake.api.tally[("GET", "/users/@me", 200)] == 12


@pytest.mark.fake_discord_unhandled_ok
async def test_the_fixture_check_fails_on_an_unhandled_request(scene: Scene) -> None:
    check_clean(scene.fake)  # nothing unhandled yet
    await raw(scene.fake, "GET", "/voice/regions", headers={"Authorization": f"Bot {scene.fake.token}"})
    with pytest.raises(pytest.fail.Exception, match="unhandled: GET /voice/regions"):
        check_clean(scene.fake)


async def _start_process_fake(*args: str) -> tuple[asyncio.subprocess.Process, dict[str, object]]:
    tests = Path(__file__).resolve().parent
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fakediscord", *args, cwd=tests.parent,
        env={**os.environ, "PYTHONPATH": str(tests)}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    return proc, json.loads(line)


async def test_the_process_fake_says_how_many_requests_it_answered_and_exits_zero() -> None:
    proc, ready = await _start_process_fake()
    try:
        client = discord.Client(intents=discord.Intents.default())
        old_base = discord.http.Route.BASE
        discord.http.Route.BASE = str(ready["api_url"])
        try:
            await client.login(str(ready["token"]))
            assert client.user is not None and client.user.name == "Troupe"
        finally:
            await client.close()
            discord.http.Route.BASE = old_base
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert b"0 unhandled, 0 crashes" in err


async def test_the_process_fake_exits_non_zero_after_an_unhandled_request() -> None:
    proc, ready = await _start_process_fake()
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bot {ready['token']}"}
            async with session.get(f"{ready['api_url']}/voice/regions", headers=headers) as response:
                assert response.status == 404
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 1
    assert b"unhandled: GET /voice/regions" in err
