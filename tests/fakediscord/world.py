"""The world: owns every model object, applies changes, and emits gateway events."""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
from collections.abc import Callable
from typing import Any

from .errors import ApiError, FakeDiscordError
from .events import Event, Intents
from .mentions import compute_pings
from .model import Attachment, Channel, ChannelType, Guild, Member, Message, Role, User, Webhook
from .payloads import (
    channel_payload,
    emoji_payload,
    guild_payload,
    member_payload,
    message_payload,
    role_payload,
    webhook_payload,
)
from .permissions import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    Overwrite,
    Perm,
    apply_overwrites,
    base_permissions,
)
from .snowflakes import SnowflakeFactory, snowflake_time

__all__ = ["World", "DM_PERMISSIONS"]

#: What anyone may do in a DM channel.
DM_PERMISSIONS = (
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.ADD_REACTIONS
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.USE_APPLICATION_COMMANDS
)

_MISSING: Any = object()


class World:
    """Every user, server, channel, message and webhook, plus the event fan-out."""

    def __init__(self, *, bot_name: str = "Troupe") -> None:
        self.ids = SnowflakeFactory()
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.webhooks: dict[int, Webhook] = {}
        self.bot_user = self.add_user(bot_name, bot=True)
        self.application_id = self.ids.next()
        self.app_owner = self.add_user("app-owner")
        self.cdn_base = ""
        self.attachments: dict[int, Attachment] = {}
        #: when set, a channel keeps only its newest this-many messages (see FakeDiscord.keep_at_most)
        self.retain_messages: int | None = None
        self._listeners: list[Callable[[Event], None]] = []

    # -- events --------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every event from now on."""
        self._listeners.append(listener)

    def emit(self, event: Event) -> None:
        """Hand an event to every listener (the gateway)."""
        for listener in list(self._listeners):
            listener(event)

    @staticmethod
    def created_at(snowflake: int) -> float:
        """Creation time of an object from its id."""
        return snowflake_time(snowflake)

    # -- users, servers, roles, members --------------------------------------------------

    def add_user(self, name: str, *, bot: bool = False, global_name: str | None = None) -> User:
        """Create a user."""
        user = User(id=self.ids.next(), name=name, bot=bot, global_name=global_name)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, *, owner: User | None = None, bot_permissions: int = DEFAULT_BOT_PERMISSIONS) -> Guild:
        """Create a server with @everyone, the bot's managed role, the owner and the bot as members."""
        owner = owner or self.add_user(f"{name}-owner")
        guild = Guild(id=self.ids.next(), name=name, owner=owner, world=self)
        guild.roles[guild.id] = Role(id=guild.id, guild=guild, name="@everyone", permissions=int(DEFAULT_EVERYONE_PERMISSIONS))
        bot_role = Role(
            id=self.ids.next(),
            guild=guild,
            name=self.bot_user.name,
            permissions=int(bot_permissions),
            position=1,
            managed=True,
            bot_id=self.bot_user.id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[owner.id] = Member(user=owner, guild=guild)
        guild.members[self.bot_user.id] = Member(user=self.bot_user, guild=guild, roles=[bot_role])
        self.guilds[guild.id] = guild
        self.emit(Event("GUILD_CREATE", guild_payload(guild), Intents.GUILDS, guild.id))
        return guild

    def create_role(self, guild: Guild, name: str, permissions: int, *, mentionable: bool = False) -> Role:
        """Add a role to ``guild``."""
        role = Role(
            id=self.ids.next(), guild=guild, name=name, permissions=permissions, mentionable=mentionable,
            position=len(guild.roles),
        )
        guild.roles[role.id] = role
        self.emit(Event("GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role_payload(role)}, Intents.GUILDS, guild.id))
        return role

    def update_role(self, role: Role, *, permissions: int) -> None:
        """Change a role's permissions."""
        role.permissions = permissions
        data = {"guild_id": str(role.guild.id), "role": role_payload(role)}
        self.emit(Event("GUILD_ROLE_UPDATE", data, Intents.GUILDS, role.guild.id))

    def add_member(
        self, guild: Guild, user: User, *, roles: list[Role], nick: str | None, permissions: int | None
    ) -> Member:
        """Make ``user`` a member of ``guild``."""
        if user.id in guild.members:
            raise FakeDiscordError(f"{user.name} is already a member of {guild.name}")
        member_roles = list(roles)
        if permissions is not None:
            member_roles.append(self.create_role(guild, f"{user.name}-permissions", int(permissions)))
        member = Member(user=user, guild=guild, roles=member_roles, nick=nick)
        guild.members[user.id] = member
        data = member_payload(member) | {"guild_id": str(guild.id)}
        self.emit(Event("GUILD_MEMBER_ADD", data, Intents.GUILD_MEMBERS, guild.id))
        return member

    # -- channels ------------------------------------------------------------------------

    def channel(self, channel_id: int) -> Channel | None:
        """The channel (or thread, or DM) with this id."""
        return self.channels.get(channel_id)

    def create_channel(
        self, guild: Guild, kind: ChannelType, name: str, *, parent: Channel | None = None, topic: str | None = None
    ) -> Channel:
        """Add a text channel or category to ``guild``."""
        if parent is not None and parent.type is not ChannelType.CATEGORY:
            raise FakeDiscordError("a channel's parent must be a category")
        channel = Channel(
            id=self.ids.next(), type=kind, name=name, world=self, guild=guild, parent=parent,
            position=len(guild.channels), topic=topic,
        )
        if parent is not None:  # a new channel starts synced with its category
            channel.overwrites = {k: Overwrite(v.id, v.type, v.allow, v.deny) for k, v in parent.overwrites.items()}
        guild.channels.append(channel)
        self.channels[channel.id] = channel
        self.emit(Event("CHANNEL_CREATE", channel_payload(channel), Intents.GUILDS, guild.id))
        return channel

    def set_overwrite(self, channel: Channel, target: Role | Member | User, *, allow: int, deny: int) -> None:
        """Set (or with ``allow=deny=0`` remove) a permission overwrite on ``channel``."""
        if channel.guild is None or channel.is_thread:
            raise FakeDiscordError("permission overwrites live on server channels (threads use their parent's)")
        kind = 0 if isinstance(target, Role) else 1
        if allow or deny:
            channel.overwrites[target.id] = Overwrite(id=target.id, type=kind, allow=allow, deny=deny)
        else:
            channel.overwrites.pop(target.id, None)
        self.emit(Event("CHANNEL_UPDATE", channel_payload(channel), Intents.GUILDS, channel.guild.id))

    def create_thread(
        self,
        parent: Channel,
        name: str,
        *,
        starter_message: Message | None = None,
        owner: User | None = None,
        private: bool = False,
    ) -> Channel:
        """Start a thread in ``parent``; one started from a message takes that message's id."""
        if parent.type is not ChannelType.TEXT or parent.guild is None:
            raise FakeDiscordError("threads can only be started in server text channels")
        if starter_message is not None:
            if starter_message.channel is not parent:
                raise FakeDiscordError("the starter message must be in the parent channel")
            if starter_message.thread is not None:
                raise ApiError(400, 160004, "A thread has already been created for this message")
        thread_id = starter_message.id if starter_message is not None else self.ids.next()
        kind = ChannelType.PRIVATE_THREAD if private else ChannelType.PUBLIC_THREAD
        owner = owner or (starter_message.author if starter_message else self.bot_user)
        thread = Channel(
            id=thread_id, type=kind, name=name, world=self, guild=parent.guild, parent=parent, owner_id=owner.id,
            starter_message=starter_message,
        )
        parent.guild.threads.append(thread)
        self.channels[thread.id] = thread
        if starter_message is not None:
            starter_message.thread = thread
            starter_message.flags |= 1 << 5  # HAS_THREAD
            self._append(Message(
                id=self.ids.next(), channel=thread, author=starter_message.author, type=21,
                reference=starter_message, reference_id=starter_message.id,
            ))
        data = channel_payload(thread) | {"newly_created": True}
        self.emit(Event("THREAD_CREATE", data, Intents.GUILDS, parent.guild.id))
        return thread

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between the bot and ``user`` (created on first use)."""
        for channel in self.channels.values():
            if channel.type is ChannelType.DM and channel.recipient is user:
                return channel
        channel = Channel(id=self.ids.next(), type=ChannelType.DM, name="", world=self, recipient=user)
        self.channels[channel.id] = channel
        return channel

    # -- permissions ---------------------------------------------------------------------

    def permissions(self, guild: Guild, who: User | Member, channel: Channel | None = None) -> int:
        """Resolved permissions of ``who`` in ``guild`` (and ``channel``, with overwrites)."""
        member = who if isinstance(who, Member) else guild.members.get(who.id)
        if member is None:
            return 0
        role_ids = [r.id for r in member.roles]
        base = base_permissions(
            guild.default_role.permissions, (r.permissions for r in member.roles), is_owner=member.id == guild.owner.id
        )
        if channel is None:
            return base
        source = channel.permission_source
        return apply_overwrites(base, source.overwrites, guild_id=guild.id, role_ids=role_ids, member_id=member.id)

    def channel_permissions(self, channel: Channel, user: User) -> int:
        """Permissions of ``user`` in any channel; DMs allow the basics to both sides."""
        if channel.guild is None:
            return int(DM_PERMISSIONS) if user is channel.recipient or user is self.bot_user else 0
        return self.permissions(channel.guild, user, channel)

    # -- messages ------------------------------------------------------------------------

    def new_attachment(self, channel: Channel, filename: str, data: bytes, content_type: str | None = None) -> Attachment:
        """Store a file so the fake CDN serves it, and describe it as an attachment."""
        attachment_id = self.ids.next()
        guessed = content_type or mimetypes.guess_type(filename)[0]
        url = f"{self.cdn_base}/attachments/{channel.id}/{attachment_id}/{filename}"
        attachment = Attachment(id=attachment_id, filename=filename, data=data, url=url, content_type=guessed)
        self.attachments[attachment_id] = attachment
        return attachment

    def _pings(self, message: Message) -> Any:
        channel = message.channel
        guild = channel.guild
        if message.webhook_id is not None:
            can_everyone = True
        elif guild is not None:
            can_everyone = bool(self.permissions(guild, message.author, channel) & Perm.MENTION_EVERYONE)
        else:
            can_everyone = False

        def known(user_id: int) -> bool:
            if guild is not None:
                return user_id in guild.members
            return user_id in (self.bot_user.id, channel.recipient.id if channel.recipient else None)

        def mentionable(role_id: int) -> bool | None:
            role = guild.roles.get(role_id) if guild is not None else None
            return None if role is None or role_id == guild.id else role.mentionable  # type: ignore[union-attr]

        ref = message.reference
        replied = None
        if ref is not None and ref.webhook_id is None and ref.author.id != message.author.id and known(ref.author.id):
            replied = ref.author.id
        return compute_pings(
            message.content,
            message.allowed_mentions,
            in_guild=guild is not None,
            can_mention_everyone=can_everyone,
            known_user=known,
            role_mentionable=mentionable,
            replied_user=replied,
        )

    def _append(self, message: Message) -> None:
        kept = message.channel.messages
        kept.append(message)
        self.messages[message.id] = message
        if self.retain_messages is not None:
            while len(kept) > self.retain_messages:
                old = kept.pop(0)
                self.messages.pop(old.id, None)
                for attachment in old.attachments:
                    self.attachments.pop(attachment.id, None)

    def _message_event(self, name: str, message: Message) -> Event:
        guild = message.channel.guild
        intent = Intents.GUILD_MESSAGES if guild is not None else Intents.DIRECT_MESSAGES
        return Event(name, message_payload(message, gateway=True), intent, guild.id if guild else None, message)

    def create_message(self, channel: Channel, author: User, content: str = "", **fields: Any) -> Message:
        """Store a message (fields as in :class:`Message`), compute its pings, dispatch MESSAGE_CREATE."""
        message = Message(id=self.ids.next(), channel=channel, author=author, content=content, **fields)
        if message.reference is not None:
            message.reference_id = message.reference.id
            if message.type == 0:
                message.type = 19
        message.pings = self._pings(message)
        if message.ephemeral:
            self.messages[message.id] = message
            return message
        self._append(message)
        self.emit(self._message_event("MESSAGE_CREATE", message))
        return message

    def edit_message(self, message: Message, **changes: Any) -> Message:
        """Apply ``changes`` (content, embeds, attachments, flags, allowed_mentions...) and dispatch MESSAGE_UPDATE."""
        if "content" in changes and changes["content"] != message.content:
            message.edits.append(message.content)
        for key, value in changes.items():
            setattr(message, key, value)
        message.edited_at = self.created_at(self.ids.next())
        message.pings = self._pings(message)
        if not message.ephemeral:
            self.emit(self._message_event("MESSAGE_UPDATE", message))
        return message

    def delete_message(self, message: Message) -> None:
        """Remove a message from its channel and dispatch MESSAGE_DELETE."""
        if message.deleted:
            return
        message.deleted = True
        if message in message.channel.messages:
            message.channel.messages.remove(message)
        guild = message.channel.guild
        data: dict[str, Any] = {"id": str(message.id), "channel_id": str(message.channel.id)}
        if guild is not None:
            data["guild_id"] = str(guild.id)
        intent = Intents.GUILD_MESSAGES if guild is not None else Intents.DIRECT_MESSAGES
        self.emit(Event("MESSAGE_DELETE", data, intent, guild.id if guild else None))

    def _reaction_event(self, name: str, message: Message, user: User, emoji: str) -> Event:
        guild = message.channel.guild
        data: dict[str, Any] = {
            "user_id": str(user.id),
            "channel_id": str(message.channel.id),
            "message_id": str(message.id),
            "emoji": emoji_payload(emoji),
            "burst": False,
            "type": 0,
        }
        if guild is not None:
            data["guild_id"] = str(guild.id)
            if name == "MESSAGE_REACTION_ADD" and user.id in guild.members:
                data["member"] = member_payload(guild.members[user.id])
            data["message_author_id"] = str(message.author.id)
        intent = Intents.GUILD_MESSAGE_REACTIONS if guild is not None else Intents.DIRECT_MESSAGE_REACTIONS
        return Event(name, data, intent, guild.id if guild else None)

    def add_reaction(self, message: Message, user: User, emoji: str) -> bool:
        """Add ``user``'s reaction; False if it was already there."""
        users = message.reactions.setdefault(emoji, [])
        if user.id in users:
            return False
        users.append(user.id)
        self.emit(self._reaction_event("MESSAGE_REACTION_ADD", message, user, emoji))
        return True

    def remove_reaction(self, message: Message, user: User, emoji: str) -> bool:
        """Remove ``user``'s reaction; False if there was none."""
        users = message.reactions.get(emoji, [])
        if user.id not in users:
            return False
        users.remove(user.id)
        if not users:
            del message.reactions[emoji]
        self.emit(self._reaction_event("MESSAGE_REACTION_REMOVE", message, user, emoji))
        return True

    # -- webhooks ------------------------------------------------------------------------

    def create_webhook(self, channel: Channel, name: str, creator: User, avatar: str | None = None) -> Webhook:
        """A new channel webhook; bot-created ones carry the application id."""
        webhook = Webhook(
            id=self.ids.next(),
            token=secrets.token_urlsafe(48),
            channel=channel,
            name=name,
            creator=creator,
            application_id=self.application_id if creator is self.bot_user else None,
            avatar=avatar,
        )
        self.webhooks[webhook.id] = webhook
        self._webhooks_update(channel)
        return webhook

    def edit_webhook(self, webhook: Webhook, **changes: Any) -> Webhook:
        """Apply ``changes`` (``name``, ``avatar`` hash) and dispatch WEBHOOKS_UPDATE."""
        for key, value in changes.items():
            setattr(webhook, key, value)
        self._webhooks_update(webhook.channel)
        return webhook

    @staticmethod
    def avatar_hash(image: bytes) -> str:
        """The hash Discord gives an uploaded avatar (32 hex digits; ``a_`` first for an animated GIF)."""
        digest = hashlib.blake2b(image, digest_size=16).hexdigest()
        return f"a_{digest}" if image.startswith(b"GIF8") else digest

    def _webhooks_update(self, channel: Channel) -> None:
        guild = channel.guild
        if guild is not None:
            data = {"guild_id": str(guild.id), "channel_id": str(channel.id)}
            self.emit(Event("WEBHOOKS_UPDATE", data, Intents.GUILD_WEBHOOKS, guild.id))

    def webhook_payload(self, webhook: Webhook) -> dict[str, Any]:
        """The JSON object for ``webhook``."""
        return webhook_payload(webhook)

