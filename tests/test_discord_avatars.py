"""The strict fake Discord's Modify Webhook: image data validated like Discord."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest
from discord_harness import World, build_world
from fakediscord import FakeDiscord
from fakediscord.model import Webhook
from fakediscord.permissions import Perm
from fakediscord.validation import MAX_IMAGE_DATA

from bot.cards.avatar import placeholder_png

pytestmark = [pytest.mark.discord, pytest.mark.timeout(60)]


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    return build_world(fake_discord)


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
