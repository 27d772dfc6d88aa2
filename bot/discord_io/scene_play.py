"""A scene on Discord: who answers a message, and characters answering each other.

The chat cog hands over a message routing said is for the cast; this decides the
speakers (the members addressed, else the director's choice, the model's when
``scene.director: model``), has each answer through the Responder, then lets
members answer each other up to ``scene.max_chain`` turns until a person speaks.
Ambient replies (``scene.ambient``) join in on talk addressed to nobody. The
per-channel timing it keeps (who spoke when, chains running) is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable

import discord

from bot.cards.model import Character
from bot.config import SceneConfig
from bot.conversations import Conversations
from bot.director import ambient_speaker, first_speaker, member_of, next_in_chain
from bot.discord_io.replies import ReplyWriter
from bot.discord_io.responder import Responder
from bot.routing import CastMember, named_members
from bot.scheduling import ChannelScheduler

__all__ = ["ScenePlay", "cast_members"]

log = logging.getLogger(__name__)

_CHANNELS_KEPT = 2048  # channels whose scene timing is remembered


class _Recent(OrderedDict[int, float]):
    """A per-channel record that forgets the channels least recently written."""

    def put(self, channel_id: int, value: float) -> None:
        self[channel_id] = value
        self.move_to_end(channel_id)
        while len(self) > _CHANNELS_KEPT:
            self.popitem(last=False)


class ScenePlay:
    """Plays scenes: speakers, chains, ambient replies."""

    def __init__(
        self, *, responder: Responder, conversations: Conversations, scheduler: ChannelScheduler,
        scene: Callable[[], SceneConfig],
    ) -> None:
        self._responder = responder
        self._conversations = conversations
        self._scheduler = scheduler
        self._scene = scene  # the live scene config (a reload may change it)
        self._latest_human = _Recent()  # channel -> a person's newest message id
        self._spoke_at = _Recent()  # channel -> when a character last spoke (monotonic)
        self._ambient_at = _Recent()  # channel -> when the last ambient reply was given
        self._fell_back: set[int] = set()  # channels where the model director fell back (logged once)
        self._chained: dict[int, tuple[asyncio.Future[ReplyWriter | None], ReplyWriter]] = {}  # turns running

    async def speakers(
        self, message: discord.Message, cast: tuple[Character, ...], addressed: tuple[str, ...]
    ) -> list[str]:
        """Who answers: the members addressed (the first, or each with ``answer_all_named``),
        else the director's choice (the model's, when it names a member)."""
        scene = self._scene()
        if addressed:
            return list(addressed if scene.answer_all_named else addressed[:1])
        if scene.director == "model" and len(cast) > 1:
            picked = await self._responder.pick_speaker(message.channel, trigger=message)
            if picked is not None:
                return [picked]
            self._natural_instead(message.channel.id)
        last = self._conversations.last_speaker(str(message.channel.id))
        mode = "list" if scene.director == "list" else "natural"
        return [first_speaker([member_of(c) for c in cast], mode=mode, last=last, seed=message.id)]

    def _natural_instead(self, channel_id: int) -> None:
        """Say once per channel that the model director fell back to the natural order."""
        if channel_id not in self._fell_back:
            self._fell_back.add(channel_id)
            log.info("The model named nobody of the cast in channel %s; the natural order picks "
                     "(said once per channel)", channel_id)

    async def answer(self, message: discord.Message, speakers: list[str]) -> None:
        """Each speaker answers in turn; then the scene may go on by itself (a chain)."""
        written: list[tuple[str, ReplyWriter]] = []
        for index, name in enumerate(speakers):
            writer = await self._responder.respond(
                message.channel, trigger=message if index == 0 else None, speaker=name,
                after=[w for _, w in written],
            )
            if writer is not None and writer.messages:
                written.append((name, writer))
                self._spoke_at.put(message.channel.id, time.monotonic())
        if written:
            await self._chain(message, written)

    async def _chain(self, message: discord.Message, written: list[tuple[str, ReplyWriter]]) -> None:
        """Members answer each other, up to ``scene.max_chain`` turns, while no person speaks."""
        scene = self._scene()
        channel = message.channel
        key = str(channel.id)
        for step in range(1, scene.max_chain + 1):
            if self._latest_human.get(channel.id) != message.id:
                log.debug("Chain in %s ends: a person spoke", key)
                return
            cast = await self._conversations.cast(key, message.guild.id if message.guild else None)
            if len(cast) < 2:
                return
            speaker, last = written[-1]
            others = [m for m in cast_members(cast) if m.name != speaker]
            named = named_members(last.text, others)
            if scene.director == "model":  # the member the reply names, else whom the model expects
                following = named[0] if named else await self._responder.pick_speaker(
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
            self._spoke_at.put(channel.id, time.monotonic())

    def ambient(self, message: discord.Message, cast: tuple[Character, ...]) -> str | None:
        """A member who joins in on a message addressed to nobody (``scene.ambient``), at most
        once per ``scene.ambient_cooldown`` seconds in a channel."""
        scene = self._scene()
        if scene.ambient <= 0:
            return None
        channel_id = message.channel.id
        now = time.monotonic()
        cooling = now - self._ambient_at.get(channel_id, -math.inf) < scene.ambient_cooldown
        if cooling or self._scheduler.busy(channel_id):
            return None
        spoke = self._spoke_at.get(channel_id)
        chosen = ambient_speaker(
            [member_of(c) for c in cast], ambient=scene.ambient, since_spoke=None if spoke is None else now - spoke,
            last=self._conversations.last_speaker(str(channel_id)), seed=message.id,
        )
        if chosen is not None:
            self._ambient_at.put(channel_id, now)
            log.info("Ambient reply in %s by %s", channel_id, chosen)
        return chosen

    async def _chained_turn(
        self, channel: discord.abc.Messageable, speaker: str, after: list[ReplyWriter]
    ) -> ReplyWriter | None:
        """One character turn of a chain; a person speaking before it posts anything cancels it."""
        channel_id: int = channel.id  # type: ignore[attr-defined]
        turn = asyncio.ensure_future(self._responder.respond(
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

    def person_spoke(self, channel_id: int, message_id: int) -> None:
        """A person spoke in the channel: a chain of characters' replies there ends."""
        chained = self._chained.get(channel_id)
        if chained is not None and not chained[1].messages:
            chained[0].cancel()  # the chain's next turn has not started writing: it never will
        self._latest_human.put(channel_id, message_id)


def cast_members(cast: tuple[Character, ...]) -> list[CastMember]:
    """The words that call each member: display name, card name, wake words."""
    return [CastMember(c.name, tuple(dict.fromkeys((c.display_name, c.name, *c.wake_words)))) for c in cast]
