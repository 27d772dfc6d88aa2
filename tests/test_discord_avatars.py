"""Character avatars on webhook replies: a URL goes with each message, a PNG becomes the
webhook's own avatar (set once per change, remembered across restarts). The real bot and
real discord.py against the strict fake Discord, which validates image data like Discord."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from discord_harness import World, build_world, make_config, running_bot
from fakediscord import FakeDiscord, RecordedRequest
from fakediscord.model import Message, Webhook
from fakediscord.permissions import Perm
from fakediscord.validation import MAX_IMAGE_DATA

from bot.cards.avatar import WEBHOOK_AVATAR_SIZE, placeholder_png, webhook_avatar
from bot.config import Config
from bot.testing import ScriptedBackend

pytestmark = [pytest.mark.discord, pytest.mark.timeout(60)]

VALE_URL = "https://example.com/vale.png"


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


def avatar_config(fake: FakeDiscord, tmp_path: Path, default: str) -> Config:
    """The bundled cards (Professor Quill is a PNG card) plus Mira, whose avatar is a PNG file
    next to her YAML card, and Vale, whose avatar is a URL."""
    config = make_config(fake, tmp_path, default_character=default)
    folder = tmp_path / "characters"
    (folder / "mira.png").write_bytes(placeholder_png("Mira", size=64))
    (folder / "mira.yaml").write_text("name: Mira\npersona: A ferry pilot.\navatar: mira.png\n"
                                      "greeting: Mind the gap, friends.\n")
    (folder / "vale.yaml").write_text(f"name: Vale\npersona: A lamplighter.\navatar: {VALE_URL}\n")
    return config


def avatar_edits(fake: FakeDiscord) -> list[RecordedRequest]:
    """Every Modify Webhook request (either route)."""
    return [r for r in fake.requests
            if r.method == "PATCH" and r.path.startswith("/webhooks/") and r.path.count("/") <= 3]


def the_webhook(fake: FakeDiscord) -> Webhook:
    [hook] = fake.world.webhooks.values()
    return hook


def png_hash(fake: FakeDiscord, tmp_path: Path, file: str) -> str:
    """The avatar hash the fake gives a card's image (a PNG card is its own avatar), as uploaded."""
    return fake.world.avatar_hash(webhook_avatar((tmp_path / "characters" / file).read_bytes()))


def spoken(fake: FakeDiscord, channel: Any) -> list[Message]:
    """What the characters said in ``channel`` (through the webhook; not the bot's command answers)."""
    return [m for m in fake.sent_by_bot(channel) if m.webhook_id is not None]


async def replies(fake: FakeDiscord, channel: Any, count: int, timeout: float = 10.0) -> list[Message]:
    return await fake.wait_for(lambda: (m := spoken(fake, channel)) and len(m) >= count and m, timeout)


async def test_png_avatar_is_set_on_the_webhook_once_and_shows_on_every_reply(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = avatar_config(fake_discord, tmp_path, "Professor Quill")
    backend = ScriptedBackend([["Hoot."], ["Indeed."], ["Quite so."]])
    async with running_bot(fake_discord, config, backend):
        await fake_discord.user_says(world.channel, world.alice, "professor?", mention_bot=True)
        await replies(fake_discord, world.channel, 1)
        await fake_discord.user_says(world.channel, world.alice, "and then?", mention_bot=True)
        await replies(fake_discord, world.channel, 2)
    async with running_bot(fake_discord, config, backend):  # a restart does not upload it again
        await fake_discord.user_says(world.channel, world.alice, "still there?", mention_bot=True)
        posted = await replies(fake_discord, world.channel, 3)
    quill = png_hash(fake_discord, tmp_path, "professor-quill.png")
    [edit] = avatar_edits(fake_discord)
    assert edit.status == 200 and edit.json["avatar"].startswith("data:image/png;base64,")
    assert the_webhook(fake_discord).avatar == quill
    assert [(m.username, m.avatar, m.avatar_url) for m in posted] == [("Professor Quill", quill, None)] * 3
    executes = [r for r in fake_discord.requests if r.method == "POST" and r.path.startswith("/webhooks/")]
    assert executes and all("avatar_url" not in (r.json or {}) for r in executes)


async def test_switching_to_another_png_character_changes_the_webhook_avatar(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Hoot."], ["All aboard."]])
    async with running_bot(fake_discord, avatar_config(fake_discord, tmp_path, "Professor Quill"), backend):
        await fake_discord.user_says(world.channel, world.alice, "professor?", mention_bot=True)
        await replies(fake_discord, world.channel, 1)
        await fake_discord.invoke(world.channel, world.alice, "character", subcommand="set", options={"name": "Mira"})
        await replies(fake_discord, world.channel, 2)  # Mira's greeting
        await fake_discord.user_says(world.channel, world.alice, "where to?", mention_bot=True)
        posted = await replies(fake_discord, world.channel, 3)
    quill = png_hash(fake_discord, tmp_path, "professor-quill.png")
    mira = png_hash(fake_discord, tmp_path, "mira.png")
    assert [(m.username, m.avatar) for m in posted] == [("Professor Quill", quill), ("Mira", mira), ("Mira", mira)]
    assert len(avatar_edits(fake_discord)) == 2 and the_webhook(fake_discord).avatar == mira


async def test_url_avatar_goes_with_each_message_and_the_webhook_is_left_alone(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Lamps lit."]])
    async with running_bot(fake_discord, avatar_config(fake_discord, tmp_path, "Vale"), backend):
        await fake_discord.user_says(world.channel, world.alice, "light?", mention_bot=True)
        [reply] = await replies(fake_discord, world.channel, 1)
    assert (reply.username, reply.avatar_url, reply.avatar) == ("Vale", VALE_URL, None)
    assert avatar_edits(fake_discord) == [] and the_webhook(fake_discord).avatar is None


async def test_character_without_avatar_resets_the_webhook_to_the_default(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Hoot."], ["Stew's on."]])
    async with running_bot(fake_discord, avatar_config(fake_discord, tmp_path, "Professor Quill"), backend) as bot:
        await fake_discord.user_says(world.channel, world.alice, "professor?", mention_bot=True)
        await replies(fake_discord, world.channel, 1)
        await bot.conversations.set_character(str(world.channel.id), "Aria")  # Aria's card has no avatar
        await fake_discord.user_says(world.channel, world.alice, "food?", mention_bot=True)
        posted = await replies(fake_discord, world.channel, 2)
    assert [m.avatar is None for m in posted] == [False, True]  # not the professor's face on Aria
    assert [e.json["avatar"] is None for e in avatar_edits(fake_discord)] == [False, True]


async def test_refused_avatar_edit_still_posts_the_reply_and_is_not_retried(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    fake_discord.fail_next("PATCH", "/webhooks/*", 403, code=50013, message="Missing Permissions")
    backend = ScriptedBackend([["Hoot."], ["Indeed."]])
    async with running_bot(fake_discord, avatar_config(fake_discord, tmp_path, "Professor Quill"), backend):
        await fake_discord.user_says(world.channel, world.alice, "professor?", mention_bot=True)
        await replies(fake_discord, world.channel, 1)
        await fake_discord.user_says(world.channel, world.alice, "and then?", mention_bot=True)
        posted = await replies(fake_discord, world.channel, 2)
    assert [(m.content, m.username, m.avatar) for m in posted] == [
        ("Hoot.", "Professor Quill", None), ("Indeed.", "Professor Quill", None)
    ]
    assert [e.status for e in avatar_edits(fake_discord)] == [403]


async def test_rate_limited_avatar_edit_is_retried_before_the_reply(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    fake_discord.fail_next("PATCH", "/webhooks/*", 429, retry_after=0.1)
    backend = ScriptedBackend([["Hoot."]])
    async with running_bot(fake_discord, avatar_config(fake_discord, tmp_path, "Professor Quill"), backend):
        await fake_discord.user_says(world.channel, world.alice, "professor?", mention_bot=True)
        [reply] = await replies(fake_discord, world.channel, 1)
    assert [e.status for e in avatar_edits(fake_discord)] == [429, 200]
    assert reply.avatar == png_hash(fake_discord, tmp_path, "professor-quill.png")


async def test_thread_and_its_channel_share_one_webhook_without_mixing_avatars(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    backend = ScriptedBackend([["Hoot."], ["All aboard."]] * 3)
    async with running_bot(fake_discord, avatar_config(fake_discord, tmp_path, "Professor Quill"), backend) as bot:
        thread = world.channel.add_thread("ferry")
        await bot.conversations.set_character(str(thread.id), "Mira")
        for round_ in range(1, 4):  # the channel and the thread answer at the same time
            await asyncio.gather(
                fake_discord.user_says(world.channel, world.alice, f"professor {round_}?", mention_bot=True),
                fake_discord.user_says(thread, world.alice, f"pilot {round_}?", mention_bot=True),
            )
            in_channel = await replies(fake_discord, world.channel, round_)
            in_thread = await replies(fake_discord, thread, round_)
    quill = png_hash(fake_discord, tmp_path, "professor-quill.png")
    mira = png_hash(fake_discord, tmp_path, "mira.png")
    assert len(fake_discord.world.webhooks) == 1  # the thread posts through its channel's webhook
    assert [(m.username, m.avatar) for m in in_channel] == [("Professor Quill", quill)] * 3
    assert [(m.username, m.avatar) for m in in_thread] == [("Mira", mira)] * 3


# -- the fake's Modify Webhook ------------------------------------------------------------------


async def modify(fake: FakeDiscord, hook: Webhook, body: dict[str, Any], *, with_token: bool = True) -> tuple[int, Any]:
    """PATCH the webhook by its token, or with the bot's token."""
    path = f"/webhooks/{hook.id}/{hook.token}" if with_token else f"/webhooks/{hook.id}"
    headers = {} if with_token else {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession() as session:
        async with session.patch(fake.api_url + path, json=body, headers=headers) as response:
            return response.status, await response.json() if response.status != 204 else None


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


PNG = placeholder_png("x", size=16)


@pytest.mark.parametrize("avatar", [
    "https://example.com/a.png",  # a URL is not image data
    "data:image/png;base64,!!not base64!!",
    data_uri("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    data_uri("image/png", b"\xff\xd8\xff\xe0 a JPEG, not a PNG"),
    data_uri("image/png", b"plain text"),
    42,
])
async def test_fake_refuses_malformed_image_data(fake_discord: FakeDiscord, world: World, avatar: object) -> None:
    hook = fake_discord.world.create_webhook(world.channel, "Troupe", fake_discord.world.bot_user)
    status, body = await modify(fake_discord, hook, {"avatar": avatar})
    assert (status, body["code"], body["errors"]["avatar"]["_errors"][0]["code"]) == (400, 50035, "IMAGE_INVALID")
    assert hook.avatar is None


async def test_fake_refuses_image_data_over_discords_size_limit(fake_discord: FakeDiscord, world: World) -> None:
    hook = fake_discord.world.create_webhook(world.channel, "Troupe", fake_discord.world.bot_user)
    too_big = PNG + b"\0" * (MAX_IMAGE_DATA - len(PNG) + 1)
    status, body = await modify(fake_discord, hook, {"avatar": data_uri("image/png", too_big)})
    assert (status, body["errors"]["avatar"]["_errors"][0]["code"]) == (400, "BINARY_TYPE_MAX_SIZE")
    status, _ = await modify(fake_discord, hook, {"avatar": data_uri("image/png", too_big[:MAX_IMAGE_DATA])})
    assert status == 200 and hook.avatar is not None


async def test_fake_modifies_by_token_or_with_manage_webhooks(fake_discord: FakeDiscord, world: World) -> None:
    hook = fake_discord.world.create_webhook(world.channel, "Troupe", fake_discord.world.bot_user)
    status, body = await modify(fake_discord, hook, {"avatar": data_uri("image/png", PNG)})
    assert status == 200 and body["avatar"] == hook.avatar == fake_discord.world.avatar_hash(PNG)
    assert "user" not in body  # the token route does not show the creator
    status, body = await modify(fake_discord, hook, {"avatar": None, "name": "Stage"}, with_token=False)
    assert status == 200 and (hook.avatar, hook.name, body["user"]["id"]) == (None, "Stage", str(fake_discord.bot_user.id))
    world.channel.deny_bot(Perm.MANAGE_WEBHOOKS)
    status, body = await modify(fake_discord, hook, {"avatar": data_uri("image/png", PNG)}, with_token=False)
    assert (status, body["code"], hook.avatar) == (403, 50013, None)
    status, _ = await modify(fake_discord, hook, {"avatar": data_uri("image/png", PNG)})  # the token needs no permission
    assert status == 200 and hook.avatar is not None


async def test_the_uploaded_avatar_is_small_and_carries_no_card(
    fake_discord: FakeDiscord, world: World, tmp_path: Path
) -> None:
    config = avatar_config(fake_discord, tmp_path, "Professor Quill")  # a 400x600 PNG card
    async with running_bot(fake_discord, config, ScriptedBackend([["Hoot."]])):
        await fake_discord.user_says(world.channel, world.alice, "professor?", mention_bot=True)
        await replies(fake_discord, world.channel, 1)
    [edit] = avatar_edits(fake_discord)
    uploaded = base64.b64decode(edit.json["avatar"].split(",", 1)[1])
    with Image.open(io.BytesIO(uploaded)) as image:
        assert image.format == "PNG" and max(image.size) == WEBHOOK_AVATAR_SIZE and image.size[0] < image.size[1]
        assert not image.text  # the card's chara chunk stays out of the avatar


def test_a_small_plain_avatar_is_uploaded_as_it_is_and_unreadable_bytes_too() -> None:
    small = placeholder_png("Mira", size=64)
    assert webhook_avatar(small) == small
    assert webhook_avatar(b"not an image at all") == b"not an image at all"
