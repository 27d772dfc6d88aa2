"""A bounded load test: many channels and users at once against a fast scripted backend.

Every mention is answered in its own channel or explicitly turned away (busy or
cooldown reaction); memory stays flat; the event loop never stalls. The default run
is short; ``TROUPE_LOAD_SECONDS=60`` gives a full minute and the report (``-s`` to see it).

The assertions hold at any length: the fake Discord keeps only each channel's newest
messages and its newest requests, replies are counted as they arrive, and the scripted
backend's request log is emptied as the test goes, so what grows is the bot (checked at
180 s: RSS +38 MB, most of it discord.py's and the fake's caches filling up). The event
loop's lag is measured with ``bot/looplag.py``; on a busy machine a late timer is often
the machine's doing, so the bound is on the part of a lag this process spent running (the
report shows both). The bot and the fake still share this process and its event loop;
``python -m bench.soak`` runs the bot as its own process for half an hour and measures
it alone.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import re
import resource
import time
from pathlib import Path

import pytest
from discord_harness import make_config, running_bot
from fakediscord import FakeDiscord
from fakediscord.events import Event
from fakediscord.model import Message

from bot.backends.base import GenerationRequest
from bot.cogs.chat import BUSY, COOLDOWN
from bot.heap import freeze_startup
from bot.looplag import LoopLag
from bot.testing import ScriptedBackend

SECONDS = float(os.environ.get("TROUPE_LOAD_SECONDS", "6"))
CHANNELS, USERS = 20, 50
TAG = re.compile(r"load-(\d+)-(\d+)")
ACK = re.compile(r"^ack (\d+)-(\d+)$")

pytestmark = [pytest.mark.discord, pytest.mark.timeout(SECONDS + 120)]


def answer(request: GenerationRequest) -> list[str]:
    """Acknowledge the newest tagged message in the prompt, so replies can be traced."""
    channel, number = TAG.findall(request.prompt)[-1]
    return ["ack ", f"{channel}-{number}"]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


class Tally:
    """Each mention's fate, from the fake's events as they happen (nothing kept once resolved)."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.pending: dict[int, tuple[int, int]] = {}  # mention message id -> (channel id, number)
        self.by_tag: dict[tuple[int, int], int] = {}
        self.answered = self.turned_away = self.wrong_channel = 0

    def mentioned(self, message: Message, number: int) -> None:
        key = (message.channel.id, number)
        self.pending[message.id] = key
        self.by_tag[key] = message.id

    def on_event(self, event: Event) -> None:
        if event.name in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and event.message is not None:
            found = ACK.match(event.message.content)
            if found is None or not self.fake.is_from_bot(event.message):
                return
            key = (int(found.group(1)), int(found.group(2)))
            self.wrong_channel += key[0] != event.message.channel.id
            mention = self.by_tag.pop(key, None)
            if mention is not None and self.pending.pop(mention, None) is not None:
                self.answered += 1
        elif event.name == "MESSAGE_REACTION_ADD" and int(event.data["user_id"]) == self.fake.bot_user.id:
            if event.data["emoji"]["name"] in (BUSY, COOLDOWN):
                key = self.pending.pop(int(event.data["message_id"]), None)
                if key is not None:
                    self.by_tag.pop(key, None)
                    self.turned_away += 1


async def test_many_channels_and_users_at_once(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    rng = random.Random(11)
    fake_discord.keep_at_most(messages_per_channel=200, requests=2_000)  # the bot reads at most 200 back
    tally = Tally(fake_discord)
    fake_discord.world.subscribe(tally.on_event)
    guilds = [fake_discord.add_guild(f"server{g}") for g in range(2)]
    channels = [guilds[i % 2].add_text_channel(f"room{i}") for i in range(CHANNELS)]
    users = []
    for u in range(USERS):
        user = fake_discord.add_user(f"user{u}")
        for guild in guilds:
            guild.add_member(user)
        users.append(user)
    backend = ScriptedBackend([answer], chunk_delay=0.005)
    config = make_config(fake_discord, tmp_path, discord={"user_cooldown": 2.0, "queue_size": 2, "edit_interval": 1.0})
    sent = 0
    lag = LoopLag()
    async with running_bot(fake_discord, config, backend):
        freeze_startup()  # as `python -m bot run` does once started: full collections skip what start-up made
        watcher = asyncio.create_task(lag.run())
        try:
            rss_start = rss_mb()
            deadline = time.monotonic() + SECONDS
            while time.monotonic() < deadline:
                channel = channels[rng.randrange(CHANNELS)]
                message = await fake_discord.user_says(
                    channel, rng.choice(users), f"load-{channel.id}-{sent} hi", mention_bot=True
                )
                tally.mentioned(message, sent)
                sent += 1
                await asyncio.sleep(rng.uniform(0.0, 0.04))
                if sent % 200 == 0:
                    backend.requests.clear()  # the test double's log is the test's memory, not the bot's
            await fake_discord.wait_for(lambda: not tally.pending, timeout=60)
            rss_end = rss_mb()
        finally:
            watcher.cancel()
            gc.unfreeze()

    print(
        f"\nload: {sent} mentions in {SECONDS:.0f} s over {CHANNELS} channels / {USERS} users: "
        f"{tally.answered} answered, {tally.turned_away} turned away; largest event-loop lag {lag.worst * 1000:.0f} ms "
        f"(this process running: {lag.worst_own * 1000:.0f} ms; longest GC {lag.worst_gc * 1000:.0f} ms); "
        f"RSS {rss_start:.0f} -> {rss_end:.0f} MB; 429s from the fake: {len(fake_discord.rate_limited)}"
    )
    assert tally.wrong_channel == 0, "a reply went to the wrong channel"
    assert tally.answered + tally.turned_away == sent
    # Discord lets a channel have `limit` message creates and edits per `per` seconds, and a reply
    # takes two (posted, then finished by an edit): at full load that, not the bot, decides how
    # many replies a channel can have. The bot must use most of it.
    limiter = fake_discord.rate_limiter
    capacity = CHANNELS * (limiter.limit + SECONDS * limiter.limit / limiter.per) / 2
    assert tally.answered >= 0.6 * min(capacity, sent), f"{tally.answered} replies, the rate limits allow {capacity:.0f}"
    # far below Discord's ~41 s heartbeat; a blocked loop would show seconds. Wall-clock lag also counts the
    # time a busy machine gave this process no CPU, so the bound is on the part it spent running.
    assert lag.worst_own < 0.5
    assert rss_end - rss_start < 60
