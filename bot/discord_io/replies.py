"""Messages into turns, replies out as the character.

Replies go through a channel webhook (the character's name and avatar) when the
bot may manage webhooks, else as the bot with the character's name in bold. An
avatar URL goes with each message; a character whose avatar is a PNG becomes the
webhook's own avatar before it speaks (uploaded only when it changes; a refused
upload never stops a reply).
Streaming edits are throttled, long replies continue in new messages split at a
natural boundary, and nothing sent can ping anyone. A reasoning model's thinking is
shown only if the owner asks (``discord.show_reasoning``): as a spoiler message before
the reply, or as a ``reasoning.txt`` attachment to it; either way it never comes back
as part of the conversation. A refused typing indicator, a
webhook someone deleted or a replied-to message deleted meanwhile never stops a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterable
from typing import Any, TypeVar

import discord

from bot.cards.avatar import webhook_avatar
from bot.cards.model import Character
from bot.prompt.types import Turn
from bot.store import Store
from bot.store import Webhook as StoredWebhook  # the store's row, beside discord.Webhook
from bot.text import DISCORD_LIMIT, defuse_mentions, split_point

__all__ = [
    "NO_PINGS",
    "WEBHOOK_NAME",
    "CUT_NOTE",
    "REASONING_MARK",
    "REASONING_FILE",
    "reasoning_spoiler",
    "turn_from_message",
    "posted_as",
    "member_names",
    "show_typing",
    "Speaker",
    "Webhooks",
    "ReplyWriter",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

NO_PINGS = discord.AllowedMentions.none()
WEBHOOK_NAME = "Troupe"
#: the last line of a reply whose generation failed after part of it was posted
CUT_NOTE = "-# ⚠️ cut off: my model stopped answering"
#: the first line of a message showing a reply's thinking (``show_reasoning: spoiler``)
REASONING_MARK = "-# 💭 thinking"
#: the attachment holding a reply's thinking (``show_reasoning: file``)
REASONING_FILE = "reasoning.txt"
_BOLD_PREFIX = re.compile(r"^\*\*(?P<name>[^*\n]{1,80})\*\*: ?")
_UNKNOWN_WEBHOOK = 10015
_WEBHOOKS_KEPT = 4096  # channels whose webhook row is kept in memory
_REFUSED_WEBHOOK_NAME = re.compile("clyde|discord")


def posted_as(message: discord.Message, *, bot_user_id: int) -> str | None:
    """The character name one of our messages was posted under: the webhook's username, or
    the bold ``**Name**:`` of a reply posted as the bot (None: a notice of the bot's own)."""
    if message.webhook_id is not None:
        return message.author.name
    if message.author.id == bot_user_id and (match := _BOLD_PREFIX.match(message.content)):
        return match.group("name")
    return None


def turn_from_message(
    message: discord.Message, *, bot_user_id: int, webhook_ids: Iterable[int], character_name: str,
    name: str | None = None, scene: bool = False,
) -> Turn | None:
    """A history message as a turn: display name, mentions as @name, attachments named.

    ``name`` overrides the author's display name (see :func:`member_names`). The bot's
    own replies and its webhooks' messages become the character's turns, without the
    :data:`CUT_NOTE` of a reply that was cut off. In a ``scene`` each of them is the turn
    of the character it was posted as (members and former members alike), and a mention
    of the bot is left out (it calls the scene, not one speaker). Returns None for messages with
    nothing to say (e.g. an empty system message) and for the bot's own notices and
    slash-command answers.
    """
    text = message.clean_content
    role = "user"
    speaker = name or message.author.display_name
    ours = message.webhook_id is not None and message.webhook_id in set(webhook_ids)
    if message.author.id == bot_user_id and not (message.interaction_metadata is None and _BOLD_PREFIX.match(text)):
        return None  # the bot's own notices and command answers are not part of the conversation
    if message.author.id == bot_user_id or ours:
        role = "character"
        match = _BOLD_PREFIX.match(text)
        if message.webhook_id is None and match:
            speaker, text = match.group("name"), text[match.end():]
        elif message.webhook_id is not None:
            speaker = message.author.name
        if scene or speaker.casefold() == character_name.casefold():
            speaker = speaker if scene else character_name
            text = text.removesuffix(CUT_NOTE).rstrip()
            if text.startswith(REASONING_MARK):
                return None  # the thinking shown before a reply is not part of the conversation
        else:
            role = "user"  # a different character spoke here before the switch (not in a scene)
    if scene:
        text = re.sub(rf"@{re.escape(_bot_display(message, bot_user_id))}\s*", "", text)
    else:
        text = text.replace(f"@{_bot_display(message, bot_user_id)}", f"@{character_name}")
    for attachment in message.attachments:
        if role == "character" and attachment.filename == REASONING_FILE:
            continue
        text += f"{' ' if text else ''}[attachment: {attachment.filename}]"
    if not text.strip():
        return None
    return Turn(speaker=speaker, text=text, id=str(message.id), role=role)  # type: ignore[arg-type]


def member_names(messages: Iterable[discord.Message], guild_id: int | None) -> dict[int, str]:
    """The latest server display name (nickname included) of each author seen as a member.

    Only gateway messages carry the author's membership; messages read back from the
    channel history do not, so without this a person with a nickname would appear
    under two names in one prompt.
    """
    return {
        m.author.id: m.author.display_name
        for m in messages
        if isinstance(m.author, discord.Member) and m.guild is not None and m.guild.id == guild_id
    }


def reasoning_spoiler(reasoning: str, room: int = DISCORD_LIMIT) -> str:
    """A reply's thinking as one message of at most ``room`` characters: the
    :data:`REASONING_MARK` line, then the thinking in a spoiler (cut with ``…`` if long)."""
    body = reasoning.strip().replace("|", "\\|")
    space = room - len(REASONING_MARK) - len("\n||||")
    if len(body) > space:
        body = body[: space - 1].rstrip("\\") + "…"
    return f"{REASONING_MARK}\n||{body}||"


@contextlib.asynccontextmanager
async def show_typing(channel: discord.abc.Messageable) -> AsyncIterator[None]:
    """Show "typing…" while the body runs; a refused typing request never stops a reply."""
    indicator = channel.typing()
    try:
        await indicator.__aenter__()
    except discord.HTTPException as exc:
        log.info("Cannot show typing in %s: %s", channel, exc)
        yield
        return
    try:
        yield
    finally:
        await indicator.__aexit__(None, None, None)


async def _unbroken(work: Awaitable[T]) -> T:
    """Let Discord work run to its end even when the caller is cancelled meanwhile.

    A request cut off half-way may have created a message whose id is then never
    recorded (and would be posted again), and discord.py's webhook client holds a
    per-webhook lock while it waits out a spent rate limit bucket that it never
    releases when cancelled there: every later request through that webhook would
    then wait forever.
    """
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a late failure is not an error
    return await asyncio.shield(task)


def _webhook_channel(channel: discord.abc.Messageable) -> discord.abc.Snowflake:
    """The channel whose webhook posts in ``channel`` (a thread's parent)."""
    parent = channel.parent if isinstance(channel, discord.Thread) else None
    return parent if parent is not None else channel  # type: ignore[return-value]


def _avatar_hash(png: bytes | None) -> str | None:
    """What the store remembers of an avatar set on a webhook (None: Discord's default)."""
    return None if png is None else hashlib.sha256(png).hexdigest()


def _bot_display(message: discord.Message, bot_user_id: int) -> str:
    for user in message.mentions:
        if user.id == bot_user_id:
            return user.display_name
    return "\0"  # matches nothing


class Speaker:
    """How a reply appears: the character's name and avatar (an http(s) URL, or PNG bytes)."""

    def __init__(self, name: str, avatar_url: str | None = None, avatar_png: bytes | None = None) -> None:
        self.name = name[:80]
        self.avatar_url = avatar_url
        self.avatar_png = avatar_png

    @classmethod
    def of(cls, character: Character) -> Speaker:
        """The character as it speaks."""
        png = webhook_avatar(character.avatar_png) if character.avatar_png else None
        return cls(character.display_name, character.avatar, png)

    @property
    def webhook_ok(self) -> bool:
        """Whether Discord takes the name as a webhook username (it refuses "clyde",
        "discord", "everyone", "here" and blank names)."""
        name = self.name.strip().casefold()
        return bool(name) and not _REFUSED_WEBHOOK_NAME.search(name) and name not in ("everyone", "here")


class Webhooks:
    """Finds or creates the bot's webhook per channel; remembers it in the store (and, once
    read, in memory: a reply through a known webhook reads nothing from the store)."""

    def __init__(self, client: discord.Client, store: Store) -> None:
        self._client = client
        self._store = store
        self._refused: set[int] = set()
        self._locks: dict[int, asyncio.Lock] = {}  # one creation at a time per channel
        self._posting: dict[int, asyncio.Lock] = {}  # per webhook: its avatar stays put until the post is made
        self._refused_avatars: set[tuple[int, str | None]] = set()  # (webhook id, avatar) Discord refused
        self._saved: OrderedDict[int, StoredWebhook | None] = OrderedDict()  # the store's rows, as read
        self.known_ids: set[int] = set()

    async def _stored(self, channel_id: int) -> StoredWebhook | None:
        """The channel's webhook row (read from the store once)."""
        if channel_id in self._saved:
            self._saved.move_to_end(channel_id)
            return self._saved[channel_id]
        saved = await self._store.webhook(channel_id)
        self._remember(channel_id, saved)
        return saved

    def _remember(self, channel_id: int, saved: StoredWebhook | None) -> None:
        self._saved[channel_id] = saved
        self._saved.move_to_end(channel_id)
        while len(self._saved) > _WEBHOOKS_KEPT:
            self._saved.popitem(last=False)

    async def for_channel(self, channel: discord.abc.Messageable) -> tuple[discord.Webhook, discord.abc.Snowflake | None] | None:
        """The webhook to post in ``channel`` (and the thread to post into), or None when not allowed."""
        thread: discord.abc.Snowflake | None = None
        target = channel
        if isinstance(channel, discord.Thread):
            thread, target = channel, channel.parent  # type: ignore[assignment]
        if not isinstance(target, discord.TextChannel) or target.id in self._refused:
            return None
        async with self._locks.setdefault(target.id, asyncio.Lock()):
            hook = await self._saved_or_new(target)
        return None if hook is None else (hook, thread)

    async def _saved_or_new(self, target: discord.TextChannel) -> discord.Webhook | None:
        saved = await self._stored(target.id)
        if saved is not None:
            self.known_ids.add(saved.webhook_id)
            return discord.Webhook.partial(saved.webhook_id, saved.token, client=self._client)
        try:
            hook = await target.create_webhook(name=WEBHOOK_NAME, reason="Troupe replies as characters")
        except discord.Forbidden:
            log.info("No permission to manage webhooks in #%s; replying as the bot there", target)
            self._refused.add(target.id)
            return None
        except discord.HTTPException as exc:
            log.warning("Could not create a webhook in #%s: %s", target, exc)
            return None
        if hook.token is None:
            return None
        await self._store.set_webhook(target.id, hook.id, hook.token)
        self._remember(target.id, StoredWebhook(target.id, hook.id, hook.token))
        self.known_ids.add(hook.id)
        return hook

    @contextlib.asynccontextmanager
    async def speaking(
        self, channel: discord.abc.Messageable, hook: discord.Webhook, speaker: Speaker
    ) -> AsyncIterator[None]:
        """Post through ``hook`` as ``speaker`` in the body: without an avatar URL the webhook's own
        avatar shows, so it is set to the speaker's PNG (or back to the default) first, and no other
        post through that webhook can change it until this one is made."""
        if speaker.avatar_url:
            yield
            return
        async with self._posting.setdefault(hook.id, asyncio.Lock()):
            await self._show_avatar(channel, hook, speaker.avatar_png)
            yield

    async def _show_avatar(self, channel: discord.abc.Messageable, hook: discord.Webhook, png: bytes | None) -> None:
        """Make ``png`` (None: Discord's default) the webhook's avatar unless the store says it
        already is or Discord refused it before."""
        target = _webhook_channel(channel)
        wanted = _avatar_hash(png)
        saved = await self._stored(target.id)
        current = saved.avatar_hash if saved is not None and saved.webhook_id == hook.id else None
        if wanted == current or (hook.id, wanted) in self._refused_avatars:
            return
        if await self._upload_avatar(channel, hook, png, wanted):
            await self._store.set_webhook_avatar(target.id, hook.id, wanted)
            if saved is not None and saved.webhook_id == hook.id:
                self._remember(target.id, dataclasses.replace(saved, avatar_hash=wanted))

    async def _upload_avatar(
        self, channel: discord.abc.Messageable, hook: discord.Webhook, png: bytes | None, wanted: str | None
    ) -> bool:
        """Set the webhook's avatar; a failure is logged (and a refusal remembered), never raised."""
        try:
            await hook.edit(avatar=png, reason="Troupe: the character's avatar", prefer_auth=False)
        except discord.HTTPException as exc:  # a 429 or 5xx only comes after discord.py's own retries
            if exc.status in (400, 403):  # refused for good (a deleted webhook is replaced by the send)
                self._refused_avatars.add((hook.id, wanted))
            log.warning("Could not set the webhook avatar in %s (%s); posting without it", channel, exc)
            return False
        except ValueError as exc:  # not an image type Discord takes
            self._refused_avatars.add((hook.id, wanted))
            log.warning("Avatar for the webhook in %s refused (%s); posting without it", channel, exc)
            return False
        return True

    async def forget(self, channel: discord.abc.Messageable) -> None:
        """Drop a webhook that stopped working (deleted by someone); the next reply makes a new one."""
        channel_id = _webhook_channel(channel).id
        await self._store.forget_webhook(channel_id)
        self._remember(channel_id, None)

    async def delete(self, message: discord.Message) -> None:
        """Delete one of the bot's replies: through its webhook when it came from one."""
        if message.webhook_id is not None:
            found = await self.for_channel(message.channel)
            if found is not None:
                hook, thread = found
                await hook.delete_message(message.id, thread=thread or discord.utils.MISSING)
                return
        await message.delete()

    def refuse(self, channel: discord.abc.Messageable) -> None:
        """Stop trying webhooks in a channel, or a thread's channel (permission was taken away)."""
        self._refused.add(_webhook_channel(channel).id)


class ReplyWriter:
    """Streams one reply into Discord: throttled edits, continuing past 2000 characters.

    Each write runs to its end even if the reply is cancelled (see :func:`_unbroken`).
    A webhook deleted by someone is forgotten and replaced; when none can be made, or
    Discord would refuse the character's name on a webhook, the reply is posted as the
    bot with the name in bold.
    """

    def __init__(
        self,
        channel: discord.abc.Messageable,
        speaker: Speaker,
        *,
        webhooks: Webhooks | None,
        edit_interval: float = 1.0,
        reply_to: discord.Message | None = None,
    ) -> None:
        self.channel = channel
        self.speaker = speaker
        self.webhooks = webhooks
        self.edit_interval = edit_interval
        self.reply_to = reply_to
        self.messages: list[discord.Message] = []
        self._hook: tuple[discord.Webhook, discord.abc.Snowflake | None] | None = None
        self._resolved = False
        self._done_text = ""  # text of finished messages
        self._current = ""  # text of the message being written
        self._shown = ""  # what Discord shows for the current message
        self._last_edit = 0.0
        self._lock = asyncio.Lock()
        self._reasoning_file: bytes | None = None  # attached to the reply's first message
        #: the messages that show the reply's thinking (``show_reasoning: spoiler``)
        self.reasoning_messages: list[discord.Message] = []

    @property
    def text(self) -> str:
        """Everything written so far."""
        return self._done_text + self._current

    async def write(self, piece: str) -> None:
        """Add streamed text; posts or edits at most once per ``edit_interval``."""
        await self._whole(self._write(piece))

    async def finish(self) -> None:
        """Show the final text."""
        await self._whole(self._show(force=True))

    async def send_whole(self, text: str) -> None:
        """Send a complete text (greetings, fallbacks) with the same splitting and identity."""
        await self.write(text)
        await self.finish()

    async def add_reasoning(self, reasoning: str, mode: str) -> None:
        """Show the reply's thinking as ``discord.show_reasoning`` says: ``spoiler`` posts it
        now in a spoiler message (call it before the reply's first text), ``file`` attaches it
        to the reply's first message as ``reasoning.txt``; ``off``, or no thinking, shows nothing."""
        reasoning = reasoning.strip()
        if not reasoning or mode == "off":
            return
        if mode == "file":
            self._reasoning_file = reasoning.encode("utf-8")
        else:
            await self._whole(self._post_reasoning(reasoning))

    async def _post_reasoning(self, reasoning: str) -> None:
        await self._resolve()
        text = reasoning_spoiler(reasoning, DISCORD_LIMIT - len(self._bold()))
        self.reasoning_messages.append(await self._send(text, first=False))

    async def cut_off(self) -> None:
        """End a reply whose generation failed midway: keep what was said, marked with :data:`CUT_NOTE`."""
        await self.send_whole(f"\n{CUT_NOTE}")

    # ------------------------------------------------------------------ internals

    async def _whole(self, step: Coroutine[Any, Any, None]) -> None:
        """Run one step at a time, each to its end even if the reply is cancelled meanwhile:
        a message Discord created is always recorded, so nothing is ever posted twice."""

        async def locked() -> None:
            async with self._lock:
                await step

        await _unbroken(locked())

    async def _write(self, piece: str) -> None:
        self._current += piece
        room = DISCORD_LIMIT - len(self._bold())  # room for the name, should the reply go on as the bot
        while len(self._current) > room:
            cut = split_point(self._current, room)
            head, rest = self._current[:cut].rstrip(), self._current[cut:].lstrip()
            self._current = head
            await self._show(force=True)
            self._done_text += head + "\n"
            self._current, self._shown = rest, ""  # the rest starts a new message
        await self._show(force=False)

    def _bold(self) -> str:
        return f"**{self.speaker.name}**: "

    def _content(self, body: str) -> str:
        return defuse_mentions(body if self._hook is not None else self._bold() + body)

    async def _resolve(self) -> None:
        if not self._resolved:
            self._resolved = True
            if self.webhooks is not None and self.speaker.webhook_ok:
                self._hook = await self.webhooks.for_channel(self.channel)

    async def _show(self, *, force: bool) -> None:
        await self._resolve()
        body = self._current.strip()
        if not body or body == self._shown:
            return
        now = time.monotonic()
        if not force and self._shown and now - self._last_edit < self.edit_interval:
            return
        if self._shown:
            try:
                await self.messages[-1].edit(content=self._content(body), allowed_mentions=NO_PINGS)
            except discord.NotFound as exc:
                if exc.code != _UNKNOWN_WEBHOOK:
                    raise
                body = await self._continue_without_webhook(body)
                if not body:
                    return
        if not self._shown:
            self.messages.append(await self._send(body))
        self._shown = body
        self._last_edit = now

    async def _continue_without_webhook(self, body: str) -> str:
        """The webhook of the message being edited was deleted: that message keeps what it
        shows and the reply continues in a new message. Returns the text still to show."""
        log.info("The webhook in %s was deleted mid-reply; continuing in a new message", self.channel)
        await self._replace_webhook(make_new=True)
        shown, self._shown = self._shown, ""
        self._done_text += shown + "\n"
        self._current = body[len(shown):].lstrip() if body.startswith(shown) else body
        return self._current

    async def _replace_webhook(self, *, make_new: bool) -> None:
        """Forget a webhook that is gone; make a new one (or go on as the bot)."""
        self._hook = None
        if self.webhooks is not None:
            await self.webhooks.forget(self.channel)
            if make_new:
                self._hook = await self.webhooks.for_channel(self.channel)

    def _files(self, first: bool) -> dict[str, Any]:
        """The reasoning attachment, on the reply's first message (a fresh file each try)."""
        if not first or self.messages or self._reasoning_file is None:
            return {}
        return {"file": discord.File(io.BytesIO(self._reasoning_file), filename=REASONING_FILE)}

    async def _send(self, body: str, *, first: bool = True) -> discord.Message:
        for attempt in range(2):
            if self._hook is None:
                break
            hook, thread = self._hook
            try:
                assert self.webhooks is not None  # a hook only ever comes from them
                async with self.webhooks.speaking(self.channel, hook, self.speaker):
                    return await hook.send(
                        self._content(body),
                        username=self.speaker.name,
                        avatar_url=self.speaker.avatar_url or discord.utils.MISSING,
                        allowed_mentions=NO_PINGS,
                        wait=True,
                        **({"thread": thread} if thread is not None else {}),
                        **self._files(first),
                    )
            except discord.NotFound:
                log.info("The webhook in %s was deleted; %s", self.channel,
                         "making a new one" if attempt == 0 else "replying as the bot")
                await self._replace_webhook(make_new=attempt == 0)
            except discord.Forbidden as exc:
                log.info("Webhook refused in %s (%s); replying as the bot there", self.channel, exc)
                await self._replace_webhook(make_new=False)
                if self.webhooks is not None:
                    self.webhooks.refuse(self.channel)
        return await self._send_plain(self._content(body), first=first)

    async def _send_plain(self, content: str, *, first: bool = True) -> discord.Message:
        reference = self.reply_to if not self.messages else None
        try:
            return await self.channel.send(
                content, allowed_mentions=NO_PINGS, reference=reference, **self._files(first)  # type: ignore[arg-type]
            )
        except discord.HTTPException as exc:
            if reference is None or exc.code not in (50035, 10008):
                raise
            # the message we answer was deleted meanwhile: post without the reply link
            return await self.channel.send(content, allowed_mentions=NO_PINGS, **self._files(first))
