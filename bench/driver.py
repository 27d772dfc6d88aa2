"""Drive a replay through the real ChatService and backend, recording what each reply cost.

Messages are fed in arrival order; each mention of the bot is answered at once
(one reply at a time, as one embedded model serves them) and the reply joins its
channel's history as the character's turn. The first reply in a channel is a
warm-up: it reads the channel's backlog cold in every mode, so it is recorded but
kept apart from the steady-state figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import llama_cpp

from bot.backends.llama_cpp import LlamaCppBackend
from bot.cards.model import Character
from bot.chat import ChatService
from bot.config import Config
from bot.prompt import Turn

from bench.ideal import IdealCounter
from bench.modes import HISTORY_TURNS, Mode
from bench.replay import Message, Replay

__all__ = ["ReplyRecord", "ModeRun", "run_replay", "llama_decoded"]


@dataclass
class ReplyRecord:
    """One reply: what the prompt held, what the backend read, how long it took."""

    channel: str
    warmup: bool
    prompt_tokens: int
    evaluated: int
    ideal: int
    floor: int
    latency: float
    first_token: float
    prompt_seconds: float
    generation_seconds: float
    generated: int
    shifted: bool
    switched: bool
    turns_kept: int
    text: str


@dataclass
class ModeRun:
    """A whole replay in one mode."""

    mode: str
    channels: int
    prewarm_tokens: int = 0
    prewarm_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    state_cache_mb: float = 0.0
    llama_decoded: int = 0
    replies: list[ReplyRecord] = field(default_factory=list)

    @property
    def measured(self) -> list[ReplyRecord]:
        """The steady-state replies (warm-ups left out)."""
        return [r for r in self.replies if not r.warmup]


async def run_replay(
    mode: Mode,
    replay: Replay,
    character: Character,
    backend: LlamaCppBackend,
    config: Config,
    *,
    limit: int | None = None,
    progress: Callable[[ReplyRecord], None] | None = None,
) -> ModeRun:
    """Play ``replay`` in ``mode``; stop after ``limit`` steady-state replies if given."""
    service = ChatService(backend, config)
    await backend.start()
    run = ModeRun(mode=mode.name, channels=len(replay.channels))
    decoded = llama_decoded(backend)
    started = time.perf_counter()
    if mode.prewarm:
        await _prewarm(service, character, replay.channels, run)
    ideal = IdealCounter(character, await service.formats.template(None), service.counter.count)
    channels = {name: _Channel() for name in replay.channels}
    last_channel: str | None = None
    for message in replay.messages:
        channel = channels[message.channel]
        channel.add(Turn(message.speaker, message.text, id=message.id))
        if not message.mentions_bot:
            continue
        if mode.read_ahead and len(channel.pending) > 1 and (await service.conversations.get(message.channel)).anchor is not None:
            # the others' messages came while the model was idle: read them then, off the critical path
            began = time.perf_counter()
            earlier = channel.history[:-1][-HISTORY_TURNS:]
            run.prewarm_tokens += await service.read_ahead(character, earlier, conversation=message.channel)
            run.prewarm_seconds += time.perf_counter() - began
        record = await _reply(service, backend, mode, character, ideal, message, channel)
        record.switched = last_channel is not None and last_channel != message.channel
        last_channel = message.channel
        run.replies.append(record)
        if progress is not None:
            progress(record)
        if limit is not None and len(run.measured) >= limit:
            break
    run.wall_seconds = time.perf_counter() - started
    run.llama_decoded = llama_decoded(backend) - decoded
    run.state_cache_mb = backend.states.bytes_used / 2**20
    return run


def llama_decoded(backend: LlamaCppBackend) -> int:
    """Tokens llama.cpp itself has decoded so far (prompt and generated), from its perf counters.

    An independent check of the backend's own ``prompt_evaluated`` count. llama.cpp adds
    a batch to its counters when it next synchronises, so only differences over a whole
    run (ending with a reply) are exact.
    """
    llm = backend._llm  # the backend exposes no public handle; this is a read-only look
    perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
    return int(perf.n_p_eval) + int(perf.n_eval)


@dataclass
class _Channel:
    history: list[Turn] = field(default_factory=list)
    pending: list[Turn] = field(default_factory=list)  # others' messages since the bot last replied
    replies: int = 0

    def add(self, turn: Turn) -> None:
        self.history.append(turn)
        self.pending.append(turn)


async def _prewarm(
    service: ChatService, character: Character, channels: tuple[str, ...], run: ModeRun
) -> None:
    """Read each channel's prompt prefix (the card) before any message arrives."""
    began = time.perf_counter()
    for channel in channels:
        run.prewarm_tokens += await service.prewarm(character, channel)
    run.prewarm_seconds = time.perf_counter() - began


async def _reply(
    service: ChatService,
    backend: LlamaCppBackend,
    mode: Mode,
    character: Character,
    ideal: IdealCounter,
    message: Message,
    channel: _Channel,
) -> ReplyRecord:
    if not mode.keep_anchors:
        service.conversations.forget_windows()
    turns = channel.history[-HISTORY_TURNS:]
    shifts = backend.shifts
    began = time.perf_counter()
    stream = await service.reply(character, turns, conversation=message.channel)
    first: float | None = None
    async for _ in stream:
        if first is None:
            first = time.perf_counter() - began
    latency = time.perf_counter() - began
    timings = stream.stats.timings
    if timings is None or timings.prompt_evaluated is None:
        raise RuntimeError(f"{backend.name} gave no timings for a reply")
    kept = {turn.id for turn in turns[len(turns) - stream.prompt.turns_kept:]}
    message_turn = turns[-1]  # the mention itself: no strategy can read it before it arrives
    new_turns = [turn for turn in channel.pending if turn.id in kept]
    record = ReplyRecord(
        channel=message.channel,
        warmup=channel.replies == 0,
        prompt_tokens=timings.prompt_tokens or 0,
        evaluated=timings.prompt_evaluated,
        ideal=ideal.count(stream.prompt, new_turns),
        floor=ideal.count(stream.prompt, [message_turn]),
        latency=latency,
        first_token=first if first is not None else latency,
        prompt_seconds=timings.prompt_seconds,
        generation_seconds=timings.generation_seconds,
        generated=timings.generated_tokens,
        shifted=backend.shifts > shifts,
        switched=False,
        turns_kept=stream.prompt.turns_kept,
        text=stream.text,
    )
    channel.replies += 1
    channel.pending.clear()
    if stream.text.strip():
        channel.history.append(
            Turn(character.display_name, stream.text, id=f"reply-{message.id}", role="character")
        )
    return record
