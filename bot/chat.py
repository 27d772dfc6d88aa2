"""ChatService: the one place that drives a reply, for every front end.

Turns and a character go in; a streamed, stop-enforced reply comes out. The
service builds the prompt with the pure builder (counting tokens with the
backend's real tokenizer), streams from the backend, cuts the text at the first
stop string (even one split across chunks, even if the backend ignored ``stop``),
retries once on an empty reply, and keeps each conversation's last reply stats.
A conversation's state (window anchor, note) belongs to :class:`Conversations`,
which it asks and tells where the window now starts. It knows nothing of Discord.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bot.backends.base import (
    Backend,
    CacheShiftBackend,
    ChoiceBackend,
    ConversationStateBackend,
    GenerationRequest,
    Sampling,
    SyncTokenCounter,
    Timings,
)
from bot.cards.model import Character
from bot.config import Config, SamplingSettings
from bot.conversations import Conversation, Conversations
from bot.director import member_named
from bot.logs import REPLIES
from bot.memory.summary import Summaries
from bot.prompt import StopScanner, build_prompt, sanitize_name
from bot.prompt.reasoning import ReasoningFilter
from bot.prompt.repetition import RepetitionGuard
from bot.prompt_formats import PromptFormats
from bot.prompt.types import Prompt, Turn
from bot.text import estimate_tokens

if TYPE_CHECKING:
    from bot.memory import Memory

__all__ = ["ChatService", "ReplyStream", "ReplyStats", "TokenCounter", "reply_summary", "resolve_sampling"]

log = logging.getLogger(__name__)
reply_log = logging.getLogger(REPLIES)  # one INFO line per reply

_BUDGET_MARGIN = 16  # BOS and the gap between summed piece counts and the joined text
_STATS_KEPT = 1024  # conversations whose last reply's stats are kept for /stats
_CHUNKS_AFTER_STOP = 4  # chunks read past a stop while waiting for the backend's final timings
_SLIDE_AHEAD_LOOKBACK = 6  # recent turns whose longest person's message sizes the next one (slide ahead)
_NAME_TOKENS = 12  # tokens the model director may write for a speaker's name
_NAME_CHARS = 80  # and characters


def resolve_sampling(config: Config, character: Character | None = None, preset: str | None = None) -> Sampling:
    """Preset, then the config's overrides, then the card's own sampler overrides."""
    presets = config.sampling.all_presets()
    layers: list[SamplingSettings] = [presets["default"], presets[preset or config.sampling.preset]]
    layers.append(config.sampling.overrides)
    if character is not None and character.sampling is not None:
        layers.append(character.sampling)
    values: dict[str, object] = {}
    for layer in layers:
        values.update(layer.model_dump(exclude_none=True))
    return Sampling(**values)  # type: ignore[arg-type]


def _greedy(config: Config) -> Sampling:
    """The greedy preset alone (no overrides): a choice that repeats for the same transcript."""
    presets = config.sampling.all_presets()
    values = {**presets["default"].model_dump(exclude_none=True), **presets["greedy"].model_dump(exclude_none=True)}
    return Sampling(**values)  # type: ignore[arg-type]


class TokenCounter:
    """Token counts from the backend's tokenizer, cached, usable by the pure builder.

    The builder takes a synchronous ``count(text)``. For a backend that counts
    asynchronously, :meth:`prime` fetches the counts of the given texts first;
    a text that was not primed is estimated (:func:`bot.text.estimate_tokens`).
    """

    def __init__(self, backend: Backend, *, capacity: int = 20_000, max_chars: int = 4_000_000) -> None:
        self._backend = backend
        self._sync = backend if isinstance(backend, SyncTokenCounter) else None
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity
        self._max_chars = max_chars  # the texts are the memory: bound them, not only their number
        self._chars = 0
        self.misses: list[str] = []

    async def prime(self, texts: Sequence[str]) -> None:
        """Fetch the counts of the texts not yet cached, in one call."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if not missing:
            return
        counts = await self._backend.count_tokens(missing)
        for text, n in zip(missing, counts):
            self._remember(text, n)

    def count(self, text: str) -> int:
        """The cached count, the backend's synchronous count, or an estimate."""
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        counter: Callable[[str], int | None] | None = self._sync.counter() if self._sync is not None else None
        n = counter(text) if counter is not None else None
        if n is not None:
            self._remember(text, n)
            return n
        self.misses.append(text)
        return max(1, estimate_tokens(text))

    def _remember(self, text: str, n: int) -> None:
        if self._cache.pop(text, None) is None:
            self._chars += len(text)
        self._cache[text] = n
        while len(self._cache) > self._capacity or self._chars > self._max_chars:
            oldest, _ = self._cache.popitem(last=False)
            self._chars -= len(oldest)

    @property
    def cached_chars(self) -> int:
        """Characters of text the cache holds."""
        return self._chars


@dataclass
class ReplyStats:
    """What the last reply in a conversation cost; shown by /stats."""

    backend: str
    n_ctx: int
    prompt_tokens: int
    budget: int
    turns_kept: int
    turns_dropped: int
    timings: Timings | None = None
    seconds_to_first_text: float | None = None
    seconds_total: float = 0.0
    stop: str | None = None
    retries: int = 0
    #: the prompt format in use and how it was chosen (e.g. "transcript (auto: the model has no chat template)")
    prompt_format: str = ""
    speaker: str = ""  # who replied (a scene's member)
    cast: tuple[str, ...] = ()  # the scene's members when the reply was written (empty: one character)


@dataclass
class ReplyStream:
    """A reply being generated: iterate it for text; ``text`` and ``stats`` fill in as it goes."""

    prompt: Prompt
    stats: ReplyStats
    _pieces: AsyncIterator[str] = field(repr=False)
    text: str = ""
    _thinking: list[ReasoningFilter] = field(default_factory=list, repr=False)

    @property
    def reasoning(self) -> str:
        """The model's thinking, kept out of ``text`` (complete once the first text arrives)."""
        return self._thinking[-1].reasoning if self._thinking else ""

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        async for piece in self._pieces:
            self.text += piece
            yield piece

    async def aclose(self) -> None:
        """Stop the reply now (closes the backend's stream, which stops the generation)."""
        await self._pieces.aclose()  # type: ignore[attr-defined]

    async def collect(self) -> str:
        """Consume the whole reply and return its text."""
        async for _ in self:
            pass
        return self.text


class ChatService:
    """Builds prompts, drives the backend, enforces stops; shared by console, Discord and benchmarks."""

    def __init__(self, backend: Backend, config: Config, conversations: Conversations | None = None,
                 memory: Memory | None = None) -> None:
        self.backend = backend
        self.config = config
        self.conversations = conversations or Conversations(None)
        self.memory = memory  # recall of older talk (None: none)
        self.summaries = Summaries(self)  # running summaries, folded in while idle
        self.counter = TokenCounter(backend)
        self._said_unconstrained = False  # logged once: the backend cannot constrain the model director
        self._last_stats: OrderedDict[str, ReplyStats] = OrderedDict()
        self._last_prompts: OrderedDict[str, Prompt] = OrderedDict()
        self._n_ctx: int | None = None
        self.formats = PromptFormats(backend, config.prompt)

    def forget_context(self) -> None:
        """Forget what depends on the model (after a model switch): its context size and windows."""
        self._n_ctx = None
        self.conversations.forget_windows()
        self.counter = TokenCounter(self.backend)
        self.formats.forget()

    def last_stats(self, conversation: str) -> ReplyStats | None:
        """What the conversation's last reply cost (None before its first reply)."""
        return self._last_stats.get(conversation)

    def last_prompt(self, conversation: str) -> Prompt | None:
        """The prompt of the conversation's last reply (for ``/context``; None before its first reply)."""
        return self._last_prompts.get(conversation)

    def _remembers(self, state: Conversation | None) -> bool:
        return self.memory is not None and state is not None and self.memory.remembers(state)

    async def context_size(self) -> int:
        """The backend's context window (asked once)."""
        if self._n_ctx is None:
            self._n_ctx = await self.backend.context_size()
        return self._n_ctx

    async def budget(self) -> int:
        """Prompt tokens allowed: the configured budget, or context minus reply length.

        Backends cap the reply at whatever room the context has left."""
        n_ctx = await self.context_size()
        reply_room = min(self.config.prompt.max_reply_tokens, n_ctx // 2)  # a huge reply length can't starve the prompt
        room = n_ctx - reply_room - _BUDGET_MARGIN
        configured = self.config.prompt.token_budget
        return max(64, min(configured, room) if configured else room)

    async def build(
        self,
        character: Character,
        turns: Sequence[Turn],
        *,
        conversation: str | None = None,
        user_name: str | None = None,
        prefill: str = "",
        note: str = "",
        cast: Sequence[Character] = (),
        recalled: Sequence[Turn] = (),
    ) -> Prompt:
        """The prompt for the character's next reply, fitted to the budget (``note``: the
        channel's author's note, placed after the history; ``cast``: a scene's members, in
        order, who share one prompt; ``recalled``: older lines memory found for the newest
        turn). Where the conversation remembers, its summary goes in and room for recalled
        lines is kept whether or not there are any."""
        budget = await self.budget()
        state = await self.conversations.get(conversation) if conversation else None
        anchor = state.anchor if state else None
        remembers = self._remembers(state)
        summary = (state.summary or "") if remembers and state else ""
        recall_room = self.config.memory.recall_tokens if remembers else 0
        template = await self.formats.template(conversation, self.config.prompt)

        def build(count: Callable[[str], int]) -> Prompt:
            return build_prompt(
                character,
                turns,
                config=self.config.prompt,
                count_tokens=count,
                budget=budget,
                user_name=user_name or self.config.prompt.user_name,
                prefill=prefill,
                anchor=anchor,
                note=note,
                template=template,
                cast=cast,
                summary=summary,
                recalled=recalled,
                recall_room=recall_room,
            )

        # Remote tokenizers are asynchronous: a first pass learns which texts the
        # builder counts, they are counted in one request, the second pass is exact.
        self.counter.misses.clear()
        prompt = build(self.counter.count)
        if self.counter.misses:
            await self.counter.prime(self.counter.misses)
            prompt = build(self.counter.count)
        return prompt

    async def prewarm(self, character: Character, conversation: str, *, cast: Sequence[Character] = ()) -> int:
        """Have the backend read the character's (or the scene's) stable prefix ahead of the first reply.

        Returns the tokens read (0 when the backend keeps no per-conversation state).
        """
        backend = self.backend
        if not isinstance(backend, ConversationStateBackend):
            return 0
        prompt = await self.build(character, [], conversation=None, cast=cast)
        return await backend.prewarm(conversation, prompt.prefix, special_tokens=prompt.special_tokens)

    async def read_ahead(
        self, character: Character, turns: Sequence[Turn], *, conversation: str, cast: Sequence[Character] = ()
    ) -> int:
        """While the model is idle, read the conversation so far into the backend's state for it,
        so the next reply reads only what arrives after this. Returns the tokens read (0 when
        the backend keeps no per-conversation state, or is busy)."""
        backend = self.backend
        if not isinstance(backend, ConversationStateBackend) or not turns or not self.config.prompt.read_ahead:
            return 0
        state = await self.conversations.get(conversation)
        await self._slide_ahead(character, turns, conversation, cast)
        prompt = await self.build(character, turns, conversation=conversation, cast=cast)
        if self._remembers(state):
            self._note_slide(conversation, character, turns, state.anchor, prompt.first_turn_id, cast)
        await self.conversations.window_moved(conversation, prompt.first_turn_id, replied=False)
        history = prompt.text[: prompt.history_end]
        return await backend.prewarm(conversation, history, special_tokens=prompt.special_tokens, only_if_idle=True)

    async def _slide_ahead(
        self, character: Character, turns: Sequence[Turn], conversation: str, cast: Sequence[Character]
    ) -> None:
        """Where the backend cannot shift a conversation's cached window (``shifts_cache``), a
        slide re-reads the whole window: when one more message like the recent ones would make
        the window slide, slide it now, so the read-ahead that follows pays for the re-read
        while the conversation is quiet and the next reply reads only its own message."""
        backend = self.backend
        anchor = (await self.conversations.get(conversation)).anchor
        if not isinstance(backend, CacheShiftBackend) or backend.shifts_cache(conversation) or anchor is None:
            return
        recent = [turn for turn in turns[-_SLIDE_AHEAD_LOOKBACK:] if turn.role != "character"] or turns[-1:]
        upcoming = replace(max(recent, key=lambda turn: len(turn.text)), id=None)  # the next message's size
        trial = await self.build(character, [*turns, upcoming], conversation=conversation, cast=cast)
        if trial.first_turn_id is not None and trial.first_turn_id != anchor:
            await self.conversations.window_moved(conversation, trial.first_turn_id, replied=False)
            log.debug("Window of %s slid ahead of the next message (to %s)", conversation, trial.first_turn_id)

    async def pick_speaker(
        self, cast: Sequence[Character], turns: Sequence[Turn], *, conversation: str | None = None,
        user_name: str | None = None,
    ) -> str | None:
        """The scene member the model expects to speak next (its card name), or None when it
        names nobody of the cast (a person, say). The model continues the shared transcript
        with ``[`` and a name, greedily; a backend that keeps the conversation's state reads
        only those few tokens beyond the history it holds. Where the backend can constrain a
        continuation (:class:`ChoiceBackend`: a grammar), the name is always a member's; elsewhere
        the model writes freely (said once in the log) and may name somebody else."""
        prompt = await self.build(cast[0], turns, conversation=conversation, user_name=user_name, cast=cast)
        opened = (await self.formats.template(conversation, self.config.prompt)).open_assistant("[")
        request = GenerationRequest(
            prompt=prompt.text[: prompt.history_end] + opened,
            max_tokens=_NAME_TOKENS,
            stops=("]", "\n"),
            sampling=_greedy(self.config),
            conversation=conversation,
            keep_tokens=prompt.prefix_tokens,
            special_tokens=prompt.special_tokens,
        )
        shown = {sanitize_name(c.display_name): c.name for c in cast}
        if isinstance(self.backend, ChoiceBackend):
            longest = max(len(name.encode()) for name in shown) + 1  # a bound: a token is at least a byte
            picked = await self.backend.choose(replace(request, max_tokens=longest, stops=()), [f"{name}]" for name in shown])
            chosen = shown[picked.removesuffix("]")]
            log.debug("Model director in %s chose %s", conversation, chosen)
            return chosen
        if not self._said_unconstrained:
            self._said_unconstrained = True
            log.info("%s cannot constrain the model director's pick to the cast: the model names the next "
                     "speaker freely, and a name no member has falls back to the natural order", self.backend.name)
        written = ""
        stream = self.backend.stream(request)
        try:
            async for chunk in stream:
                if chunk.done:
                    break
                written += chunk.text
                if "]" in written or "\n" in written or len(written) > _NAME_CHARS:
                    break
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        chosen = member_named(written, [(name, display) for display, name in shown.items()])
        log.debug("Model director in %s wrote %r: %s", conversation, written, chosen or "nobody of the cast")
        return chosen

    def _note_slide(self, conversation: str, character: Character, turns: Sequence[Turn],
                    before: str | None, after: str | None, cast: Sequence[Character] = ()) -> None:
        """If the window's start moved on from ``before`` to ``after``, the turns between go to
        the running summary (folded in later, while idle)."""
        ids = [turn.id for turn in turns]
        if before is None or after is None or before == after or before not in ids or after not in ids:
            return
        dropped = list(turns[ids.index(before): ids.index(after)])
        if dropped:
            self.summaries.slid(conversation, character, dropped, turns, cast)

    async def prompt_for(
        self, character: Character, turns: Sequence[Turn], *, conversation: str | None = None,
        user_name: str | None = None, prefill: str = "", cast: Sequence[Character] = (),
    ) -> Prompt:
        """The prompt of the character's reply to ``turns`` now: the conversation's note, the
        older lines its newest turn recalls (what lies before the window, after the fence), and
        the window's start told to :class:`Conversations` (a slide noted for the summary)."""
        state = await self.conversations.get(conversation) if conversation else None
        note = (state.note or "") if state else ""
        prompt = await self.build(
            character, turns, conversation=conversation, user_name=user_name, prefill=prefill, note=note,
            cast=cast,
        )
        if self.memory is not None and state is not None and turns and self._remembers(state):
            recalled = await self.memory.recall(
                state, turns[-1].text, before_id=prompt.first_turn_id, ignore=(character.display_name,)
            )
            if recalled:
                prompt = await self.build(character, turns, conversation=conversation, user_name=user_name,
                                          prefill=prefill, note=note, cast=cast, recalled=recalled)
        if conversation:
            if state is not None and self._remembers(state):
                self._note_slide(conversation, character, turns, state.anchor, prompt.first_turn_id, cast)
            await self.conversations.window_moved(conversation, prompt.first_turn_id, replied=True)
        return prompt

    async def reply(
        self,
        character: Character,
        turns: Sequence[Turn],
        *,
        conversation: str | None = None,
        user_name: str | None = None,
        prefill: str = "",
        sampling: Sampling | None = None,
        max_tokens: int | None = None,
        cast: Sequence[Character] = (),
    ) -> ReplyStream:
        """Start the character's reply; iterate the result for stop-enforced text (``cast``: a
        scene's members, ``character`` among them, who share one prompt).

        The conversation's note and window come from its owner (:class:`Conversations`),
        which learns where the window starts now and who spoke."""
        prompt = await self.prompt_for(character, turns, conversation=conversation, user_name=user_name,
                                       prefill=prefill, cast=cast)
        request = GenerationRequest(
            prompt=prompt.text,
            max_tokens=max_tokens or self.config.prompt.max_reply_tokens,
            stops=prompt.backend_stops,
            sampling=sampling or resolve_sampling(self.config, character),
            conversation=conversation,
            keep_tokens=prompt.prefix_tokens,
            messages=prompt.messages,
            special_tokens=prompt.special_tokens,
        )
        stats = ReplyStats(
            backend=self.backend.name,
            n_ctx=await self.context_size(),
            prompt_tokens=prompt.token_count,
            budget=await self.budget(),
            turns_kept=prompt.turns_kept,
            turns_dropped=prompt.turns_dropped,
            prompt_format=await self.formats.describe(conversation),
            speaker=character.display_name,
            cast=tuple(c.display_name for c in cast) if len(cast) > 1 else (),
        )
        if conversation:
            self.conversations.spoke(conversation, character.name)
            for kept, value in ((self._last_stats, stats), (self._last_prompts, prompt)):
                kept[conversation] = value  # type: ignore[index]
                kept.move_to_end(conversation)
                while len(kept) > _STATS_KEPT:
                    kept.popitem(last=False)
        thinking: list[ReasoningFilter] = []
        pieces = self._generate(request, character, prompt, stats, prefill, thinking)
        return ReplyStream(prompt=prompt, stats=stats, _pieces=pieces, _thinking=thinking)

    async def _generate(
        self, request: GenerationRequest, character: Character, prompt: Prompt, stats: ReplyStats, prefill: str,
        thinking: list[ReasoningFilter],
    ) -> AsyncIterator[str]:
        started = time.perf_counter()
        attempts = self._attempts(request, character, prompt, stats, prefill, thinking)
        try:
            # closed explicitly, so a reply stopped early stops the backend's stream at once
            async with contextlib.aclosing(attempts) as texts:
                async for text in texts:
                    yield text
        finally:
            stats.seconds_total = time.perf_counter() - started
            reply_log.info("%s", reply_summary(character.display_name, request.conversation, stats))

    async def _attempts(
        self, request: GenerationRequest, character: Character, prompt: Prompt, stats: ReplyStats, prefill: str,
        thinking: list[ReasoningFilter],
    ) -> AsyncIterator[str]:
        started = time.perf_counter()
        produced = False
        for attempt in range(2):  # one retry when the model says nothing usable
            scanner = StopScanner(
                prompt.stops,
                character_name=None if prefill else character.display_name,
                strip_leading=not prefill,  # a prefill's continuation keeps its leading space
            )
            guard = RepetitionGuard()
            reasoning = ReasoningFilter.for_prompt(request.prompt)  # thinking never reaches the reply
            thinking[:] = [reasoning]
            stream = self.backend.stream(request)
            after_stop = 0
            try:
                async for chunk in stream:
                    if chunk.done:
                        stats.timings = chunk.timings
                        break
                    if scanner.stopped:
                        # a backend that honours stops ends right away (with its timings);
                        # one that ignores them is cut off after a few more chunks
                        after_stop += 1
                        if after_stop > _CHUNKS_AFTER_STOP:
                            break
                        continue
                    if chunk.reasoning:
                        reasoning.add_reasoning(chunk.reasoning)
                    text = scanner.feed(reasoning.feed(chunk.text))
                    if text:
                        if stats.seconds_to_first_text is None:
                            stats.seconds_to_first_text = time.perf_counter() - started
                        produced = True
                        yield text
                        if guard.feed(text):
                            log.debug("Reply from %s is looping; ending it", self.backend.name)
                            stats.stop = "repetition"
                            break
            finally:
                await stream.aclose()  # type: ignore[attr-defined]
            if guard.looping:
                break
            tail = scanner.feed(reasoning.finish()) + scanner.finish()
            if tail:
                produced = True
                yield tail
            stats.stop = scanner.stop
            if produced or prefill:
                break
            stats.retries = attempt + 1
            seed = (request.sampling.seed or 0) + 1
            request = replace(request, sampling=replace(request.sampling, seed=seed))
            log.debug("Empty reply from %s; retrying once", self.backend.name)
        stats.seconds_total = time.perf_counter() - started
        if stats.timings:
            log.debug(
                "Reply: %s prompt tokens (%s evaluated), %d generated, %.2f s",
                stats.timings.prompt_tokens, stats.timings.prompt_evaluated,
                stats.timings.generated_tokens, stats.seconds_total,
            )


def reply_summary(character: str, conversation: str | None, stats: ReplyStats) -> str:
    """The one log line of a reply: who answered where, tokens read and written, time."""
    where = f" in {conversation}" if conversation else ""
    timings = stats.timings
    if timings is not None and timings.prompt_tokens is not None:
        read = timings.prompt_evaluated if timings.prompt_evaluated is not None else timings.prompt_tokens
        tokens = f"{read} of {timings.prompt_tokens} prompt tokens read, {timings.generated_tokens} generated"
    else:
        tokens = f"{stats.prompt_tokens} prompt tokens"
    first = "" if stats.seconds_to_first_text is None else f"first text {stats.seconds_to_first_text:.2f} s, "
    extra = ""
    if stats.retries:
        extra += f", {stats.retries} retr{'y' if stats.retries == 1 else 'ies'}"
    if stats.stop == "repetition":
        extra += ", stopped by repetition"
    head = f"Reply as {character}{where} ({stats.backend})"
    return f"{head}: {tokens}, {first}{stats.seconds_total:.2f} s{extra}"
