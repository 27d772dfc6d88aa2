"""A bounded load test: many channels and users at once against a fast scripted backend.

Every mention is answered in its own channel or explicitly turned away (busy or
cooldown reaction); memory stays flat; the event loop never stalls. The default run
is short; ``TROUPE_LOAD_SECONDS=60`` gives the full minute and the report
(``-s`` to see it).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import resource
import time
from pathlib import Path

import pytest
from discord_harness import make_config, running_bot
from fakediscord import FakeDiscord
from fakediscord.model import Message

from bot.backends.base import GenerationRequest
from bot.backends.scripted import ScriptedBackend
from bot.cogs.chat import BUSY, COOLDOWN

pytestmark = pytest.mark.discord

SECONDS = float(os.environ.get("TROUPE_LOAD_SECONDS", "6"))
CHANNELS, USERS = 20, 50
TAG = re.compile(r"load-(\d+)-(\d+)")


def answer(request: GenerationRequest) -> list[str]:
    """Acknowledge the newest tagged message in the prompt, so replies can be traced."""
    channel, number = TAG.findall(request.prompt)[-1]
    return ["ack ", f"{channel}-{number}"]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def test_many_channels_and_users_at_once(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    rng = random.Random(11)
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
    sent: list[tuple[Message, int]] = []
    lag = 0.0
    running = True

    async def watch_loop() -> None:
        nonlocal lag
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            lag = max(lag, now - last - 0.02)
            last = now

    async with running_bot(fake_discord, config, backend):
        watcher = asyncio.create_task(watch_loop())
        rss_start = rss_mb()
        deadline = time.monotonic() + SECONDS
        samples = []
        while time.monotonic() < deadline:
            channel = rng.randrange(CHANNELS)
            message = await fake_discord.user_says(
                channels[channel], rng.choice(users), f"load-{channels[channel].id}-{len(sent)} hi", mention_bot=True
            )
            sent.append((message, channel))
            await asyncio.sleep(rng.uniform(0.0, 0.04))
            if len(sent) % 200 == 0:
                samples.append(rss_mb())

        def settled() -> bool:
            acks = {m.content for m in fake_discord.sent_by_bot() if m.content.startswith("ack ")}
            return all(
                f"ack {channels[c].id}-{i}" in acks or BUSY in m.reactions or COOLDOWN in m.reactions
                for i, (m, c) in enumerate(sent)
            )

        await fake_discord.wait_for(settled, timeout=60)
        running = False
        await watcher
        rss_end = rss_mb()

    answered = turned_away = 0
    for channel in channels:
        for reply in fake_discord.sent_by_bot(channel):
            if reply.content.startswith("ack "):
                assert reply.content.startswith(f"ack {channel.id}-"), "a reply went to the wrong channel"
                answered += 1
    turned_away = sum(1 for m, _ in sent if BUSY in m.reactions or COOLDOWN in m.reactions)
    print(
        f"\nload: {len(sent)} mentions in {SECONDS:.0f} s over {CHANNELS} channels / {USERS} users: "
        f"{answered} answered, {turned_away} turned away; largest event-loop lag {lag * 1000:.0f} ms; "
        f"RSS {rss_start:.0f} -> {rss_end:.0f} MB; 429s from the fake: {len(fake_discord.rate_limited)}"
    )
    assert answered + turned_away >= len(sent)
    # Discord lets a channel have `limit` message creates and edits per `per` seconds, and a reply
    # takes two (posted, then finished by an edit): at full load that, not the bot, decides how
    # many replies a channel can have. The bot must use most of it.
    limiter = fake_discord.rate_limiter
    capacity = CHANNELS * (limiter.limit + SECONDS * limiter.limit / limiter.per) / 2
    assert answered >= 0.6 * min(capacity, len(sent)), f"{answered} replies, the rate limits allow {capacity:.0f}"
    assert lag < 0.5  # far below Discord's ~41 s heartbeat; a blocked loop would show seconds
    assert rss_end - rss_start < 60
    assert fake_discord.unhandled == []
