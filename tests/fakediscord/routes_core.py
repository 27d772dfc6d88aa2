"""REST routes for the bot's identity, the gateway URL, channels, servers and DMs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import ApiError, missing_access, unknown_channel
from .http_app import RecordedRequest
from .model import Channel, Guild
from .payloads import channel_payload, member_payload, role_payload, user_payload
from .permissions import Perm

if TYPE_CHECKING:
    from .server import FakeDiscord

__all__ = ["register", "visible_channel", "guild_or_404"]


def visible_channel(fake: FakeDiscord, channel_id: str) -> Channel:
    """The channel if it exists and the bot can see it (404 10003 / 403 50001 otherwise)."""
    try:
        channel = fake.world.channel(int(channel_id))
    except ValueError:
        channel = None
    if channel is None:
        raise unknown_channel()
    if not fake.world.channel_permissions(channel, fake.world.bot_user) & Perm.VIEW_CHANNEL:
        raise missing_access()
    return channel


def guild_or_404(fake: FakeDiscord, guild_id: str) -> Guild:
    """The server, else 404 Unknown Guild (10004)."""
    try:
        guild = fake.world.guilds.get(int(guild_id))
    except ValueError:
        guild = None
    if guild is None:
        raise ApiError(404, 10004, "Unknown Guild")
    return guild


def register(fake: FakeDiscord) -> None:
    """Add the routes to ``fake.api``."""
    api, world = fake.api, fake.world

    async def me(request: web.Request, record: RecordedRequest) -> Any:
        return user_payload(world.bot_user) | {"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"}

    async def user(request: web.Request, record: RecordedRequest) -> Any:
        found = world.users.get(int(request.match_info["user_id"]))
        if found is None:
            raise ApiError(404, 10013, "Unknown User")
        return user_payload(found)

    async def application(request: web.Request, record: RecordedRequest) -> Any:
        return {
            "id": str(world.application_id),
            "name": world.bot_user.name,
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": user_payload(world.app_owner),
            "team": None,
            "verify_key": "0" * 64,
            "flags": fake.app_flags(),
            "bot": user_payload(world.bot_user),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(world.guilds),
        }

    async def gateway(request: web.Request, record: RecordedRequest) -> Any:
        return {"url": fake.gateway_url}

    async def gateway_bot(request: web.Request, record: RecordedRequest) -> Any:
        return {
            "url": fake.gateway_url,
            "shards": fake.recommended_shards,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1},
        }

    async def get_channel(request: web.Request, record: RecordedRequest) -> Any:
        return channel_payload(visible_channel(fake, request.match_info["channel_id"]))

    async def open_dm(request: web.Request, record: RecordedRequest) -> Any:
        body = record.json or {}
        recipient = world.users.get(int(body.get("recipient_id", 0) or 0))
        if recipient is None or recipient is world.bot_user:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        return channel_payload(world.dm_channel(recipient))

    async def get_guild(request: web.Request, record: RecordedRequest) -> Any:
        guild = guild_or_404(fake, request.match_info["guild_id"])
        return {
            "id": str(guild.id), "name": guild.name, "icon": None, "owner_id": str(guild.owner.id),
            "roles": [role_payload(r) for r in guild.roles.values()], "emojis": [], "stickers": [], "features": [],
            "preferred_locale": "en-US", "afk_timeout": 300, "verification_level": 0,
        }

    async def guild_channels(request: web.Request, record: RecordedRequest) -> Any:
        return [channel_payload(c) for c in guild_or_404(fake, request.match_info["guild_id"]).channels]

    async def guild_roles(request: web.Request, record: RecordedRequest) -> Any:
        return [role_payload(r) for r in guild_or_404(fake, request.match_info["guild_id"]).roles.values()]

    async def guild_member(request: web.Request, record: RecordedRequest) -> Any:
        guild = guild_or_404(fake, request.match_info["guild_id"])
        member = guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return member_payload(member)

    async def active_threads(request: web.Request, record: RecordedRequest) -> Any:
        guild = guild_or_404(fake, request.match_info["guild_id"])
        return {"threads": [channel_payload(t) for t in guild.threads if not t.archived], "members": []}

    api.add("GET", "/users/@me", me)
    api.add("GET", "/users/{user_id:\\d+}", user)
    api.add("GET", "/oauth2/applications/@me", application)
    api.add("GET", "/applications/@me", application)
    api.add("GET", "/gateway", gateway, auth=False)
    api.add("GET", "/gateway/bot", gateway_bot)
    api.add("GET", "/channels/{channel_id}", get_channel)
    api.add("POST", "/users/@me/channels", open_dm)
    api.add("GET", "/guilds/{guild_id}", get_guild)
    api.add("GET", "/guilds/{guild_id}/channels", guild_channels)
    api.add("GET", "/guilds/{guild_id}/roles", guild_roles)
    api.add("GET", "/guilds/{guild_id}/members/{user_id}", guild_member)
    api.add("GET", "/guilds/{guild_id}/threads/active", active_threads)
