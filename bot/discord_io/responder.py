"""A character's reply in a channel, end to end: history in, streamed reply out.

The chat cog and ``/regenerate`` ask for replies here; the app and the chat cog ask
for read-ahead here. The conversation's state comes from its owner
(:class:`bot.conversations.Conversations`), the prompt and the generation from the
:class:`bot.chat.ChatService`; this module only does the Discord side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import discord

from bot.cards.avatar import webhook_avatar
from bot.cards.model import Character
from bot.chat import ChatService, ReplyStream
from bot.config import DiscordConfig
from bot.conversations import Conversations
from bot.discord_io.history import ChannelHistory
from bot.discord_io.replies import CUT_NOTE, ReplyWriter, Speaker, Webhooks, show_typing
from bot.errors import BotError
from bot.failures import user_message
from bot.metrics import Metrics
from bot.prompt.types import Turn

__all__ = ["Responder", "Speakers"]

log = logging.getLogger(__name__)

_FINISH_TIMEOUT = 10.0  # seconds a stopped reply may take to show its last text
_SPEAKERS_KEPT = 64  # characters whose webhook avatar is kept ready


class Speakers:
    """Each character as it appears on Discord; avatar image work runs off the event loop, once."""

    def __init__(self) -> None:
        self._ready: OrderedDict[tuple[str, str | None, int], Speaker] = OrderedDict()

    async def of(self, character: Character) -> Speaker:
        """The character's name and avatar, with a PNG avatar shrunk for the webhook."""
        png = character.avatar_png
        key = (character.display_name, character.avatar, hash(png) if png else 0)
        speaker = self._ready.get(key)
        if speaker is None:
            small = await asyncio.to_thread(webhook_avatar, png) if png else None
            speaker = Speaker(character.display_name, character.avatar, small)
            self._ready[key] = speaker
            while len(self._ready) > _SPEAKERS_KEPT:
                self._ready.popitem(last=False)
        self._ready.move_to_end(key)
        return speaker


class Responder:
    """Writes characters' replies into channels and reads quiet channels ahead."""

    def __init__(
        self, *, service: ChatService, conversations: Conversations, history: ChannelHistory,
        webhooks: Webhooks, settings: Callable[[], DiscordConfig], metrics: Metrics | None = None,
    ) -> None:
        self.service = service
        self.conversations = conversations
        self.history = history
        self.webhooks = webhooks
        self.speakers = Speakers()
        self._settings = settings  # the live discord config (a reload may change it)
        self.metrics = metrics or Metrics()

    async def writer(self, channel: discord.abc.Messageable, character: Character,
                     reply_to: discord.Message | None = None) -> ReplyWriter:
        """A writer that posts as ``character`` in ``channel`` (through the webhook when allowed)."""
        settings = self._settings()
        return ReplyWriter(
            channel, await self.speakers.of(character),
            webhooks=self.webhooks if settings.reply_as == "webhook" else None,
            edit_interval=settings.edit_interval,
            reply_to=reply_to,
        )

    async def respond(
        self, channel: discord.abc.Messageable, *, trigger: discord.Message | None = None,
        before: discord.Message | None = None, speaker: str | None = None, after: Sequence[ReplyWriter] = (),
        started: Callable[[ReplyWriter], object] | None = None,
    ) -> ReplyWriter | None:
        """Read the history, generate a character's reply and stream it into the channel
        (``before``: rewrite the reply that was there; ``speaker``: which member of the
        channel's scene speaks, by card name, default its first; ``after``: replies just
        written in this channel, whose last edits the gateway may not have delivered yet;
        ``started`` is told the writer before anything is generated)."""
        key = str(channel.id)  # type: ignore[attr-defined]
        guild = getattr(channel, "guild", None)
        cast = await self.conversations.cast(key, guild.id if guild else None)
        if not cast:
            return None
        character = next((c for c in cast if c.name == speaker), cast[0])
        writer = await self.writer(channel, character, reply_to=trigger)
        if started is not None:
            started(writer)
        reply: ReplyStream | None = None
        shard = guild.shard_id if guild else 0  # DMs arrive on shard 0
        began, first_text, outcome = time.perf_counter(), None, "error"
        try:
            conversation = await self.conversations.get(key)
            turns = await self.history.turns(
                channel, character, conversation, upto=trigger, before=before, scene=len(cast) > 1
            )
            turns = _with_written(turns, after)
            async with show_typing(channel):
                reply = await self.service.reply(character, turns, conversation=key, cast=cast)
                pieces = reply.__aiter__()
                first = await anext(pieces, None)  # typing shows while the model reads the prompt (and thinks)
            await writer.add_reasoning(reply.reasoning, self._settings().show_reasoning)
            if first is not None:
                await writer.write(first)
                first_text = time.perf_counter() - began
                async for piece in pieces:
                    await writer.write(piece)
            await writer.finish()
            outcome = "answered"
            if not writer.text.strip():
                outcome = "empty"
                await writer.send_whole(self._settings().fallback_reply)
            self.metrics.reply_timed(shard, first_text=first_text, last_edit=time.perf_counter() - began)
            self.metrics.reply_costs(shard, reply.stats.timings)
        except asyncio.CancelledError:
            outcome = ""  # stopped (/stop, shutdown): not an outcome of its own
            with contextlib.suppress(discord.HTTPException, asyncio.TimeoutError):
                await asyncio.wait_for(writer.finish(), _FINISH_TIMEOUT)  # show what was written
            raise
        except BotError as exc:
            log.error("Could not reply in channel %s: %s", key, exc)
            await _report(channel, writer, f"⚠️ {user_message(exc)}")
        except discord.HTTPException as exc:
            log.warning("Discord refused the reply in channel %s: %s", key, exc)
        finally:
            if outcome:
                self.metrics.reply_outcome(shard, outcome)
            if reply is not None:
                await reply.aclose()  # stops the generation at once if the reply ended early
        return writer

    async def pick_speaker(
        self, channel: discord.abc.Messageable, *, trigger: discord.Message | None = None,
        after: Sequence[ReplyWriter] = (),
    ) -> str | None:
        """The scene member the model expects to speak next in the channel (``scene.director:
        model``), or None when it names nobody of the cast or cannot say."""
        key = str(channel.id)  # type: ignore[attr-defined]
        guild = getattr(channel, "guild", None)
        cast = await self.conversations.cast(key, guild.id if guild else None)
        if len(cast) < 2:
            return None
        try:
            conversation = await self.conversations.get(key)
            turns = await self.history.turns(channel, cast[0], conversation, upto=trigger, scene=True)
            async with show_typing(channel):
                return await self.service.pick_speaker(cast, _with_written(turns, after), conversation=key)
        except (BotError, discord.HTTPException) as exc:
            log.warning("The model could not pick the next speaker in channel %s: %s", key, exc)
            return None

    async def read_ahead(self, channel: discord.abc.Messageable) -> int:
        """Read the channel's recent history into the model's state for it, if the model is
        idle; returns the tokens read. Failures only cost the head start."""
        key = str(channel.id)  # type: ignore[attr-defined]
        guild = getattr(channel, "guild", None)
        try:
            conversation = await self.conversations.get(key)
            cast = await self.conversations.cast(key, guild.id if guild else None)
            if not cast or conversation.anchor is None:  # only where the character is talking
                return 0
            if self.service.summaries.pending(key):  # the window slid: its summary first
                await self.service.summaries.fold(key)
                conversation = await self.conversations.get(key)
            turns = await self.history.turns(channel, cast[0], conversation, scene=len(cast) > 1)
            read = await self.service.read_ahead(cast[0], turns, conversation=key, cast=cast)
        except (BotError, discord.HTTPException) as exc:
            log.debug("Read-ahead in channel %s skipped: %s", key, exc)
            return 0
        if read:
            log.debug("Read ahead %d tokens in channel %s", read, key)
        return read


def _with_written(turns: list[Turn], writers: Sequence[ReplyWriter]) -> list[Turn]:
    """The history with the replies just written as they really ended (each one turn)."""
    if not writers:
        return turns
    ids = {str(m.id) for writer in writers for m in writer.messages}
    kept = [turn for turn in turns if turn.id not in ids]
    for writer in writers:
        text = writer.text.removesuffix(CUT_NOTE).strip()
        if writer.messages and text:
            kept.append(Turn(speaker=writer.speaker.name, text=text, id=str(writer.messages[0].id), role="character"))
    return kept


async def _report(channel: discord.abc.Messageable, writer: ReplyWriter, note: str) -> None:
    """Tell the channel a reply failed: mark the part already posted, else post the note."""
    try:
        if writer.messages:
            await writer.cut_off()
        else:
            await channel.send(note)
    except discord.HTTPException as exc:
        log.warning("Could not tell %s that the reply failed: %s", channel, exc)
