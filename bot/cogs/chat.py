"""Conversation: answer mentions, replies, DMs and wake words in character; /reset,
/regenerate, /stop, /stats."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import Place, is_allowed
from bot.cards.model import Character
from bot.chat import ReplyStream
from bot.cogs.history import HistoryMirror
from bot.console import format_stats
from bot.discord_io import (
    ReplyWriter,
    Speaker,
    member_names,
    out_of_character,
    show_typing,
    turn_from_message,
)
from bot.errors import BackendError, BackendTimeout, BackendUnavailable, BotError, ContextOverflow
from bot.prompt.types import Turn
from bot.store import ChannelState

if TYPE_CHECKING:
    from bot.app import TroupeBot

__all__ = ["ChatCog", "BUSY", "COOLDOWN"]

log = logging.getLogger(__name__)

BUSY = "⏳"
COOLDOWN = "🐢"
#: seconds without a message before a channel is read ahead: short, as a mention arriving meanwhile
#: stops the reading within a chunk (see LlamaCppBackend.prewarm), and a busy channel still gets read
_READ_AHEAD_QUIET = 0.5
_SEEN_MESSAGES = 2048  # message ids remembered to answer each message once
_FINISH_TIMEOUT = 10.0  # seconds a stopped reply may take to show its last text


class ChatCog(commands.Cog):
    """Turns Discord messages into replies from the channel's character."""

    def __init__(self, bot: TroupeBot) -> None:
        self.bot = bot
        self.mirror = HistoryMirror(bot, cache_size=bot.message_cache_size)
        self._reading: dict[int, asyncio.Task[None]] = {}  # pending read-aheads per channel
        self._seen: OrderedDict[int, None] = OrderedDict()

    def _first_time(self, message_id: int) -> bool:
        """False for a message already handled (the gateway may deliver an event twice)."""
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        if len(self._seen) > _SEEN_MESSAGES:
            self._seen.popitem(last=False)
        return True

    # ------------------------------------------------------------------ listening

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer the message if it is for us and allowed here."""
        bot_user = self.bot.user
        if bot_user is None or message.author.id == bot_user.id or self.bot.is_closed():
            return
        if not self._first_time(message.id):
            return
        self.bot.track()
        if message.webhook_id is not None and message.webhook_id in self.bot.webhooks.known_ids:
            return
        if message.author.bot and not self.bot.config.discord.respond_to_bots:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        if out_of_character(message, self.bot.config.discord.ooc_prefixes):
            return
        character = await self.bot.character_for(message.channel.id, message.guild.id if message.guild else None)
        if character is None:
            return
        if not await self._is_for_us(message, character):
            self._read_ahead_soon(message.channel, character)
            return
        if not self._allowed(message):
            return
        if self.bot.cooldowns.hit(message.author.id) > 0:
            await _react(message, COOLDOWN)
            return
        slot = self.bot.scheduler.reserve(message.channel.id)
        if slot is None:
            await _react(message, BUSY)
            return
        try:
            async with slot:
                await self.respond(message.channel, trigger=message)
        except asyncio.CancelledError:
            if self.bot.is_closed():
                raise
            log.info("Reply in %s was stopped", message.channel)

    def _read_ahead_soon(self, channel: discord.abc.Messageable, character: Character) -> None:
        """Once the channel goes quiet, read its new messages into the model while it is idle,
        so the next reply there only reads the message that asks for it. Only channels the
        character is talking in (it has a window there) are read."""
        channel_id: int = channel.id  # type: ignore[attr-defined]
        if not self.bot.config.prompt.read_ahead or str(channel_id) not in self.bot.service.anchors:
            return
        pending = self._reading.pop(channel_id, None)
        if pending is not None:
            pending.cancel()  # a newer message restarts the quiet period
        self._reading[channel_id] = asyncio.create_task(self._read_ahead(channel, character))

    async def _read_ahead(self, channel: discord.abc.Messageable, character: Character) -> None:
        self.bot.track()
        channel_id: int = channel.id  # type: ignore[attr-defined]
        try:
            await asyncio.sleep(_READ_AHEAD_QUIET)
            if self.bot.scheduler.busy(channel_id):
                return
            await self.read_ahead_now(channel, character)
        finally:
            if self._reading.get(channel_id) is asyncio.current_task():
                del self._reading[channel_id]

    async def read_ahead_now(self, channel: discord.abc.Messageable, character: Character) -> int:
        """Read the channel's recent history into the model's state for it, if the model is
        idle; returns the tokens read. Failures only cost the head start."""
        channel_id: int = channel.id  # type: ignore[attr-defined]
        try:
            turns = await self.history(channel, character)
            read = await self.bot.service.read_ahead(character, turns, conversation=str(channel_id))
        except (BotError, discord.HTTPException) as exc:
            log.debug("Read-ahead in channel %s skipped: %s", channel_id, exc)
            return 0
        if read:
            log.debug("Read ahead %d tokens in channel %s", read, channel_id)
        return read

    async def _is_for_us(self, message: discord.Message, character: Character) -> bool:
        me = self.bot.user
        assert me is not None
        if message.guild is None:
            return self.bot.config.discord.allow_dms
        if any(user.id == me.id for user in message.mentions):
            return True
        if await self._replies_to_us(message):
            return True
        return await self._has_wake_word(message, character)

    async def _replies_to_us(self, message: discord.Message) -> bool:
        ref = message.reference
        if ref is None or ref.message_id is None:
            return False
        target = ref.resolved if isinstance(ref.resolved, discord.Message) else None
        if target is None:
            with contextlib.suppress(discord.HTTPException):
                target = await message.channel.fetch_message(ref.message_id)
        if target is None:
            return False
        me = self.bot.user
        return (me is not None and target.author.id == me.id) or (
            target.webhook_id is not None and target.webhook_id in self.bot.webhooks.known_ids
        )

    async def _has_wake_word(self, message: discord.Message, character: Character) -> bool:
        if not self.bot.config.discord.wake_words:
            return False
        state = await self.bot.store.channel(message.channel.id)
        if state.wake_words is False:
            return False
        words = [character.display_name, *character.wake_words]
        content = message.content
        return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", content, re.IGNORECASE) for w in words if w.strip())

    def _allowed(self, message: discord.Message) -> bool:
        channel = message.channel
        ids = [channel.id]
        parent = getattr(channel, "parent", None)
        if parent is not None:
            ids.append(parent.id)
            channel = parent
        category_id = getattr(channel, "category_id", None)
        if category_id:
            ids.append(category_id)
        roles = tuple(r.id for r in getattr(message.author, "roles", ()))
        place = Place(
            user_id=message.author.id,
            guild_id=message.guild.id if message.guild else None,
            channel_ids=tuple(ids),
            role_ids=roles,
        )
        return is_allowed(self.bot.config.discord.access, place)

    # ------------------------------------------------------------------ replying

    async def respond(
        self, channel: discord.abc.Messageable, *, trigger: discord.Message | None = None,
        before: discord.Message | None = None,
    ) -> ReplyWriter | None:
        """Read the history, generate the character's reply and stream it into the channel."""
        guild = getattr(channel, "guild", None)
        character = await self.bot.character_for(channel.id, guild.id if guild else None)  # type: ignore[attr-defined]
        if character is None:
            return None
        writer = ReplyWriter(
            channel, Speaker.of(character),
            webhooks=self.bot.webhooks if self.bot.config.discord.reply_as == "webhook" else None,
            edit_interval=self.bot.config.discord.edit_interval,
            reply_to=trigger,
        )
        conversation = str(channel.id)  # type: ignore[attr-defined]
        reply: ReplyStream | None = None
        try:
            state = await self.bot.store.channel(channel.id)  # type: ignore[attr-defined]
            turns = await self.history(channel, character, upto=trigger, before=before, state=state)
            async with show_typing(channel):
                reply = await self.bot.service.reply(character, turns, conversation=conversation, note=state.note or "")
                if reply.prompt.first_turn_id:  # the window's start, kept across restarts
                    await self.bot.store.set_anchor(channel.id, reply.prompt.first_turn_id)  # type: ignore[attr-defined]
                pieces = reply.__aiter__()
                first = await anext(pieces, None)  # typing shows while the model reads the prompt
            if first is not None:
                await writer.write(first)
                async for piece in pieces:
                    await writer.write(piece)
            await writer.finish()
            if not writer.text.strip():
                await writer.send_whole(self.bot.config.discord.fallback_reply)
        except asyncio.CancelledError:
            with contextlib.suppress(discord.HTTPException, asyncio.TimeoutError):
                await asyncio.wait_for(writer.finish(), _FINISH_TIMEOUT)  # show what was written
            raise
        except BackendError as exc:
            log.error("Backend failed in channel %s: %s", conversation, exc)
            await _report(channel, writer, _backend_message(exc))
        except BotError as exc:
            log.error("Could not reply in channel %s: %s", conversation, exc)
            await _report(channel, writer, f"⚠️ {exc}")
        except discord.HTTPException as exc:
            log.warning("Discord refused the reply in channel %s: %s", conversation, exc)
        finally:
            if reply is not None:
                await reply.aclose()  # stops the generation at once if the reply ended early
        return writer

    async def history(
        self, channel: discord.abc.Messageable, character: Character, *,
        upto: discord.Message | None = None, before: discord.Message | None = None,
        state: ChannelState | None = None,
    ) -> list[Turn]:
        """The channel's recent messages after its fence, oldest first, as turns (``state``: the
        channel's stored state, if the caller has it already)."""
        # twice the window: the builder keeps at most history_messages turns, counted from the
        # channel's anchor, so the window can slide by a slice at a time instead of every message
        limit = min(200, 2 * self.bot.config.prompt.history_messages)
        if state is None:
            state = await self.bot.store.channel(channel.id)  # type: ignore[attr-defined]
        anchor = int(state.anchor_id) if state.anchor_id and state.anchor_id.isdigit() else None
        if anchor is not None and self.bot.service.anchors.get(str(channel.id)) is None:  # type: ignore[attr-defined]
            self.bot.service.anchors[str(channel.id)] = state.anchor_id  # type: ignore[attr-defined,index]
        end = before or upto
        wanted = limit - (1 if upto and not before else 0)
        messages = await self._messages_before(channel, end, wanted)
        if upto is not None and before is None:
            messages.append(upto)
        if isinstance(channel, discord.Thread) and not any(m.id == channel.id for m in messages):
            starter = await _thread_starter(channel)
            if starter is not None:
                messages.insert(0, starter)
        fence = state.fence_id or 0
        me = self.bot.user.id if self.bot.user else 0
        guild = getattr(channel, "guild", None)
        names = member_names([*self.bot.cached_messages, *messages], guild.id if guild else None)
        turns = []
        ooc = self.bot.config.discord.ooc_prefixes
        for message in messages:
            if message.id <= fence or out_of_character(message, ooc):
                continue
            turn = turn_from_message(
                message, bot_user_id=me, webhook_ids=self.bot.webhooks.known_ids,
                character_name=character.display_name, name=names.get(message.author.id),
            )
            if turn is not None:
                turns.append(turn)
        return turns

    async def _messages_before(
        self, channel: discord.abc.Messageable, end: discord.Message | None, wanted: int
    ) -> list[discord.Message]:
        """The channel's newest ``wanted`` messages before ``end``, oldest first (REST only when needed)."""
        channel_id: int = channel.id  # type: ignore[attr-defined]
        before_id = end.id if end is not None else discord.utils.time_snowflake(discord.utils.utcnow(), high=True)
        mirrored = self.mirror.recent(channel_id, before=before_id, limit=wanted)
        if mirrored is not None:
            return mirrored
        try:
            messages = [m async for m in channel.history(limit=wanted, before=end)]
        except discord.Forbidden as exc:  # no Read Message History here
            log.warning("Cannot read the history of channel %s (%s); answering the message alone", channel_id, exc)
            return []
        messages.reverse()
        self.mirror.remember(channel_id, messages, until=before_id)
        return messages

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """A new gateway session may have missed messages: fetch histories afresh."""
        self.mirror.new_session()

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Keep fetched history up to date."""
        self.mirror.edited(payload)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        """Keep fetched history up to date."""
        self.mirror.deleted(payload.channel_id, {payload.message_id})

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        """Keep fetched history up to date."""
        self.mirror.deleted(payload.channel_id, set(payload.message_ids))

    # ------------------------------------------------------------------ commands

    @app_commands.command(name="reset")
    async def reset(self, interaction: discord.Interaction) -> None:
        """Forget this channel's conversation before now."""
        assert interaction.channel_id is not None
        await self.bot.store.set_fence(interaction.channel_id, interaction.id)
        self.bot.service.anchors.pop(str(interaction.channel_id), None)
        await interaction.response.send_message("🧹 I've forgotten everything before this point.")

    @app_commands.command(name="regenerate")
    async def regenerate(self, interaction: discord.Interaction) -> None:
        """Rewrite the character's last reply in this channel."""
        channel = interaction.channel
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            await interaction.response.send_message("Not here.", ephemeral=True)
            return
        slot = self.bot.scheduler.reserve(channel.id)  # type: ignore[attr-defined]
        if slot is None:
            await interaction.response.send_message("I'm busy in this channel; try again in a moment.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with slot:
            last = await self._last_reply(channel)
            if last is None:
                await interaction.followup.send("There is no reply of mine to rewrite here.", ephemeral=True)
                return
            with contextlib.suppress(discord.HTTPException):
                await self.bot.webhooks.delete(last)
            await self.respond(channel, before=last)
        await interaction.followup.send("🔁 Rewritten.", ephemeral=True)

    async def _last_reply(self, channel: discord.abc.Messageable) -> discord.Message | None:
        me = self.bot.user
        async for message in channel.history(limit=self.bot.config.prompt.history_messages):
            if (me is not None and message.author.id == me.id and not message.interaction_metadata) or (
                message.webhook_id is not None and message.webhook_id in self.bot.webhooks.known_ids
            ):
                return message
        return None

    @app_commands.command(name="stop")
    async def stop(self, interaction: discord.Interaction) -> None:
        """Stop the reply being written in this channel."""
        assert interaction.channel_id is not None
        stopped = self.bot.scheduler.cancel(interaction.channel_id)
        if stopped:
            await self.bot.backend.abort(str(interaction.channel_id))
        await interaction.response.send_message("⏹️ Stopped." if stopped else "Nothing is being written here.",
                                                ephemeral=not stopped)

    @app_commands.command(name="stats")
    async def stats(self, interaction: discord.Interaction) -> None:
        """Context used, speed of the last reply, and the backend."""
        assert interaction.channel_id is not None
        text = format_stats(self.bot.service.last_stats.get(str(interaction.channel_id)))
        members = getattr(self.bot.backend, "member_states", None)
        if callable(members):
            text += "\n" + "\n".join(
                f"member {m.get('name')}: {m.get('state')}, {m.get('busy', 0)} busy, {m.get('served', 0)} served"
                for m in members()
            )
        await interaction.response.send_message(f"```\n{text[:1900]}\n```", ephemeral=True)


def _backend_message(exc: BackendError) -> str:
    if isinstance(exc, BackendUnavailable):
        return "⚠️ My model server isn't reachable right now. Try again in a moment."
    if isinstance(exc, BackendTimeout):
        return "⚠️ My model took too long to answer. Try again in a moment."
    if isinstance(exc, ContextOverflow):
        return "⚠️ This conversation got too long for my model; try /reset."
    return "⚠️ My model failed to answer this time. Try again in a moment."


async def _report(channel: discord.abc.Messageable, writer: ReplyWriter, note: str) -> None:
    """Tell the channel a reply failed: mark the part already posted, else post the note."""
    try:
        if writer.messages:
            await writer.cut_off()
        else:
            await channel.send(note)
    except discord.HTTPException as exc:
        log.warning("Could not tell %s that the reply failed: %s", channel, exc)


async def _react(message: discord.Message, emoji: str) -> None:
    with contextlib.suppress(discord.HTTPException):
        await message.add_reaction(emoji)


async def _thread_starter(thread: discord.Thread) -> discord.Message | None:
    if thread.starter_message is not None:
        return thread.starter_message
    parent = thread.parent
    if not isinstance(parent, discord.TextChannel):
        return None
    with contextlib.suppress(discord.HTTPException):
        return await parent.fetch_message(thread.id)
    return None
