"""The bot's own overhead per reply, measured through the real Discord front end.

The real :class:`bot.app.TroupeBot` (real discord.py, real store, real ChatService)
runs against the local fake Discord in ``tests/fakediscord`` over loopback sockets.
The backend is a :class:`ScriptedBackend` that answers at once and records when it
is asked to generate. The overhead of a reply is the time from a user's message
arriving at the fake Discord to the backend's first token, minus the backend's own
time (from its ``stream()`` being called to that token): everything the bot does
before the model starts — the gateway event, the checks, the history fetched over
REST, the store, the typing call, building the prompt.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import TroupeBot
from bot.backends.base import Chunk, GenerationRequest
from bot.config import Config, parse_config
from bot.testing import ScriptedBackend

from bench.modes import BUDGET, HISTORY_TURNS, N_CTX, REPLY_TOKENS
from bench.replay import generate_replay
from bench.stats import percentile

__all__ = ["TimedBackend", "Overhead", "measure_overhead"]

ROOT = Path(__file__).resolve().parent.parent
_REPLY = "Coming right up, love."
_CHARACTER = "Aria"
_WAIT = 10.0  # seconds at most for any one step


class TimedBackend(ScriptedBackend):
    """A scripted backend that records when each generation is asked for and when its first token leaves."""

    def __init__(self) -> None:
        super().__init__([[_REPLY]], n_ctx=N_CTX)
        self.called: list[float] = []
        self.first_token: list[float] = []

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """The scripted reply, timed."""
        self.called.append(time.perf_counter())
        first = True
        async for chunk in super().stream(request):
            if first:
                self.first_token.append(time.perf_counter())
                first = False
            yield chunk


@dataclass(frozen=True)
class Overhead:
    """Per-reply overhead in seconds (the first, warm-up reply left out)."""

    samples: tuple[float, ...]
    backend_seconds: tuple[float, ...]
    history_messages: int
    error: str | None = None  # why it could not be measured, if it could not

    @property
    def median(self) -> float:
        """Median overhead."""
        return percentile(self.samples, 50)

    @property
    def p95(self) -> float:
        """95th percentile overhead."""
        return percentile(self.samples, 95)


def _config(*, api_url: str, gateway_url: str, token: str, workdir: Path, history_messages: int,
            store_url: str | None = None) -> Config:
    characters = workdir / "characters"
    shutil.copytree(ROOT / "characters", characters)
    config = parse_config({
        "characters_dir": str(characters),
        "default_character": _CHARACTER,
        "store": {"url": store_url} if store_url else {"path": str(workdir / "troupe.db")},
        "discord": {
            "api_url": api_url, "gateway_url": gateway_url, "token": token, "user_cooldown": 0,
        },
        "prompt": {
            "token_budget": BUDGET, "max_reply_tokens": REPLY_TOKENS, "history_messages": history_messages,
        },
        "sampling": {"preset": "greedy"},
    })
    config.source = workdir / "config.yaml"
    return config


async def measure_overhead(
    *, seed: int, mentions: int = 50, backlog: int = 80, history_messages: int = HISTORY_TURNS,
    store_url: str | None = None,
) -> Overhead:
    """Replay one channel (``backlog`` messages, then ``mentions`` + 1 mentions) through the real bot.

    ``history_messages`` is the prompt setting of that name (the bot fetches twice as
    many messages, at most 200, for each reply); ``store_url`` an empty store to use
    instead of a fresh SQLite file."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)  # the fake Discord lives with the tests
    from discord_harness import running_bot
    from fakediscord import FakeDiscord, patch_discordpy

    replay = generate_replay(
        seed, channels=1, backlog=backlog, mentions_per_channel=mentions + 1, bot_name=_CHARACTER
    )
    backend = TimedBackend()
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="troupe-bench-") as tmp:
        async with FakeDiscord(rate_limit=(10_000, 1.0)) as fake:
            with patch_discordpy(fake):
                guild = fake.add_guild("Crossroads")
                channel = guild.add_text_channel("tavern")
                users = {}
                for name in sorted({m.speaker for m in replay.messages}):
                    users[name] = fake.add_user(name.lower(), global_name=name)
                    guild.add_member(users[name])
                config = _config(
                    api_url=fake.api_url, gateway_url=fake.gateway_url, token=fake.token, workdir=Path(tmp),
                    history_messages=history_messages, store_url=store_url,
                )
                async with running_bot(fake, config, backend) as bot:
                    for message in replay.messages:
                        user = users[message.speaker]
                        if not message.mentions_bot:
                            await fake.user_says(channel, user, message.text)
                            continue
                        text = message.text.removeprefix(f"@{_CHARACTER} ")
                        samples.append(await _time_mention(fake, bot, backend, channel, user, text))
    own = tuple(first - called for called, first in zip(backend.called, backend.first_token))
    return Overhead(samples=tuple(samples[1:]), backend_seconds=own[1:], history_messages=history_messages)


async def _time_mention(
    fake: Any, bot: TroupeBot, backend: TimedBackend, channel: Any, user: Any, text: str
) -> float:
    """Post a mention; return the time from its arrival to the backend being asked; wait for the reply."""
    asked = len(backend.called)
    posted = len(fake.sent_by_bot(channel))
    arrived = time.perf_counter()
    await fake.user_says(channel, user, text, mention_bot=True)
    await fake.wait_for(lambda: len(backend.called) > asked, timeout=_WAIT)
    await fake.wait_for(lambda: len(fake.sent_by_bot(channel)) > posted, timeout=_WAIT)
    await fake.wait_for(lambda: not bot.scheduler.busy(channel.id), timeout=_WAIT)
    return backend.called[asked] - arrived
