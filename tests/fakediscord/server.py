""":class:`FakeDiscord`: the HTTP + gateway server and the API tests drive it with."""

from __future__ import annotations

import asyncio
import copy
import logging
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from . import routes_commands, routes_core, routes_interactions, routes_messages, routes_threads, routes_webhooks
from .commands import CommandRegistry
from .errors import FakeDiscordError
from .events import Event, Intents, message_content_visible
from .faults import Fault, FaultInjector
from .gateway import GatewayServer
from .http_app import Api, RecordedRequest
from .interactions import APPLICATION_COMMAND, AUTOCOMPLETE, Interaction, build_command_data, interaction_payload
from .model import Attachment, Channel, Guild, Message, User
from .payloads import message_payload
from .permissions import DEFAULT_BOT_PERMISSIONS, Perm
from .ratelimit import RateLimiter, rate_limited_error
from .validation import MAX_IMAGE_DATA
from .world import World

__all__ = ["FakeDiscord", "API_BASE"]

_log = logging.getLogger(__name__)
API_BASE = "/api/v10"
T = TypeVar("T")
_STATUS_TEXT = {400: "Bad Request", 401: "401: Unauthorized", 403: "Missing Permissions", 404: "404: Not Found",
                429: "You are being rate limited.", 500: "500: Internal Server Error", 502: "502: Bad Gateway",
                503: "503: Service Unavailable"}
_USER_MAX_CONTENT = 4000  # what a Nitro user may type


class FakeDiscord:
    """A strict local Discord: REST under :attr:`api_url`, the gateway at :attr:`gateway_url`.

    Use ``async with FakeDiscord() as fake:``; build servers, channels and users, point
    discord.py at it with :func:`fakediscord.patch_discordpy`, then act as users
    (:meth:`user_says`, :meth:`invoke`) and assert on what the bot did.
    """

    def __init__(
        self,
        *,
        bot_name: str = "Troupe",
        token: str | None = None,
        heartbeat_interval: float = 1.0,
        interaction_deadline: float = 3.0,
        rate_limit: tuple[int, float] = (5, 5.0),
        advertise_rate_limits: bool = True,
        max_upload: int = 10 * 1024 * 1024,
    ) -> None:
        self.world = World(bot_name=bot_name)
        self.token = token or f"fake.{secrets.token_urlsafe(24)}"
        self.commands = CommandRegistry(self.world.ids, self.world.application_id)
        self.interactions: dict[int, Interaction] = {}
        self.interaction_deadline = interaction_deadline
        self.rate_limiter = RateLimiter(*rate_limit)
        self.advertise_rate_limits = advertise_rate_limits
        self.rate_limited: list[tuple[int, float]] = []
        self.max_upload = max_upload
        self.typing: deque[tuple[int, float]] = deque()
        self.faults = FaultInjector()
        self.port: int | None = None
        #: the shard count GET /gateway/bot recommends (what ``shard_count: auto`` runs)
        self.recommended_shards = 1
        # room for the largest upload or image data Discord takes (base64 and multipart make it bigger),
        # so the fake answers those limits itself instead of aiohttp's plain-text 413 at 1 MiB
        self._app = web.Application(client_max_size=2 * max(max_upload, MAX_IMAGE_DATA))
        self.api = Api(self._app, API_BASE, self.token, self.faults)
        self.gateway = GatewayServer(
            self.world,
            token=self.token,
            heartbeat_interval=heartbeat_interval,
            resume_url=lambda: self.resume_gateway_url,
            app_flags=self.app_flags,
        )
        for module in (routes_core, routes_messages, routes_threads, routes_webhooks, routes_interactions, routes_commands):
            module.register(self)
        self._app.router.add_get("/gateway", self.gateway.handle)
        self._app.router.add_get("/gateway-resume", self.gateway.handle)
        self._app.router.add_get("/cdn/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn)
        self._runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, port: int = 0) -> FakeDiscord:
        """Listen on ``port`` of 127.0.0.1 (0: a free one)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self.world.cdn_base = f"{self.base_url}/cdn"
        return self

    async def close(self) -> None:
        """Close gateway connections (1001 going away) and stop the server."""
        for conn in self.gateway.connections:
            if not conn.ws.closed:
                await conn.ws.close(code=1001, message=b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- addresses and identity ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self.port is None:
            raise FakeDiscordError("the fake Discord is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The REST base to put in ``discord.http.Route.BASE``."""
        return self.base_url + API_BASE

    @property
    def gateway_url(self) -> str:
        """The gateway URL to put in ``DiscordWebSocket.DEFAULT_GATEWAY``."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        """What READY announces as ``resume_gateway_url``."""
        return f"ws://127.0.0.1:{self.port}/gateway-resume"

    @property
    def bot_user(self) -> User:
        """The bot's own user."""
        return self.world.bot_user

    @property
    def application_id(self) -> int:
        """The application id (differs from the bot user's id, as it may on Discord)."""
        return self.world.application_id

    @property
    def message_content_intent(self) -> bool:
        """The portal switch for the MESSAGE CONTENT intent (on by default)."""
        return bool(self.gateway.allowed_privileged & Intents.MESSAGE_CONTENT)

    @message_content_intent.setter
    def message_content_intent(self, enabled: bool) -> None:
        self._set_privileged(Intents.MESSAGE_CONTENT, enabled)

    @property
    def members_intent(self) -> bool:
        """The portal switch for the SERVER MEMBERS intent (on by default)."""
        return bool(self.gateway.allowed_privileged & Intents.GUILD_MEMBERS)

    @members_intent.setter
    def members_intent(self, enabled: bool) -> None:
        self._set_privileged(Intents.GUILD_MEMBERS, enabled)

    def _set_privileged(self, intent: Intents, enabled: bool) -> None:
        if enabled:
            self.gateway.allowed_privileged |= intent
        else:
            self.gateway.allowed_privileged &= ~intent

    def app_flags(self) -> int:
        """Application flags: the *_LIMITED intent flags that are on, and the command badge."""
        flags = 0
        allowed = self.gateway.allowed_privileged
        if allowed & Intents.GUILD_PRESENCES:
            flags |= 1 << 13
        if allowed & Intents.GUILD_MEMBERS:
            flags |= 1 << 15
        if allowed & Intents.MESSAGE_CONTENT:
            flags |= 1 << 19
        if self.commands.all():
            flags |= 1 << 23
        return flags

    # -- building the world --------------------------------------------------------------

    def add_user(self, name: str, *, bot: bool = False, global_name: str | None = None) -> User:
        """A new user (add them to a server with :meth:`Guild.add_member`)."""
        return self.world.add_user(name, bot=bot, global_name=global_name)

    def add_guild(self, name: str, *, owner: User | None = None, bot_permissions: int = DEFAULT_BOT_PERMISSIONS) -> Guild:
        """A new server with the bot in it (GUILD_CREATE if the bot is connected)."""
        return self.world.add_guild(name, owner=owner, bot_permissions=bot_permissions)

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between ``user`` and the bot."""
        return self.world.dm_channel(user)

    # -- acting as users -----------------------------------------------------------------

    def _check_poster(self, channel: Channel, user: User) -> None:
        if channel.guild is None:
            if user is not channel.recipient:
                raise FakeDiscordError(f"{user.name} is not the recipient of this DM")
            return
        if user.id not in channel.guild.members:
            raise FakeDiscordError(f"{user.name} is not a member of {channel.guild.name}")
        needed = Perm.VIEW_CHANNEL | (Perm.SEND_MESSAGES_IN_THREADS if channel.is_thread else Perm.SEND_MESSAGES)
        if self.world.channel_permissions(channel, user) & needed != needed:
            raise FakeDiscordError(f"{user.name} may not post in #{channel.name}")

    async def user_says(
        self,
        channel: Channel,
        user: User,
        content: str = "",
        *,
        mention_bot: bool = False,
        reply_to: Message | None = None,
        attachments: Iterable[tuple[str, bytes] | tuple[str, bytes, str]] = (),
        embeds: Sequence[dict[str, Any]] = (),
        unchecked: bool = False,
    ) -> Message:
        """``user`` posts in ``channel`` (MESSAGE_CREATE with mentions computed like Discord).

        ``unchecked=True`` skips the limits a Discord client enforces (length, emptiness),
        for hostile-input tests.
        """
        self._check_poster(channel, user)
        if mention_bot:
            content = f"{self.bot_user.mention} {content}".rstrip()
        files: list[Attachment] = [self.world.new_attachment(channel, *spec) for spec in attachments]
        if not unchecked:
            if len(content) > _USER_MAX_CONTENT:
                raise FakeDiscordError(f"Discord would not let a user send {len(content)} characters")
            if not (content.strip() or files or embeds):
                raise FakeDiscordError("Discord would not let a user send an empty message")
        if reply_to is not None and (reply_to.deleted or reply_to.channel is not channel):
            raise FakeDiscordError("a reply must target a live message in the same channel")
        message = self.world.create_message(
            channel, user, content, attachments=files, embeds=list(embeds), reference=reply_to
        )
        await asyncio.sleep(0)
        return message

    async def user_edits(self, message: Message, content: str) -> Message:
        """The author edits their message (MESSAGE_UPDATE)."""
        if message.webhook_id is not None or message.deleted:
            raise FakeDiscordError("only a live user message can be edited by its author")
        self.world.edit_message(message, content=content)
        await asyncio.sleep(0)
        return message

    async def delete_message(self, message: Message) -> None:
        """Delete a message as its author or a moderator (MESSAGE_DELETE)."""
        self.world.delete_message(message)
        await asyncio.sleep(0)

    async def user_reacts(self, message: Message, user: User, emoji: str) -> None:
        """``user`` adds a reaction (MESSAGE_REACTION_ADD)."""
        self.world.add_reaction(message, user, emoji)
        await asyncio.sleep(0)

    def _command_for(self, channel: Channel, user: User, name: str, enforce_permissions: bool) -> dict[str, Any]:
        guild = channel.guild
        command = self.commands.find(name, guild.id if guild else None)
        if command is None:
            raise FakeDiscordError(f"/{name} is not registered here (did the bot sync its command tree?)")
        if guild is None:
            contexts = command.get("contexts")
            if "guild_id" in command or (contexts is not None and 1 not in contexts) or not command.get("dm_permission", True):
                raise FakeDiscordError(f"/{name} is not available in DMs")
            return command
        if user.id not in guild.members:
            raise FakeDiscordError(f"{user.name} is not a member of {guild.name}")
        perms = self.world.channel_permissions(channel, user)
        if not perms & Perm.USE_APPLICATION_COMMANDS:
            raise FakeDiscordError(f"{user.name} may not use application commands in #{channel.name}")
        required = command.get("default_member_permissions")
        if enforce_permissions and required is not None and not perms & Perm.ADMINISTRATOR:
            needed = int(required)
            if needed == 0 or perms & needed != needed:
                raise FakeDiscordError(f"Discord hides /{name} from {user.name} (default_member_permissions)")
        return command

    def _send_interaction(self, channel: Channel, user: User, kind: int, command: dict[str, Any], data: dict[str, Any]) -> Interaction:
        interaction = Interaction(
            id=self.world.ids.next(),
            token=f"aW50ZXJhY3Rpb24.{secrets.token_urlsafe(48)}",
            type=kind,
            channel=channel,
            user=user,
            command=command,
            data=data,
            deadline=self.interaction_deadline,
        )
        self.interactions[interaction.id] = interaction
        guild_id = channel.guild.id if channel.guild else None
        self.world.emit(Event("INTERACTION_CREATE", interaction_payload(self.world, interaction), 0, guild_id))
        return interaction

    async def invoke(
        self,
        channel: Channel,
        user: User,
        command: str,
        *,
        subcommand: str | None = None,
        options: dict[str, Any] | None = None,
        enforce_permissions: bool = True,
    ) -> Interaction:
        """``user`` runs ``/command [subcommand] options`` in ``channel`` (INTERACTION_CREATE).

        Option values: str/int/float/bool, a User/Member/Role/Channel, or ``(filename, bytes)``
        for attachments. ``enforce_permissions=False`` acts as if a server admin granted the
        command to this user despite ``default_member_permissions``.
        """
        found = self._command_for(channel, user, command, enforce_permissions)
        data = build_command_data(self.world, found, channel, subcommand, options or {})
        interaction = self._send_interaction(channel, user, APPLICATION_COMMAND, found, data)
        await asyncio.sleep(0)
        return interaction

    async def autocomplete(
        self,
        channel: Channel,
        user: User,
        command: str,
        *,
        focused: str,
        subcommand: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> Interaction:
        """``user`` types into option ``focused``; await ``interaction.wait_response()`` then read ``.choices``."""
        found = self._command_for(channel, user, command, enforce_permissions=True)
        values = dict(options or {})
        values.setdefault(focused, "")
        data = build_command_data(self.world, found, channel, subcommand, values, focused=focused)
        interaction = self._send_interaction(channel, user, AUTOCOMPLETE, found, data)
        await asyncio.sleep(0)
        return interaction

    # -- observing -----------------------------------------------------------------------

    def messages(self, channel: Channel) -> list[Message]:
        """Live messages of ``channel``, oldest first."""
        return list(channel.messages)

    def is_from_bot(self, message: Message) -> bool:
        """True for the bot's messages, its webhooks' messages and its interaction answers."""
        if message.type == 21:  # a thread's copy of its starter message is a system message
            return False
        if message.webhook_id is not None:
            webhook = self.world.webhooks.get(message.webhook_id)
            return webhook is not None and webhook.application_id == self.application_id
        return message.author is self.bot_user

    def sent_by_bot(self, channel: Channel | None = None, *, include_deleted: bool = False) -> list[Message]:
        """What the bot posted (itself, via its webhooks, or answering interactions), oldest first."""
        return [
            m for m in self.world.messages.values()  # stored in id order
            if self.is_from_bot(m) and (channel is None or m.channel is channel) and (include_deleted or not m.deleted)
        ]

    def pinged(self, channel: Channel | None = None) -> list[Message]:
        """The bot's messages (deleted ones too) that notified anyone; empty means nothing pinged."""
        return [m for m in self.sent_by_bot(channel, include_deleted=True) if m.pings]

    @property
    def requests(self) -> deque[RecordedRequest]:
        """Every REST request received, in order (the newest ones only after :meth:`keep_at_most`)."""
        return self.api.requests

    def keep_at_most(self, *, messages_per_channel: int, requests: int) -> None:
        """Bound the fake's own memory for long runs: each channel keeps its newest
        ``messages_per_channel`` messages (older ones are gone from history, ``world.messages``
        and the CDN, as if never stored), and :attr:`requests` and :attr:`typing` keep the
        newest ``requests`` entries. Unhandled requests and crashes are always all kept."""
        self.world.retain_messages = messages_per_channel
        self.api.requests = deque(self.api.requests, maxlen=requests)
        self.typing = deque(self.typing, maxlen=requests)

    @property
    def errors(self) -> list[RecordedRequest]:
        """Requests answered with an error status."""
        return [r for r in self.api.requests if r.status is not None and r.status >= 400]

    @property
    def unhandled(self) -> list[RecordedRequest]:
        """Requests for routes the fake does not implement (a test should keep this empty)."""
        return self.api.unhandled

    @property
    def crashes(self) -> list[tuple[RecordedRequest, BaseException]]:
        """Requests that hit a bug in the fake (answered 400 "fake Discord crashed"); keep it empty."""
        return self.api.crashes

    def rest_message(self, message: Message) -> dict[str, Any]:
        """A message as the REST API returns it (content hidden if the intent is off in the portal)."""
        payload = message_payload(message)
        if not self.message_content_intent and not message_content_visible(
            message, has_content_intent=False, bot_id=self.bot_user.id
        ):
            payload = copy.deepcopy(payload) | {"content": "", "embeds": [], "attachments": [], "components": []}
        return payload

    def interaction_by_token(self, token: str) -> Interaction | None:
        """The interaction with this token, if any."""
        return next((i for i in self.interactions.values() if i.token == token), None)

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01) -> T:
        """Poll ``predicate`` until it returns something truthy (returned), or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.sleep(interval)

    # -- faults and limits ---------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        code: int = 0,
        message: str | None = None,
        *,
        times: int = 1,
        retry_after: float = 0.05,
    ) -> Fault:
        """The next ``times`` requests matching ``method`` and the glob ``path_pattern``
        (relative to the API base, e.g. ``/channels/*/messages``) get this error."""
        text = message if message is not None else _STATUS_TEXT.get(status, "Error")
        return self.faults.add(Fault(method, path_pattern, status, code, text, times=times, retry_after=retry_after))

    def set_rate_limit(self, limit: int, per: float) -> None:
        """Message creates+edits allowed per channel per window."""
        self.rate_limiter.configure(limit, per)

    def spend_rate(self, channel: Channel) -> dict[str, str]:
        """Count a create/edit in ``channel``; 429 when over the limit. Returns the headers to send."""
        decision = self.rate_limiter.hit(str(channel.id))
        headers = decision.headers() if self.advertise_rate_limits else {}
        if not decision.allowed:
            self.rate_limited.append((channel.id, time.monotonic()))
            raise rate_limited_error(decision.reset_after, headers)
        return headers

    # -- gateway controls ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True when a live session has an open connection."""
        return bool(self.gateway.live_connections())

    async def wait_connected(self, timeout: float = 5.0) -> None:
        """Wait until the bot has an identified or resumed connection."""
        await self.wait_for(lambda: self.connected, timeout)

    async def reconnect_gateway(self) -> None:
        """Send op 7 RECONNECT; the client should resume and get the events it missed."""
        if not self.gateway.send_reconnect():
            raise FakeDiscordError("no connected gateway session")
        await asyncio.sleep(0)

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION (resumable or not)."""
        if not self.gateway.send_invalid_session(resumable):
            raise FakeDiscordError("no connected gateway session")
        await asyncio.sleep(0)

    async def close_gateway(self, code: int = 4000, reason: str = "") -> None:
        """Close the gateway connection with ``code`` (4000 lets the client resume)."""
        if not self.gateway.close_connections(code, reason):
            raise FakeDiscordError("no connected gateway session")
        await asyncio.sleep(0)

    # -- CDN -----------------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        attachment = self.world.attachments.get(int(request.match_info["attachment_id"]))
        if attachment is None or attachment.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=attachment.data, content_type=attachment.content_type or "application/octet-stream")

