"""The embedded backend: llama-cpp-python in this process.

The model is loaded and run in worker threads, never on the event loop: a
generation runs in one thread and hands its text to the loop through an asyncio
queue. One generation runs at a time (a llama.cpp context holds one KV cache).

Reading a prompt is the slow part on a CPU, so the backend reads as little as it can:
- the KV cache is reused for whatever prefix the new prompt shares with the last;
- when a conversation's window slides (old turns dropped), the dropped span is
  deleted from the cache and the rest shifted down instead of re-read
  (``context_shift``; a shifted cache is close to, not bit-identical with, a fresh read);
- each conversation's cache is saved when another one takes the model, and
  restored when it comes back (an LRU within ``state_cache_mb``).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from bot.backends.base import (
    Capabilities,
    ChatTemplate,
    Chunk,
    GenerationRequest,
    Health,
    ModelInfo,
    Timings,
)
from bot.backends.kv_cache import SavedState, StateCache, common_prefix, plan_shift
from bot.backends.model_files import check_gguf, default_model_path
from bot.backends.settings import LlamaCppConfig
from bot.errors import BackendError, ContextOverflow, ModelError, UnsupportedOperation

__all__ = ["LlamaCppBackend"]

log = logging.getLogger(__name__)

_KV_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "iq4_nl": 20, "bf16": 30}
_DEFAULT_MODEL_NAME = "default"
_MIN_SHIFT_MATCH = 32  # shift only when it saves reading at least this many tokens
#: tokens a pre-warm reads between looks at whether a reply is waiting (about 0.1-0.2 s on 2 cores)
_PREWARM_CHUNK = 48
#: the longest text tokenized on the event loop. Measured with the bundled Gemma 3 270M on the
#: 2 shared cores (load average 13), median of 300 runs: 100 characters 33 us, 400: 70 us,
#: 1000: 170 us (p90 0.3 ms), 2000: 0.47 ms (p90 8.6 ms), 8000: 7.8 ms. Up to 1000 characters
#: (a chat message, most card fields) counting stays well under a millisecond; longer texts
#: are counted in a worker thread (count_tokens).
_SYNC_COUNT_CHARS = 1000


class LlamaCppBackend:
    """llama-cpp-python behind the backend protocol."""

    capabilities = Capabilities(
        streaming=True, tokenize=True, abort=True, model_info=True, model_load=True, kv_state=True
    )

    def __init__(self, config: LlamaCppConfig | None = None) -> None:
        self.config = config or LlamaCppConfig()
        self.name = "llama_cpp (embedded)"
        self._llm: Any = None
        self._model_name = _DEFAULT_MODEL_NAME
        self._model_path: Path | None = None
        self._load_lock = asyncio.Lock()
        self._run_lock = asyncio.Lock()
        self._abort = threading.Event()
        self._replies_waiting = 0
        self._reply_waiting = threading.Event()  # set while a reply waits for the model: pre-warms yield
        self.states = StateCache(self.config.state_cache_mb * 2**20)
        self._holder: str | None = None  # whose conversation the KV cache holds now
        self.shifts = 0  # context shifts done (for stats and tests)

    # ------------------------------------------------------------------ loading

    async def start(self) -> None:
        """Load the model now (it is otherwise loaded on first use)."""
        await self._ensure_loaded()

    async def _ensure_loaded(self) -> Any:
        if self._llm is not None:
            return self._llm
        async with self._load_lock:
            if self._llm is None:
                path = await asyncio.to_thread(self._resolve_path, self.config.model)
                self._llm = await asyncio.to_thread(self._load, path)
                self._model_path = path
        return self._llm

    def _resolve_path(self, model: str | None) -> Path:
        if model is None:
            return default_model_path()
        return check_gguf(Path(os.path.expanduser(model)))

    def _load(self, path: Path) -> Any:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError("llama-cpp-python is not installed (pip install llama-cpp-python)") from exc
        cfg = self.config
        threads = cfg.n_threads or os.cpu_count() or 1
        log.info("Loading %s (n_ctx=%d, threads=%d)", path, cfg.n_ctx, threads)
        started = time.perf_counter()
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=cfg.n_ctx,
                n_batch=cfg.n_batch,
                n_ubatch=cfg.n_batch,
                n_threads=threads,
                n_threads_batch=cfg.n_threads_batch or threads,
                n_gpu_layers=cfg.n_gpu_layers,
                flash_attn=cfg.flash_attn,
                type_k=_KV_TYPES[cfg.type_k],
                type_v=_KV_TYPES[cfg.type_v],
                seed=cfg.seed if cfg.seed >= 0 else llama_cpp.LLAMA_DEFAULT_SEED,
                swa_full=True,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"cannot load model {path}: {exc} (is it a complete GGUF file?)") from exc
        log.info("Model loaded in %.1f s", time.perf_counter() - started)
        return llm

    # ------------------------------------------------------------------ protocol

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Exact token counts from the model's own tokenizer (no BOS), counted in a worker thread."""
        await self._ensure_loaded()
        async with self._load_lock:  # the model is not swapped (and freed) while a thread reads it
            llm = self._llm
            return await asyncio.to_thread(lambda: [len(self._tokenize(llm, text, bos=False)) for text in texts])

    def counter(self) -> Callable[[str], int | None] | None:
        """A synchronous token counter once the model is loaded, for texts short enough to count
        on the event loop (:data:`_SYNC_COUNT_CHARS`); it answers None for longer ones."""
        llm = self._llm
        if llm is None:
            return None

        def count(text: str) -> int | None:
            if len(text) > _SYNC_COUNT_CHARS:
                return None
            return len(self._tokenize(llm, text, bos=False))

        return count

    @staticmethod
    def _tokenize(llm: Any, text: str, *, bos: bool, special: bool = False) -> list[int]:
        return llm.tokenize(text.encode("utf-8", errors="replace"), add_bos=bos, special=special)

    def _tokenize_prompt(self, llm: Any, prompt: str, specials: Sequence[str]) -> list[int]:
        """Tokens of a prompt where only the format's control tokens count as special."""
        if not specials:
            return self._tokenize(llm, prompt, bos=True)
        pattern = "(" + "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True)) + ")"
        tokens = self._tokenize(llm, "", bos=True)
        for piece in re.split(pattern, prompt):
            if piece:
                tokens += self._tokenize(llm, piece, bos=False, special=piece in specials)
        return tokens

    async def context_size(self) -> int:
        """The configured context window."""
        return self.config.n_ctx

    async def chat_template(self) -> ChatTemplate | None:
        """The GGUF's ``tokenizer.chat_template``, if the model has one."""
        llm = await self._ensure_loaded()
        source = (getattr(llm, "metadata", None) or {}).get("tokenizer.chat_template")
        if not source:
            return None
        model = llm._model
        bos, eos = llm.token_bos(), llm.token_eos()
        return ChatTemplate(
            source=source,
            bos_token=model.token_get_text(bos) if bos >= 0 else "",
            eos_token=model.token_get_text(eos) if eos >= 0 else "",
        )

    async def health(self) -> Health:
        """Healthy once the model loads; the error otherwise."""
        try:
            llm = await self._ensure_loaded()
        except BackendError as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True, detail="model loaded", model=self._describe_model(), n_ctx=_context_tokens(llm))

    async def model_info(self) -> ModelInfo:
        """The loaded model and the ones listed in the config."""
        llm = await self._ensure_loaded()
        meta = dict(getattr(llm, "metadata", {}) or {})
        return ModelInfo(
            name=self._describe_model(),
            n_ctx=_context_tokens(llm),
            available=(_DEFAULT_MODEL_NAME, *self.config.models),
            details={"path": str(self._model_path), "architecture": meta.get("general.architecture", "?")},
        )

    async def load_model(self, name: str) -> ModelInfo:
        """Swap to a model listed under ``backend.models`` (or ``default``)."""
        if name == _DEFAULT_MODEL_NAME:
            model = self.config.model
        elif name in self.config.models:
            model = self.config.models[name]
        else:
            known = ", ".join((_DEFAULT_MODEL_NAME, *self.config.models))
            raise UnsupportedOperation(f"unknown model {name!r}; configured: {known}", backend=self.name)
        async with self._run_lock, self._load_lock:
            path = await asyncio.to_thread(self._resolve_path, model)
            new = await asyncio.to_thread(self._load, path)
            old, self._llm = self._llm, new
            self._model_path, self._model_name = path, name
            self.states.clear()
            self._holder = None
            if old is not None:
                await asyncio.to_thread(old.close)
        return await self.model_info()

    async def abort(self, conversation: str | None = None) -> None:
        """Stop the running generation (there is at most one)."""
        self._abort.set()

    async def aclose(self) -> None:
        """Free the model."""
        async with self._run_lock:
            if self._llm is not None:
                llm, self._llm = self._llm, None
                await asyncio.to_thread(llm.close)

    def _describe_model(self) -> str:
        path = self._model_path
        return f"{self._model_name} ({path.name})" if path else self._model_name

    # ------------------------------------------------------------------ generation

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Generate in a worker thread and yield its text as it comes."""
        llm = await self._ensure_loaded()
        async with self._model_for_reply():
            self._abort.clear()
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()

            def emit(item: Chunk | BaseException) -> None:
                loop.call_soon_threadsafe(queue.put_nowait, item)

            worker = asyncio.create_task(asyncio.to_thread(self._generate, llm, request, emit))
            try:
                while True:
                    item = await queue.get()
                    if isinstance(item, BaseException):
                        raise item
                    yield item
                    if item.done:
                        break
            finally:
                self._abort.set()
                await asyncio.shield(worker)

    async def choose(self, request: GenerationRequest, choices: Sequence[str]) -> str:
        """Continue the prompt with one of ``choices``: at each step only the next token of a
        choice still possible may follow (their tokens as a trie), picked greedily or sampled
        among those. It reads the prompt beyond the conversation's cache, then a token per step
        while more than one choice is left: once one is, the rest is known and not read."""
        if not any(choices):
            raise ValueError("a choice needs at least one non-empty string")
        llm = await self._ensure_loaded()
        async with self._model_for_reply():
            worker = asyncio.ensure_future(asyncio.to_thread(self._choose, llm, request, choices))
            try:
                return await asyncio.shield(worker)
            except BackendError:
                raise
            except Exception as exc:  # a llama.cpp failure, translated at the boundary
                raise BackendError(f"choice failed: {exc}", backend=self.name) from exc
            finally:
                await asyncio.wait([worker])  # the model stays held until the thread lets go of it

    def _choose(self, llm: Any, request: GenerationRequest, choices: Sequence[str]) -> str:
        import numpy as np

        tokens = self._tokenize_prompt(llm, request.prompt, request.special_tokens)
        alive = [(choice, self._tokenize(llm, choice, bos=False)) for choice in dict.fromkeys(choices) if choice]
        longest = max(len(sequence) for _, sequence in alive)
        if len(tokens) + longest >= _context_tokens(llm):
            raise ContextOverflow(f"prompt is {len(tokens)} tokens, too many for a choice", backend=self.name)
        self._take_over(llm, request.conversation or "")
        self._shift_window(llm, tokens)
        cached = min(common_prefix(llm.input_ids[: llm.n_tokens], tokens), len(tokens) - 1)
        llm.n_tokens = cached  # eval drops the rest of the cache and reads from here
        llm.eval(tokens[cached:])
        rng = random.Random(request.sampling.seed)
        step = 0
        while len(alive) > 1:
            options = sorted({sequence[step] for _, sequence in alive})
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))[options]
            token = _pick(options, logits.astype(np.float64), request.sampling.temperature, rng)
            alive = [(choice, sequence) for choice, sequence in alive if sequence[step] == token]
            step += 1
            ended = [choice for choice, sequence in alive if len(sequence) == step]
            if ended:
                return ended[0]  # a choice whose tokens begin another's: the shorter one ends here
            llm.eval([token])
        return alive[0][0]

    @contextlib.asynccontextmanager
    async def _model_for_reply(self) -> AsyncIterator[None]:
        """Hold the model for a reply; a pre-warm running meanwhile stops at its next chunk."""
        self._replies_waiting += 1
        self._reply_waiting.set()
        try:
            await self._run_lock.acquire()
        finally:
            self._replies_waiting -= 1
            if not self._replies_waiting:
                self._reply_waiting.clear()
        try:
            yield
        finally:
            self._run_lock.release()

    async def prewarm(
        self, conversation: str, text: str, *, special_tokens: Sequence[str] = (), only_if_idle: bool = False
    ) -> int:
        """Read ``text`` (the start of the conversation's next prompt) into its state ahead of time.

        A reply never waits for it long: the reading stops at its next chunk of
        tokens when a reply asks for the model, keeping what it has read (the next
        pre-warm or the reply itself goes on from there). With ``only_if_idle``
        nothing happens while a reply runs or waits. Returns the tokens read.
        """
        llm = await self._ensure_loaded()
        if only_if_idle and (self._run_lock.locked() or self._reply_waiting.is_set()):
            return 0
        async with self._run_lock:
            if self._reply_waiting.is_set():
                return 0
            return await asyncio.to_thread(self._prewarm, llm, conversation, text, special_tokens)

    def _prewarm(self, llm: Any, conversation: str, text: str, special_tokens: Sequence[str]) -> int:
        tokens = self._tokenize_prompt(llm, text, special_tokens)[: _context_tokens(llm) - 1]
        self._take_over(llm, conversation)
        self._shift_window(llm, tokens)
        common = common_prefix(llm.input_ids[: llm.n_tokens], tokens)
        if common == len(tokens):
            return 0
        llm._ctx.kv_cache_seq_rm(0, common, -1)
        llm.n_tokens = common
        read = common
        while read < len(tokens) and not self._reply_waiting.is_set():
            chunk = tokens[read : read + _PREWARM_CHUNK]
            llm.eval(chunk)  # keeps input_ids and n_tokens in step with the cache, chunk by chunk
            read += len(chunk)
        return read - common

    # ------------------------------------------------------------------ KV state

    def _take_over(self, llm: Any, conversation: str) -> None:
        """Make the KV cache hold ``conversation``: save the current holder's, restore its own."""
        if self._holder == conversation:
            return
        if self._holder is not None and llm.n_tokens > 0:
            self.states.put(self._holder, self._save(llm))
        saved = self.states.get(conversation)
        if saved is not None:
            self._restore(llm, saved)
        self._holder = conversation

    @staticmethod
    def _save(llm: Any) -> SavedState:
        import ctypes

        import llama_cpp

        size = llama_cpp.llama_state_seq_get_size(llm._ctx.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llm._ctx.ctx, buffer, size, 0)
        return SavedState(
            tokens=tuple(llm.input_ids[: llm.n_tokens].tolist()),
            data=ctypes.string_at(buffer, written),  # one memcpy; slicing the array would build a list
        )

    @staticmethod
    def _restore(llm: Any, saved: SavedState) -> None:
        import ctypes

        import llama_cpp

        llm._ctx.kv_cache_seq_rm(0, -1, -1)
        buffer = (ctypes.c_uint8 * len(saved.data)).from_buffer_copy(saved.data)
        if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(saved.data), 0) == 0:
            log.warning("Could not restore a saved KV state; the prompt will be read again")
            llm._ctx.kv_cache_seq_rm(0, -1, -1)
            llm.n_tokens = 0
            return
        n = len(saved.tokens)
        llm.input_ids[:n] = saved.tokens
        llm.n_tokens = n
        llm._requires_eval = True

    def _shift_window(self, llm: Any, tokens: list[int]) -> None:
        """Drop the span the prompt no longer has and shift the rest down, when that saves reading."""
        if not self.config.context_shift or llm.n_tokens == 0:
            return
        cached = [int(t) for t in llm.input_ids[: llm.n_tokens]]
        shift = plan_shift(cached, tokens, min_match=_MIN_SHIFT_MATCH)
        if shift is None:
            return
        ctx = llm._ctx
        if not ctx.kv_cache_seq_rm(0, shift.keep, shift.drop_end):
            log.debug("This model's KV cache cannot drop a span; reading the prompt instead")
            return
        ctx.kv_cache_seq_shift(0, shift.drop_end, -1, -shift.dropped)
        kept = cached[: shift.keep] + cached[shift.drop_end :]
        llm.input_ids[: len(kept)] = kept
        llm.n_tokens = len(kept)
        self.shifts += 1
        log.debug("Context shift: dropped %d cached tokens at %d, reusing %d", shift.dropped, shift.keep, shift.matched)

    # ------------------------------------------------------------------ generation

    def _generate(self, llm: Any, request: GenerationRequest, emit: Callable[[Chunk | BaseException], None]) -> None:
        try:
            self._generate_into(llm, request, emit)
        except BackendError as exc:
            emit(exc)
        except Exception as exc:  # a llama.cpp failure must reach the caller, not die in the thread
            log.exception("Embedded generation failed")
            emit(BackendError(f"generation failed: {exc}", backend=self.name))

    def _generate_into(self, llm: Any, request: GenerationRequest, emit: Callable[[Chunk | BaseException], None]) -> None:
        import llama_cpp

        tokens = self._tokenize_prompt(llm, request.prompt, request.special_tokens)
        n_ctx = _context_tokens(llm)
        if len(tokens) >= n_ctx:
            raise ContextOverflow(
                f"prompt is {len(tokens)} tokens but the context holds {n_ctx}", backend=self.name
            )
        max_tokens = min(request.max_tokens, n_ctx - len(tokens))
        self._take_over(llm, request.conversation or "")
        self._shift_window(llm, tokens)
        evaluated = _tokens_to_evaluate(llm.input_ids[: llm.n_tokens], tokens)
        s = request.sampling
        if s.seed is not None:
            llm.set_seed(s.seed)
        greedy = s.temperature <= 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab = llm._model.vocab
        timings = Timings(prompt_tokens=len(tokens), prompt_evaluated=evaluated)
        started = time.perf_counter()
        first_token_at: float | None = None
        generated = 0
        finish = "length"
        recent = ""
        window = 2 * max((len(stop) for stop in request.stops), default=1) + 16
        for token in llm.generate(
            tokens,
            temp=0.0 if greedy else s.temperature,
            top_k=1 if greedy else s.top_k,
            top_p=s.top_p,
            min_p=s.min_p,
            repeat_penalty=s.repeat_penalty,
            frequency_penalty=s.frequency_penalty,
            presence_penalty=s.presence_penalty,
            reset=True,
        ):
            if first_token_at is None:
                first_token_at = time.perf_counter()
            if self._abort.is_set():
                finish = "abort"
                break
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            generated += 1
            text = decoder.decode(llm.detokenize([token]))
            if text:
                emit(Chunk(text=text))
                recent = (recent + text)[-window:]
                if request.stops and any(stop in recent for stop in request.stops):
                    finish = "stop"  # the caller cuts the text; we just stop generating
                    break
            if generated >= max_tokens:
                break
        tail = decoder.decode(b"", final=True)
        if tail:
            emit(Chunk(text=tail))
        ended = time.perf_counter()
        first = first_token_at or ended
        timings.prompt_seconds = first - started
        timings.generation_seconds = ended - first
        timings.generated_tokens = generated
        timings.finish_reason = finish
        emit(Chunk(done=True, timings=timings))


def _pick(options: list[int], logits: Any, temperature: float, rng: random.Random) -> int:
    """One of ``options`` by their logits: the likeliest, or a draw at ``temperature``."""
    if temperature <= 0:
        return options[int(logits.argmax())]
    weights = [math.exp(x) for x in (logits - logits.max()) / temperature]
    return rng.choices(options, weights=weights)[0]


def _context_tokens(llm: Any) -> int:
    """Tokens the context holds: llama.cpp may round its KV cache up (2112 becomes 2304),
    but llama-cpp-python's token bookkeeping keeps the size asked for."""
    return min(llm.n_ctx(), len(llm.input_ids))


def _tokens_to_evaluate(cached: Sequence[int], prompt: list[int]) -> int:
    """How many prompt tokens llama-cpp-python will read, given what its cache holds."""
    common = common_prefix(cached, prompt)
    if common == 0:
        return len(prompt)
    if common == len(prompt):
        return 1  # it re-reads the last token to refresh the logits
    return len(prompt) - common
