"""Messages in: answer those for the characters (mentions, replies, DMs, wake words),
read the rest ahead while the channel is quiet. In a scene, the member addressed
answers (else the director's choice), and members may answer each other up to
``scene.max_chain`` turns, until a person speaks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.cards.model import Character
from bot.director import ambient_speaker, first_speaker, member_of, next_in_chain
from bot.discord_io.incoming import incoming
from bot.discord_io.replies import ReplyWriter
from bot.routing import CastMember, Decision, Route, RouteSettings, allowed_here, decide, named_members

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
        self._latest_human: OrderedDict[int, int] = OrderedDict()  # channel -> a person's newest message
        self._fell_back: set[int] = set()  # channels where the model director fell back (logged once)
        self._spoke_at: dict[int, float] = {}  # channel -> when a character last spoke (monotonic)
        self._chained: dict[int, tuple[asyncio.Future[ReplyWriter | None], ReplyWriter]] = {}  # turns running
        self._ambient_at: dict[int, float] = {}  # channel -> when the last ambient reply was given

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
        if me is None or message.author.id == me.id or bot.is_closed() or not self._first_time(message.id):
            return
        bot.track()
        key = str(message.channel.id)
        guild_id = message.guild.id if message.guild else None
        cast = await bot.conversations.cast(key, guild_id)
        if not cast:
            return
        facts = await incoming(message, me=me.id, webhook_ids=bot.webhooks.known_ids)
        settings = await self._settings(key)
        decision = decide(facts, settings, _cast_members(cast))
        if decision.route is not Route.IGNORE and not message.author.bot:
            self._person_spoke(message.channel.id, message.id)  # ends a chain of characters' replies
        ambient = None
        if decision.route is Route.LISTEN and not message.author.bot and allowed_here(facts, settings):
            ambient = self._ambient(message, cast)
        if decision.route is Route.LISTEN and ambient is None and bot.config.prompt.read_ahead:
            bot.read_ahead.soon(message.channel.id, lambda: bot.responder.read_ahead(message.channel))
        if ambient is not None:
            decision = Decision(Route.ANSWER, (ambient,))
        if decision.route is not Route.ANSWER:
            return
        if ambient is None and bot.cooldowns.hit(message.author.id) > 0:
            await _react(message, COOLDOWN)
            return
        slot = bot.scheduler.reserve(message.channel.id)
        if slot is None:
            if ambient is None:  # nobody asked for an ambient reply: nobody is told it is busy
                await _react(message, BUSY)
            return
        try:
            async with slot:
                await self._answer(message, await self._speakers(message, cast, decision.addressed))
        except asyncio.CancelledError:
            if bot.is_closed():
                raise
            log.info("Reply in %s was stopped", message.channel)

    async def _speakers(
        self, message: discord.Message, cast: tuple[Character, ...], addressed: tuple[str, ...]
    ) -> list[str]:
        """Who answers: the members addressed (the first, or each with ``answer_all_named``),
        else the director's choice (the model's, when it names a member)."""
        scene = self.bot.config.scene
        if addressed:
            return list(addressed if scene.answer_all_named else addressed[:1])
        if scene.director == "model" and len(cast) > 1:
            picked = await self.bot.responder.pick_speaker(message.channel, trigger=message)
            if picked is not None:
                return [picked]
            self._natural_instead(message.channel.id)
        last = self.bot.conversations.last_speaker(str(message.channel.id))
        mode = "list" if scene.director == "list" else "natural"
        return [first_speaker([member_of(c) for c in cast], mode=mode, last=last, seed=message.id)]

    def _natural_instead(self, channel_id: int) -> None:
        """Say once per channel that the model director fell back to the natural order."""
        if channel_id not in self._fell_back:
            self._fell_back.add(channel_id)
            log.info("The model named nobody of the cast in channel %s; the natural order picks "
                     "(said once per channel)", channel_id)

    async def _answer(self, message: discord.Message, speakers: list[str]) -> None:
        """Each speaker answers in turn; then the scene may go on by itself (a chain)."""
        written: list[tuple[str, ReplyWriter]] = []
        for index, name in enumerate(speakers):
            writer = await self.bot.responder.respond(
                message.channel, trigger=message if index == 0 else None, speaker=name,
                after=[w for _, w in written],
            )
            if writer is not None and writer.messages:
                written.append((name, writer))
                self._spoke_at[message.channel.id] = time.monotonic()
        if written:
            await self._chain(message, written)

    async def _chain(self, message: discord.Message, written: list[tuple[str, ReplyWriter]]) -> None:
        """Members answer each other, up to ``scene.max_chain`` turns, while no person speaks."""
        scene = self.bot.config.scene
        channel = message.channel
        key = str(channel.id)
        for step in range(1, scene.max_chain + 1):
            if self._latest_human.get(channel.id) != message.id:
                log.debug("Chain in %s ends: a person spoke", key)
                return
            cast = await self.bot.conversations.cast(key, message.guild.id if message.guild else None)
            if len(cast) < 2:
                return
            speaker, last = written[-1]
            others = [m for m in _cast_members(cast) if m.name != speaker]
            named = named_members(last.text, others)
            if scene.director == "model":  # the member the reply names, else whom the model expects
                following = named[0] if named else await self.bot.responder.pick_speaker(
                    channel, after=[w for _, w in written])
                following = None if following == speaker else following
            else:
                following = next_in_chain(
                    [member_of(c) for c in cast], mode=scene.director,
                    speaker=speaker, named=named, seed=message.id, step=step,
                )
            if following is None:
                return
            writer = await self._chained_turn(channel, following, [w for _, w in written])
            if writer is None or not writer.messages:
                return
            written.append((following, writer))
            self._spoke_at[channel.id] = time.monotonic()

    def _ambient(self, message: discord.Message, cast: tuple[Character, ...]) -> str | None:
        """A member who joins in on a message addressed to nobody (``scene.ambient``), at most
        once per ``scene.ambient_cooldown`` seconds in a channel."""
        scene = self.bot.config.scene
        if scene.ambient <= 0:
            return None
        channel_id = message.channel.id
        now = time.monotonic()
        cooling = now - self._ambient_at.get(channel_id, -math.inf) < scene.ambient_cooldown
        if cooling or self.bot.scheduler.busy(channel_id):
            return None
        spoke = self._spoke_at.get(channel_id)
        chosen = ambient_speaker(
            [member_of(c) for c in cast], ambient=scene.ambient, since_spoke=None if spoke is None else now - spoke,
            last=self.bot.conversations.last_speaker(str(channel_id)), seed=message.id,
        )
        if chosen is not None:
            self._ambient_at[channel_id] = now
            log.info("Ambient reply in %s by %s", channel_id, chosen)
        return chosen

    async def _chained_turn(
        self, channel: discord.abc.Messageable, speaker: str, after: list[ReplyWriter]
    ) -> ReplyWriter | None:
        """One character turn of a chain; a person speaking before it posts anything cancels it."""
        channel_id: int = channel.id  # type: ignore[attr-defined]
        turn = asyncio.ensure_future(self.bot.responder.respond(
            channel, speaker=speaker, after=after,
            started=lambda writer: self._chained.__setitem__(channel_id, (turn, writer)),
        ))
        try:
            return await turn
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # /stop or shutdown: the whole answer ends
            log.debug("Chain in %s ends: a person spoke before %s wrote anything", channel_id, speaker)
            return None
        finally:
            self._chained.pop(channel_id, None)

    def _person_spoke(self, channel_id: int, message_id: int) -> None:
        chained = self._chained.get(channel_id)
        if chained is not None and not chained[1].messages:
            chained[0].cancel()  # the chain's next turn has not started writing: it never will
        self._latest_human[channel_id] = message_id
        self._latest_human.move_to_end(channel_id)
        if len(self._latest_human) > _SEEN_MESSAGES:
            self._latest_human.popitem(last=False)

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
        """Keep fetched history up to date."""
        self.bot.history.mirror.edited(payload)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        """Keep fetched history up to date."""
        self.bot.history.mirror.deleted(payload.channel_id, {payload.message_id})

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        """Keep fetched history up to date."""
        self.bot.history.mirror.deleted(payload.channel_id, set(payload.message_ids))


def _cast_members(cast: tuple[Character, ...]) -> list[CastMember]:
    """The words that call each member: display name, card name, wake words."""
    return [CastMember(c.name, tuple(dict.fromkeys((c.display_name, c.name, *c.wake_words)))) for c in cast]


async def _react(message: discord.Message, emoji: str) -> None:
    with contextlib.suppress(discord.HTTPException):
        await message.add_reaction(emoji)
