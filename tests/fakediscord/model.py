"""The in-memory Discord: users, servers, roles, members, channels, messages, webhooks.

Objects are plain dataclasses. Methods that change the world (adding a channel, a
thread, a role...) delegate to the :class:`~fakediscord.world.World` that owns them,
which also tells the gateway so a connected bot sees the change.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .permissions import Overwrite, Perm

if TYPE_CHECKING:
    from .world import World

__all__ = [
    "ChannelType",
    "User",
    "Role",
    "Member",
    "Guild",
    "Channel",
    "Attachment",
    "Pings",
    "Message",
    "Webhook",
]


class ChannelType(enum.IntEnum):
    """Discord channel types the fake models."""

    TEXT = 0
    DM = 1
    CATEGORY = 4
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12


@dataclass(eq=False)
class User:
    """A Discord user (a person, another bot, or the bot under test)."""

    id: int
    name: str
    bot: bool = False
    global_name: str | None = None

    @property
    def mention(self) -> str:
        """The ``<@id>`` mention of this user."""
        return f"<@{self.id}>"


@dataclass(eq=False)
class Role:
    """A server role with its permission bits."""

    id: int
    guild: Guild = field(repr=False)
    name: str
    permissions: int = 0
    mentionable: bool = False
    position: int = 0
    managed: bool = False
    bot_id: int | None = None

    @property
    def mention(self) -> str:
        """The ``<@&id>`` mention of this role."""
        return f"<@&{self.id}>"

    def set_permissions(self, permissions: int) -> None:
        """Replace this role's permissions (dispatches GUILD_ROLE_UPDATE)."""
        self.guild.world.update_role(self, permissions=int(permissions))


@dataclass(eq=False)
class Member:
    """A user's membership of a server: roles and nickname."""

    user: User
    guild: Guild = field(repr=False)
    roles: list[Role] = field(default_factory=list)
    nick: str | None = None
    joined_at: float = field(default_factory=time.time)

    @property
    def id(self) -> int:
        """The member's user id."""
        return self.user.id

    @property
    def display_name(self) -> str:
        """Nickname, else global name, else user name."""
        return self.nick or self.user.global_name or self.user.name


@dataclass(eq=False)
class Attachment:
    """A file attached to a message (served by the fake's CDN route)."""

    id: int
    filename: str
    data: bytes = field(repr=False)
    url: str = ""
    content_type: str | None = None
    description: str | None = None

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


@dataclass(frozen=True)
class Pings:
    """Who a message actually notified, after Discord applied ``allowed_mentions``."""

    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()
    everyone: bool = False
    here: bool = False

    def __bool__(self) -> bool:
        return bool(self.users or self.roles or self.everyone or self.here)


@dataclass(eq=False)
class Message:
    """A stored message with everything a test may want to assert on."""

    id: int
    channel: Channel = field(repr=False)
    author: User
    content: str = ""
    type: int = 0
    embeds: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    tts: bool = False
    nonce: str | None = None
    created_at: float = field(default_factory=time.time)
    edited_at: float | None = None
    reference: Message | None = field(default=None, repr=False)
    reference_id: int | None = None
    webhook_id: int | None = None
    username: str | None = None
    avatar_url: str | None = None
    #: a webhook message's avatar hash: the webhook's own avatar when sent without ``avatar_url``
    avatar: str | None = None
    application_id: int | None = None
    interaction: Any = field(default=None, repr=False)
    allowed_mentions: dict[str, Any] | None = None
    pings: Pings = field(default_factory=Pings)
    reactions: dict[str, list[int]] = field(default_factory=dict)
    thread: Channel | None = field(default=None, repr=False)
    edits: list[str] = field(default_factory=list, repr=False)
    deleted: bool = False
    ephemeral: bool = False

    @property
    def guild(self) -> Guild | None:
        """The server of the message's channel (None in DMs)."""
        return self.channel.guild

    @property
    def display_name(self) -> str:
        """The name shown for the author: webhook username, nickname, or user name."""
        if self.webhook_id is not None and self.username:
            return self.username
        guild = self.channel.guild
        if guild is not None and self.author.id in guild.members:
            return guild.members[self.author.id].display_name
        return self.author.global_name or self.author.name


@dataclass(eq=False)
class Webhook:
    """A channel webhook the bot created (id + token); ``avatar`` is its avatar hash (None: default)."""

    id: int
    token: str
    channel: Channel = field(repr=False)
    name: str
    creator: User
    application_id: int | None = None
    avatar: str | None = None


@dataclass(eq=False)
class Channel:
    """A text channel, category, thread or DM channel."""

    id: int
    type: ChannelType
    name: str
    world: World = field(repr=False)
    guild: Guild | None = field(default=None, repr=False)
    parent: Channel | None = field(default=None, repr=False)
    position: int = 0
    topic: str | None = None
    overwrites: dict[int, Overwrite] = field(default_factory=dict)
    recipient: User | None = None
    owner_id: int | None = None
    starter_message: Message | None = field(default=None, repr=False)
    messages: list[Message] = field(default_factory=list, repr=False)
    archived: bool = False

    @property
    def is_thread(self) -> bool:
        """True for public and private threads."""
        return self.type in (ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD)

    @property
    def mention(self) -> str:
        """The ``<#id>`` mention of this channel."""
        return f"<#{self.id}>"

    @property
    def permission_source(self) -> Channel:
        """The channel whose overwrites apply (a thread uses its parent's)."""
        return self.parent if self.is_thread and self.parent is not None else self

    def add_thread(
        self,
        name: str,
        starter_message: Message | None = None,
        *,
        owner: User | None = None,
        private: bool = False,
    ) -> Channel:
        """Create a thread here, optionally from ``starter_message`` (dispatches THREAD_CREATE)."""
        return self.world.create_thread(self, name, starter_message=starter_message, owner=owner, private=private)

    def set_permissions(self, target: Role | Member | User, *, allow: int = 0, deny: int = 0) -> None:
        """Set the overwrite for a role or member; ``allow=deny=0`` removes it (CHANNEL_UPDATE)."""
        self.world.set_overwrite(self, target, allow=int(allow), deny=int(deny))

    def deny_bot(self, permissions: int) -> None:
        """Deny the bot ``permissions`` in this channel with a member overwrite."""
        current = self.overwrites.get(self.world.bot_user.id)
        allow = current.allow & ~permissions if current else 0
        deny = (current.deny if current else 0) | permissions
        self.world.set_overwrite(self, self.world.bot_user, allow=allow, deny=deny)

    def allow_bot(self, permissions: int) -> None:
        """Explicitly allow the bot ``permissions`` in this channel."""
        current = self.overwrites.get(self.world.bot_user.id)
        deny = current.deny & ~permissions if current else 0
        allow = (current.allow if current else 0) | permissions
        self.world.set_overwrite(self, self.world.bot_user, allow=allow, deny=deny)


@dataclass(eq=False)
class Guild:
    """A server: roles (the @everyone role has the server's id), members, channels, threads."""

    id: int
    name: str
    owner: User
    world: World = field(repr=False)
    roles: dict[int, Role] = field(default_factory=dict, repr=False)
    members: dict[int, Member] = field(default_factory=dict, repr=False)
    channels: list[Channel] = field(default_factory=list, repr=False)
    threads: list[Channel] = field(default_factory=list, repr=False)
    created_at: float = field(default_factory=time.time)

    @property
    def default_role(self) -> Role:
        """The @everyone role."""
        return self.roles[self.id]

    @property
    def bot_member(self) -> Member:
        """The bot's own membership."""
        return self.members[self.world.bot_user.id]

    @property
    def bot_role(self) -> Role:
        """The bot's managed role (holds the permissions it was invited with)."""
        return next(r for r in self.roles.values() if r.bot_id == self.world.bot_user.id)

    def add_text_channel(self, name: str, category: Channel | None = None, *, topic: str | None = None) -> Channel:
        """Create a text channel, optionally inside ``category`` (dispatches CHANNEL_CREATE)."""
        return self.world.create_channel(self, ChannelType.TEXT, name, parent=category, topic=topic)

    def add_category(self, name: str) -> Channel:
        """Create a category channel."""
        return self.world.create_channel(self, ChannelType.CATEGORY, name)

    def add_role(self, name: str, permissions: int = 0, *, mentionable: bool = False) -> Role:
        """Create a role with ``permissions`` (dispatches GUILD_ROLE_CREATE)."""
        return self.world.create_role(self, name, int(permissions), mentionable=mentionable)

    def add_member(
        self,
        user: User,
        roles: tuple[Role, ...] | list[Role] = (),
        nick: str | None = None,
        permissions: int | None = None,
    ) -> Member:
        """Add ``user`` to the server; ``permissions`` gives them a personal role with those bits."""
        return self.world.add_member(self, user, roles=list(roles), nick=nick, permissions=permissions)

    def set_bot_permissions(self, permissions: int) -> None:
        """Replace the permissions of the bot's managed role."""
        self.bot_role.set_permissions(permissions)

    def permissions_for(self, who: User | Member, channel: Channel | None = None) -> int:
        """Resolved permission bits of ``who`` in ``channel`` (or server-wide)."""
        return self.world.permissions(self, who, channel)

    def has_permission(self, who: User | Member, channel: Channel | None, permission: Perm) -> bool:
        """True when ``who`` holds ``permission`` in ``channel``."""
        return bool(self.permissions_for(who, channel) & permission)
