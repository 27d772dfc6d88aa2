"""Model objects -> the JSON shapes Discord sends (checked against discord.py 2.7's parsers)."""

from __future__ import annotations

from typing import Any

from .model import Attachment, Channel, ChannelType, Guild, Member, Message, Role, User, Webhook
from .snowflakes import iso_time

__all__ = [
    "user_payload",
    "role_payload",
    "member_payload",
    "channel_payload",
    "guild_payload",
    "attachment_payload",
    "message_payload",
    "webhook_payload",
    "emoji_payload",
]


def user_payload(user: User) -> dict[str, Any]:
    """A user object."""
    return {
        "id": str(user.id),
        "username": user.name,
        "discriminator": "0",
        "global_name": user.global_name,
        "avatar": None,
        "bot": user.bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
    }


def role_payload(role: Role) -> dict[str, Any]:
    """A role object (permissions as a decimal string)."""
    data: dict[str, Any] = {
        "id": str(role.id),
        "name": role.name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": role.position,
        "permissions": str(role.permissions),
        "managed": role.managed,
        "mentionable": role.mentionable,
        "flags": 0,
    }
    if role.bot_id is not None:
        data["tags"] = {"bot_id": str(role.bot_id)}
    return data


def member_payload(member: Member, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
    """A guild member object; ``permissions`` is added for interaction payloads."""
    data: dict[str, Any] = {
        "nick": member.nick,
        "avatar": None,
        "banner": None,
        "roles": [str(r.id) for r in member.roles if r.id != member.guild.id],
        "joined_at": iso_time(member.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user_payload(member.user)
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def _overwrites(channel: Channel) -> list[dict[str, Any]]:
    return [
        {"id": str(ow.id), "type": ow.type, "allow": str(ow.allow), "deny": str(ow.deny)}
        for ow in channel.overwrites.values()
    ]


def _last_message_id(channel: Channel) -> str | None:
    return str(channel.messages[-1].id) if channel.messages else None


def channel_payload(channel: Channel) -> dict[str, Any]:
    """A channel object for any of the modelled channel types."""
    base: dict[str, Any] = {"id": str(channel.id), "type": int(channel.type), "flags": 0}
    if channel.type is ChannelType.DM:
        recipient = channel.recipient
        base.update(last_message_id=_last_message_id(channel), recipients=[user_payload(recipient)] if recipient else [])
        return base
    assert channel.guild is not None
    base.update(guild_id=str(channel.guild.id), name=channel.name)
    if channel.is_thread:
        created = channel.world.created_at(channel.id)
        base.update(
            parent_id=str(channel.parent.id) if channel.parent else None,
            owner_id=str(channel.owner_id),
            last_message_id=_last_message_id(channel),
            message_count=len(channel.messages),
            member_count=1,
            total_message_sent=len(channel.messages),
            rate_limit_per_user=0,
            thread_metadata={
                "archived": channel.archived,
                "auto_archive_duration": 1440,
                "archive_timestamp": iso_time(created),
                "locked": False,
                "invitable": True,
                "create_timestamp": iso_time(created),
            },
        )
        return base
    base.update(
        position=channel.position,
        permission_overwrites=_overwrites(channel),
        parent_id=str(channel.parent.id) if channel.parent else None,
        nsfw=False,
    )
    if channel.type is ChannelType.TEXT:
        base.update(
            topic=channel.topic,
            last_message_id=_last_message_id(channel),
            rate_limit_per_user=0,
            default_auto_archive_duration=1440,
        )
    return base


def guild_payload(guild: Guild) -> dict[str, Any]:
    """The full GUILD_CREATE object: roles, channels, threads and members."""
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "owner_id": str(guild.owner.id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role_payload(r) for r in guild.roles.values()],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "joined_at": iso_time(guild.created_at),
        "large": False,
        "unavailable": False,
        "member_count": len(guild.members),
        "members": [member_payload(m) for m in guild.members.values()],
        "channels": [channel_payload(c) for c in guild.channels],
        "threads": [channel_payload(t) for t in guild.threads if not t.archived],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def attachment_payload(attachment: Attachment) -> dict[str, Any]:
    """An attachment object pointing at the fake CDN."""
    data: dict[str, Any] = {
        "id": str(attachment.id),
        "filename": attachment.filename,
        "size": attachment.size,
        "url": attachment.url,
        "proxy_url": attachment.url,
    }
    if attachment.content_type:
        data["content_type"] = attachment.content_type
    if attachment.description:
        data["description"] = attachment.description
    return data


def emoji_payload(emoji: str) -> dict[str, Any]:
    """A partial emoji from the URL form (``👍`` or ``name:id``)."""
    if ":" in emoji:
        name, _, emoji_id = emoji.partition(":")
        return {"id": emoji_id, "name": name}
    return {"id": None, "name": emoji}


def _author_payload(message: Message) -> dict[str, Any]:
    if message.webhook_id is not None:
        return {
            "id": str(message.webhook_id),
            "username": message.username or message.author.name,
            "discriminator": "0000",
            "global_name": None,
            "avatar": message.avatar,
            "bot": True,
        }
    return user_payload(message.author)


def _mention_payload(message: Message, user_id: int) -> dict[str, Any] | None:
    world = message.channel.world
    user = world.users.get(user_id)
    if user is None:
        return None
    data = user_payload(user)
    guild = message.channel.guild
    if guild is not None and user_id in guild.members:
        data["member"] = member_payload(guild.members[user_id], with_user=False)
    return data


def _reactions(message: Message) -> list[dict[str, Any]]:
    bot_id = message.channel.world.bot_user.id
    return [
        {
            "emoji": emoji_payload(emoji),
            "count": len(users),
            "count_details": {"burst": 0, "normal": len(users)},
            "burst_colors": [],
            "me": bot_id in users,
            "me_burst": False,
        }
        for emoji, users in message.reactions.items()
        if users
    ]


def message_payload(message: Message, *, gateway: bool = False, nested: bool = False) -> dict[str, Any]:
    """A message object; ``gateway`` adds ``guild_id`` and the author's ``member`` like MESSAGE_CREATE."""
    channel = message.channel
    guild = channel.guild
    mentions = [p for p in (_mention_payload(message, u) for u in sorted(message.pings.users)) if p]
    data: dict[str, Any] = {
        "id": str(message.id),
        "channel_id": str(channel.id),
        "author": _author_payload(message),
        "content": message.content,
        "timestamp": iso_time(message.created_at),
        "edited_timestamp": iso_time(message.edited_at) if message.edited_at else None,
        "tts": message.tts,
        "mention_everyone": message.pings.everyone or message.pings.here,
        "mentions": mentions,
        "mention_roles": [str(r) for r in sorted(message.pings.roles)],
        "attachments": [attachment_payload(a) for a in message.attachments],
        "embeds": message.embeds,
        "pinned": False,
        "type": message.type,
        "flags": message.flags,
        "components": message.components,
    }
    if message.reactions:
        data["reactions"] = _reactions(message)
    if message.nonce is not None:
        data["nonce"] = message.nonce
    if message.webhook_id is not None:
        data["webhook_id"] = str(message.webhook_id)
    if message.application_id is not None:
        data["application_id"] = str(message.application_id)
    if message.interaction is not None:
        data["interaction_metadata"] = message.interaction.metadata_payload(message)
    if message.reference_id is not None:
        ref = message.reference
        ref_channel = ref.channel if ref is not None else channel
        data["message_reference"] = {
            "type": 0,
            "message_id": str(message.reference_id),
            "channel_id": str(ref_channel.id),
        }
        if guild is not None:
            data["message_reference"]["guild_id"] = str(guild.id)
        if not nested:
            data["referenced_message"] = (
                message_payload(ref, nested=True) if ref is not None and not ref.deleted else None
            )
    if message.thread is not None:
        data["thread"] = channel_payload(message.thread)
    if gateway and guild is not None:
        data["guild_id"] = str(guild.id)
        if message.webhook_id is None and message.author.id in guild.members:
            data["member"] = member_payload(guild.members[message.author.id], with_user=False)
    return data


def webhook_payload(webhook: Webhook) -> dict[str, Any]:
    """A webhook object including its token (the bot created it)."""
    guild = webhook.channel.guild
    return {
        "id": str(webhook.id),
        "type": 1,
        "guild_id": str(guild.id) if guild else None,
        "channel_id": str(webhook.channel.id),
        "user": user_payload(webhook.creator),
        "name": webhook.name,
        "avatar": webhook.avatar,
        "token": webhook.token,
        "application_id": str(webhook.application_id) if webhook.application_id else None,
    }
