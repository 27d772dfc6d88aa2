"""REST routes for channel webhooks: create, list, modify, execute, and edit/delete their messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import ApiError, missing_permissions, unknown_message, unknown_webhook
from .http_app import RecordedRequest, Reply
from .model import Channel, Message, User, Webhook
from .permissions import Perm
from .routes_core import guild_or_404, visible_channel
from .routes_interactions import (
    followup_create,
    interaction_message,
    interaction_message_delete,
    interaction_message_edit,
)
from .sending import edit_message_fields, new_message_fields
from .validation import decode_image_data, validate_webhook_name

if TYPE_CHECKING:
    from .server import FakeDiscord

__all__ = ["register", "MAX_WEBHOOKS_PER_CHANNEL"]

MAX_WEBHOOKS_PER_CHANNEL = 15


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


def register(fake: FakeDiscord) -> None:
    """Add the routes to ``fake.api``."""
    api, world = fake.api, fake.world
    bot = world.bot_user

    def managed_channel(channel_id: str) -> Channel:
        channel = visible_channel(fake, channel_id)
        if channel.type.value != 0:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        if not world.channel_permissions(channel, bot) & Perm.MANAGE_WEBHOOKS:
            raise missing_permissions()
        return channel

    def with_token(request: web.Request) -> Webhook:
        try:
            webhook = world.webhooks.get(int(request.match_info["webhook_id"]))
        except ValueError:
            webhook = None
        if webhook is None:
            raise unknown_webhook()
        if webhook.token != request.match_info["token"]:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return webhook

    def by_id(request: web.Request) -> Webhook:
        """A webhook addressed with the bot's token: the bot needs MANAGE_WEBHOOKS in its channel."""
        webhook = world.webhooks.get(int(request.match_info["webhook_id"]))
        if webhook is None:
            raise unknown_webhook()
        if not world.channel_permissions(webhook.channel, bot) & Perm.MANAGE_WEBHOOKS:
            raise missing_permissions()
        return webhook

    def avatar_hash(body: dict[str, Any]) -> str | None:
        """The avatar hash for a create/modify body's ``avatar`` (image data; null for the default)."""
        return None if body.get("avatar") is None else world.avatar_hash(decode_image_data(body["avatar"], "avatar"))

    def webhook_changes(body: dict[str, Any], *, authenticated: bool) -> dict[str, Any]:
        """What a Modify Webhook body changes (name, avatar). The token route ignores ``channel_id``
        like Discord; moving a webhook with the bot's token is not modelled and answered as such."""
        if authenticated and body.get("channel_id") is not None:
            raise ApiError(400, 0, "fake Discord does not model moving a webhook (channel_id)")
        changes: dict[str, Any] = {}
        if "name" in body:
            validate_webhook_name(body["name"], "name")
            changes["name"] = body["name"]
        if "avatar" in body:
            changes["avatar"] = avatar_hash(body)
        return changes

    def is_interaction(request: web.Request) -> bool:
        return request.match_info["webhook_id"] == str(world.application_id)

    def target_channel(webhook: Webhook, request: web.Request) -> Channel:
        thread_id = request.query.get("thread_id")
        if thread_id is None:
            return webhook.channel
        thread = world.channel(int(thread_id)) if thread_id.isdigit() else None
        if thread is None or not thread.is_thread or thread.parent is not webhook.channel:
            raise ApiError(400, 10003, "Unknown Channel")
        return thread

    def webhook_message(webhook: Webhook, request: web.Request) -> Message:
        raw_id = request.match_info["message_id"]
        message = world.messages.get(int(raw_id)) if raw_id.isdigit() else None
        if message is None or message.deleted or message.webhook_id != webhook.id:
            raise unknown_message()
        return message

    async def create(request: web.Request, record: RecordedRequest) -> Any:
        channel = managed_channel(request.match_info["channel_id"])
        body = record.json if isinstance(record.json, dict) else {}
        validate_webhook_name(body.get("name"), "name")
        if sum(1 for w in world.webhooks.values() if w.channel is channel) >= MAX_WEBHOOKS_PER_CHANNEL:
            raise ApiError(400, 30007, "Maximum number of webhooks reached (15)")
        return world.webhook_payload(world.create_webhook(channel, body["name"], bot, avatar_hash(body)))

    async def list_channel(request: web.Request, record: RecordedRequest) -> Any:
        channel = managed_channel(request.match_info["channel_id"])
        return [world.webhook_payload(w) for w in world.webhooks.values() if w.channel is channel]

    async def list_guild(request: web.Request, record: RecordedRequest) -> Any:
        guild = guild_or_404(fake, request.match_info["guild_id"])
        if not guild.permissions_for(bot) & Perm.MANAGE_WEBHOOKS:
            raise missing_permissions()
        return [world.webhook_payload(w) for w in world.webhooks.values() if w.channel.guild is guild]

    async def get_by_id(request: web.Request, record: RecordedRequest) -> Any:
        return world.webhook_payload(by_id(request))

    async def edit_by_id(request: web.Request, record: RecordedRequest) -> Any:
        webhook = by_id(request)
        body = record.json if isinstance(record.json, dict) else {}
        return world.webhook_payload(world.edit_webhook(webhook, **webhook_changes(body, authenticated=True)))

    async def delete_by_id(request: web.Request, record: RecordedRequest) -> Any:
        del world.webhooks[by_id(request).id]
        return None

    async def get_with_token(request: web.Request, record: RecordedRequest) -> Any:
        payload = world.webhook_payload(with_token(request))
        payload.pop("user", None)
        return payload

    async def edit_with_token(request: web.Request, record: RecordedRequest) -> Any:
        webhook = with_token(request)
        body = record.json if isinstance(record.json, dict) else {}
        world.edit_webhook(webhook, **webhook_changes(body, authenticated=False))
        payload = world.webhook_payload(webhook)
        payload.pop("user", None)
        return payload

    async def delete_with_token(request: web.Request, record: RecordedRequest) -> Any:
        del world.webhooks[with_token(request).id]
        return None

    async def execute(request: web.Request, record: RecordedRequest) -> Any:
        if is_interaction(request):
            return await followup_create(fake, request, record)
        webhook = with_token(request)
        channel = target_channel(webhook, request)
        headers = fake.spend_rate(channel)
        try:
            body = record.json if isinstance(record.json, dict) else {}
            if body.get("username") is not None:
                validate_webhook_name(body["username"], "username")
            fields = new_message_fields(fake, channel, body, record.files)
        except ApiError as exc:
            exc.headers.update(headers)
            raise
        username = body.get("username") or webhook.name
        message = world.create_message(
            channel,
            User(id=webhook.id, name=username, bot=True),
            webhook_id=webhook.id,
            username=username,
            avatar_url=body.get("avatar_url"),
            avatar=None if body.get("avatar_url") else webhook.avatar,
            application_id=webhook.application_id,
            **fields,
        )
        if not _truthy(request.query.get("wait")):
            return Reply(None, headers=headers)
        return Reply(fake.rest_message(message), headers=headers)

    async def get_message(request: web.Request, record: RecordedRequest) -> Any:
        if is_interaction(request):
            return await interaction_message(fake, request, record)
        webhook = with_token(request)
        return fake.rest_message(webhook_message(webhook, request))

    async def edit_message(request: web.Request, record: RecordedRequest) -> Any:
        if is_interaction(request):
            return await interaction_message_edit(fake, request, record)
        webhook = with_token(request)
        message = webhook_message(webhook, request)
        headers = fake.spend_rate(message.channel)
        try:
            changes = edit_message_fields(fake, message, record.json, record.files)
        except ApiError as exc:
            exc.headers.update(headers)
            raise
        world.edit_message(message, **changes)
        return Reply(fake.rest_message(message), headers=headers)

    async def delete_message(request: web.Request, record: RecordedRequest) -> Any:
        if is_interaction(request):
            return await interaction_message_delete(fake, request, record)
        webhook = with_token(request)
        world.delete_message(webhook_message(webhook, request))
        return None

    api.add("POST", "/channels/{channel_id}/webhooks", create)
    api.add("GET", "/channels/{channel_id}/webhooks", list_channel)
    api.add("GET", "/guilds/{guild_id}/webhooks", list_guild)
    api.add("GET", "/webhooks/{webhook_id:\\d+}", get_by_id)
    api.add("PATCH", "/webhooks/{webhook_id:\\d+}", edit_by_id)
    api.add("DELETE", "/webhooks/{webhook_id:\\d+}", delete_by_id)
    token_base = "/webhooks/{webhook_id:\\d+}/{token}"
    api.add("GET", token_base, get_with_token, auth=False)
    api.add("PATCH", token_base, edit_with_token, auth=False)
    api.add("DELETE", token_base, delete_with_token, auth=False)
    api.add("POST", token_base, execute, auth=False)
    message_path = token_base + "/messages/{message_id}"
    api.add("GET", message_path, get_message, auth=False)
    api.add("PATCH", message_path, edit_message, auth=False)
    api.add("DELETE", message_path, delete_message, auth=False)
