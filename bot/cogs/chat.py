"""Messages in: answer those for the characters (mentions, replies, DMs, wake words),
read the rest ahead while the channel is quiet. In a scene, the member addressed
answers (else the director's choice), and members may answer each other up to
``scene.max_chain`` turns, until a person speaks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.discord_io.incoming import incoming
from bot.discord_io.remembering import message_memory
from bot.discord_io.scene_play import cast_members
from bot.routing import Decision, Route, RouteSettings, allowed_here, decide

if TYPE_CHECKING:
    from bot.app import TroupeBot

__all__ = ["ChatCog", "BUSY", "COOLDOWN"]

log = logging.getLogger(__name__)

BUSY = "⏳"
COOLDOWN = "🐢"
_SEEN_MESSAGES = 2048  # message ids remembered to answer each message once


class ChatCog(commands.Cog):
    """Turns Discord messages into replies from the channel's character."""

    def __init__(self, bot: TroupeBot) -> None:
        self.bot = bot
        self._seen: OrderedDict[int, None] = OrderedDict()

    def _first_time(self, message_id: int) -> bool:
        """False for a message already handled (the gateway may deliver an event twice)."""
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        if len(self._seen) > _SEEN_MESSAGES:
            self._seen.popitem(last=False)
        return True

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer the message if it is for the character and allowed here."""
        bot, me = self.bot, self.bot.user
        if me is None or bot.is_closed() or not self._first_time(message.id):
            return
        key = str(message.channel.id)
        guild_id = message.guild.id if message.guild else None
        cast = await bot.conversations.cast(key, guild_id)
        if not cast:
            return
        if message.author.id == me.id:  # the character's reply, written where it may speak
            await self._remember(message, cast[0].display_name)
            return
        bot.track()
        facts = await incoming(message, me=me.id, webhook_ids=bot.webhooks.known_ids)
        settings = await self._settings(key)
        if allowed_here(facts, settings) and (settings.allow_dms or not facts.direct):
            await self._remember(message, cast[0].display_name)  # nothing is kept where the bot may not speak
        decision = decide(facts, settings, cast_members(cast))
        if decision.route is not Route.IGNORE and not message.author.bot:
            bot.scene_play.person_spoke(message.channel.id, message.id)  # ends a chain of characters' replies
        ambient = None
        if decision.route is Route.LISTEN and not message.author.bot and allowed_here(facts, settings):
            ambient = bot.scene_play.ambient(message, cast)
        if decision.route is Route.LISTEN and ambient is None and bot.config.prompt.read_ahead:
            bot.read_ahead.soon(message.channel.id, lambda: bot.responder.read_ahead(message.channel))
        if ambient is not None:
            decision = Decision(Route.ANSWER, (ambient,))
        if decision.route is not Route.ANSWER:
            return
        shard = message.guild.shard_id if message.guild else 0
        if ambient is None and bot.cooldowns.hit(message.author.id) > 0:
            bot.metrics.reply_outcome(shard, "cooldown")
            await _react(message, COOLDOWN)
            return
        slot = bot.scheduler.reserve(message.channel.id)
        if slot is None:
            if ambient is None:  # nobody asked for an ambient reply: nobody is told it is busy
                bot.metrics.reply_outcome(shard, "busy")
                await _react(message, BUSY)
            return
        try:
            async with slot:
                speakers = await bot.scene_play.speakers(message, cast, decision.addressed)
                await bot.scene_play.answer(message, speakers)
            if bot.config.prompt.read_ahead:  # the reply, and the next window where it must slide
                bot.read_ahead.soon(message.channel.id, lambda: bot.responder.read_ahead(message.channel))
        except asyncio.CancelledError:
            if bot.is_closed():
                raise
            log.info("Reply in %s was stopped", message.channel)
        if bot.service.summaries.pending(key):  # the window slid: fold what it dropped in while idle
            bot.read_ahead.soon(message.channel.id, lambda: bot.service.summaries.fold(key))

    async def _remember(self, message: discord.Message, character_name: str) -> None:
        """Hand the message to memory (kept in the background where the channel remembers)."""
        bot = self.bot
        kept = message_memory(
            message, bot_user_id=bot.user.id if bot.user else 0, webhook_ids=bot.webhooks.known_ids,
            character_name=character_name, ooc_prefixes=bot.config.discord.ooc_prefixes,
        )
        if kept is not None:
            bot.memory.observe(await bot.conversations.get(str(message.channel.id)), [kept])

    async def _settings(self, key: str) -> RouteSettings:
        discord_config = self.bot.config.discord
        switch = (await self.bot.conversations.get(key)).wake_words
        return RouteSettings(
            respond_to_bots=discord_config.respond_to_bots,
            allow_dms=discord_config.allow_dms,
            ooc_prefixes=tuple(discord_config.ooc_prefixes),
            wake_words=discord_config.wake_words if switch is None else switch,
            access=discord_config.access,
        )

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """A new gateway session may have missed messages: fetch histories afresh."""
        self.bot.history.mirror.new_session()

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Keep fetched history and memory up to date."""
        self.bot.history.mirror.edited(payload)
        key = str(payload.channel_id)
        character = await self.bot.conversations.character(key, payload.guild_id)
        if character is None:
            return
        kept = message_memory(
            payload.message, bot_user_id=self.bot.user.id if self.bot.user else 0,
            webhook_ids=self.bot.webhooks.known_ids, character_name=character.display_name,
            ooc_prefixes=self.bot.config.discord.ooc_prefixes,
        )
        if kept is None:  # edited into nothing, or out of character: memory lets it go
            self.bot.memory.deleted([payload.message_id])
        else:
            self.bot.memory.edited(payload.message_id, kept.text)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        """Keep fetched history and memory up to date."""
        self.bot.history.mirror.deleted(payload.channel_id, {payload.message_id})
        self.bot.memory.deleted([payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        """Keep fetched history and memory up to date."""
        self.bot.history.mirror.deleted(payload.channel_id, set(payload.message_ids))
        self.bot.memory.deleted(sorted(payload.message_ids))


async def _react(message: discord.Message, emoji: str) -> None:
    with contextlib.suppress(discord.HTTPException):
        await message.add_reaction(emoji)
