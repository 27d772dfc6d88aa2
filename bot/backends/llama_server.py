"""llama.cpp's own server (``llama-server``) through its native API.

``POST /completion`` streams server-sent events; ``cache_prompt`` keeps the KV
cache between requests, ``id_slot`` pins a conversation to one of the server's
slots so its cache survives other conversations, ``n_keep`` protects the stable
prompt prefix when the server shifts its context, and ``n_cache_reuse`` lets it
reuse shifted chunks. ``/tokenize`` counts tokens exactly, ``/props`` gives the
context size and the number of slots, ``/health`` answers 503 while loading (a
generation that meets a loading server waits for it, logging progress).

Whether the server can shift its cache at all (``--cache-reuse``, and ``--swa-full``
for sliding-window models) is probed once, before the first request, and logged once
with the flags that fix it; ``n_cache_reuse`` is sent only to a server that can use
it, and :meth:`LlamaServerBackend.shifts_cache` lets the ChatService read the next
window ahead instead. The server's JSON is read through pydantic models, so a field
of the wrong type is reported by name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import posixpath
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.backends.base import Capabilities, ChatTemplate, Chunk, GenerationRequest, Health, ModelInfo
from bot.backends.choices import choice_grammar
from bot.backends.http import (
    Generation,
    GenerationClock,
    HttpBackend,
    ServerNotReady,
    iter_sse,
    llama_samplers,
    parse_json,
)
from bot.config import LlamaServerConfig
from bot.errors import BackendError, BackendProtocolError, BackendUnavailable

__all__ = ["LlamaServerBackend", "SlotMap", "chat_template_from_props"]

log = logging.getLogger(__name__)

_FINISH = {"eos": "stop", "word": "stop", "limit": "length"}
_TOKENIZE_CONCURRENCY = 4
_PROBE_ATTEMPTS = 3  # start-up shift probes tried (a loading server answers none) before giving up

_Model = TypeVar("_Model", bound=BaseModel)


# --------------------------------------------------------------------------- the server's JSON


class _Answer(BaseModel):
    """Fields Troupe reads; the server sends many more (ignored)."""

    model_config = ConfigDict(extra="ignore")


class _Timings(_Answer):
    prompt_n: int | None = None
    cache_n: int | None = None
    prompt_ms: float | None = None
    predicted_n: int | None = None
    predicted_ms: float | None = None


class _Completion(_Answer):
    """One ``/completion`` stream event, or the whole answer of a non-streaming request."""

    content: str = ""
    stop: bool = False
    stop_type: str | None = None
    stopped_eos: bool | None = None  # builds before stop_type
    stopped_word: bool | None = None
    stopped_limit: bool | None = None
    tokens_evaluated: int | None = None
    timings: _Timings | None = None


class _GenerationSettings(_Answer):
    n_ctx: int | None = None


class _Props(_Answer):
    default_generation_settings: _GenerationSettings | None = None
    n_ctx: int | None = None  # some builds put it at the top level
    total_slots: int | None = None
    model_alias: str | None = None
    model_path: str | None = None
    build_info: str | None = None

    @property
    def context(self) -> int | None:
        for n_ctx in (self.default_generation_settings and self.default_generation_settings.n_ctx, self.n_ctx):
            if n_ctx is not None and n_ctx > 0:
                return n_ctx
        return None


class _Tokens(_Answer):
    tokens: list[int | dict[str, Any]]  # dicts when ``with_pieces`` is asked for


def _read(model: type[_Model], data: Any, *, backend: str, what: str) -> _Model:
    """``data`` as ``model``; a missing or mistyped field becomes a BackendProtocolError naming it."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'the answer'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
        raise BackendProtocolError(f"unexpected {what} ({problems}): {str(data)[:120]!r}", backend=backend) from exc


class SlotMap:
    """Which server slot each conversation uses.

    A conversation keeps its slot for as long as it is among the ``slots`` most
    recently active ones; a new conversation takes a free slot, else the slot of
    the conversation that has been quiet longest.
    """

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self._by_conversation: OrderedDict[str, int] = OrderedDict()

    def slot_for(self, conversation: str) -> int:
        """The slot for ``conversation`` (stable while it stays active)."""
        if conversation in self._by_conversation:
            self._by_conversation.move_to_end(conversation)
            return self._by_conversation[conversation]
        used = set(self._by_conversation.values())
        free = [slot for slot in range(self.slots) if slot not in used]
        if free:
            slot = free[0]
        else:
            _, slot = self._by_conversation.popitem(last=False)
        self._by_conversation[conversation] = slot
        return slot

    def own_slot(self, conversation: str) -> int | None:
        """The conversation's slot if it has one or a slot is free; never another's (then None)."""
        if conversation in self._by_conversation or len(self._by_conversation) < self.slots:
            return self.slot_for(conversation)
        return None


class LlamaServerBackend(HttpBackend):
    """A llama.cpp ``llama-server``."""

    kind = "llama_server"
    capabilities = Capabilities(streaming=True, tokenize=True, abort=True, model_info=True, slots=True)

    def __init__(
        self, config: LlamaServerConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(config, transport=transport)
        self.config: LlamaServerConfig = config
        self._slots: SlotMap | None = None
        self._replying = 0  # replies streaming through this backend now
        #: the start-up probe's verdict: can the server shift its cache (None: not known yet)
        self._shifts: bool | None = None
        self._probes = 0
        self._probing = asyncio.Lock()

    # ------------------------------------------------------------------ start-up

    async def start(self) -> None:
        """Probe the server now (otherwise it happens before the first request): whether it can
        shift its cache, which is logged once."""
        await self._know_shift()

    def shifts_cache(self, conversation: str | None = None) -> bool:
        """Whether a conversation's cached window survives a slide (the server shifts it); True
        while the start-up probe has not answered. Where it is False the ChatService reads the
        next window ahead while the conversation is quiet."""
        return self._shifts is not False

    async def _know_shift(self) -> None:
        """Run the start-up shift probe once (retried on the next request if the server gave no
        answer) and log its verdict with the flags that fix a server that cannot shift."""
        if self._shifts is not None or self._probes >= _PROBE_ATTEMPTS:
            return
        async with self._probing:
            if self._shifts is not None or self._probes >= _PROBE_ATTEMPTS:
                return
            self._probes += 1
            if self.config.cache_reuse == 0:
                self._shifts = False
                log.info(
                    "%s: backend.cache_reuse is 0, so the server never shifts a channel's cache; Troupe reads "
                    "each channel's next window ahead while it is quiet. Set backend.cache_reuse to 256 and "
                    "start llama-server with --cache-reuse 256 (and --swa-full for sliding-window models "
                    "such as Gemma 3) to shift instead", self.name,
                )
                return
            began = time.perf_counter()
            try:
                verdict = await self._can_shift(await self._props())
            except BackendError as exc:
                log.debug("%s: shift probe got no answer (%s)", self.name, exc)
                return
            if verdict is None:
                self._probes = _PROBE_ATTEMPTS  # a slot too small to tell: say nothing rather than guess
                log.info("%s: the server's slots are too small to tell whether it shifts its cache", self.name)
                return
            self._shifts = verdict
            seconds = time.perf_counter() - began
            if verdict:
                log.info("%s: the server shifts its KV cache (probed in %.1f s): sliding windows cost little",
                         self.name, seconds)
            else:
                log.info(
                    "%s: the server cannot shift its KV cache (probed in %.1f s), so a window slide would "
                    "re-read the whole window; Troupe reads each channel's next window ahead while it is "
                    "quiet and does not send n_cache_reuse. Start llama-server with --cache-reuse %d and, "
                    "for sliding-window models such as Gemma 3, --swa-full to shift instead",
                    self.name, seconds, self.config.cache_reuse,
                )

    # ------------------------------------------------------------------ generation

    async def _generate(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[Chunk]:
        self._replying += 1
        try:
            async for chunk in self._generate_once(request, generation):
                yield chunk
        finally:
            self._replying -= 1

    async def _generate_once(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[Chunk]:
        await self._know_shift()
        body = self._body(request, await self._slot_for(request.conversation))
        opened = False
        try:
            async with self._open_stream("/completion", body, generation) as response:
                opened = True
                async for chunk in self._read_stream(response):
                    yield chunk
            return
        except ServerNotReady as exc:
            if opened or not self.config.wait_for_load or (await self.health()).ok:
                raise  # failed mid-stream, or refused while healthy (busy): the caller's retries decide
            log.info("%s: %s; waiting for the model to load", self.name, exc)
        health = await self.wait_until_ready(self.config.read_timeout)
        if not health.ok:
            raise BackendUnavailable(
                f"still not ready after {self.config.read_timeout:g} s: {health.detail}", backend=self.name
            )
        async with self._open_stream("/completion", body, generation) as response:
            async for chunk in self._read_stream(response):
                yield chunk

    async def _read_stream(self, response: httpx.Response) -> AsyncIterator[Chunk]:
        clock = GenerationClock()
        async for event in iter_sse(response, backend=self.name):
            data = parse_json(event.data, backend=self.name, what="the /completion stream")
            if isinstance(data, dict) and "error" in data:
                raise self._stream_error(data["error"])
            part = _read(_Completion, data, backend=self.name, what="/completion stream event")
            if part.content:
                clock.text()
                yield Chunk(text=part.content)
            if part.stop:
                yield Chunk(done=True, timings=_timings(part, clock))
                return

    async def choose(self, request: GenerationRequest, choices: Sequence[str]) -> str:
        """Continue the prompt with one of ``choices``: ``grammar`` on ``/completion`` in the
        conversation's slot (``cache_prompt``), so the server reads only the prompt beyond what the
        slot holds, then the choice's tokens."""
        await self._know_shift()
        body = self._body(request, await self._slot_for(request.conversation))
        body.update(stream=False, grammar=choice_grammar(choices), stop=[])
        self._replying += 1  # a read-ahead keeps off the slot meanwhile, as for a reply
        try:
            data = await self._json("POST", "/completion", json_body=body)
        finally:
            self._replying -= 1
        written = _read(_Completion, data, backend=self.name, what="/completion answer").content
        if written not in choices:
            raise BackendError(f"the grammar-constrained choice wrote {written!r}, none of the choices",
                               backend=self.name)
        return written

    async def prewarm(
        self, conversation: str, text: str, *, special_tokens: Sequence[str] = (), only_if_idle: bool = False
    ) -> int:
        """Have the server read ``text`` (the start of the conversation's next prompt) into the
        conversation's slot ahead of time: a one-token completion that leaves it cached, so the
        next reply there reads only what follows. It never takes a slot another conversation
        holds, and with ``only_if_idle`` it does nothing while a reply streams through this
        backend. Returns the prompt tokens the server read."""
        if only_if_idle and self._replying:
            return 0
        await self._know_shift()
        slot = await self._slot_for(conversation, evict=False)
        if slot is None:
            return 0
        answer = await self._one_token(text, slot, reuse=self._shifts is not False)
        read = answer.timings.prompt_n if answer.timings else None
        return read if read is not None and read > 0 else 0

    async def _one_token(self, prompt: str, slot: int, *, reuse: bool) -> _Completion:
        """Read ``prompt`` into ``slot`` (kept cached) and generate one token; with ``reuse``, ask
        the server to reuse shifted chunks of what the slot held."""
        body: dict[str, Any] = {"prompt": prompt, "n_predict": 1, "stream": False, "cache_prompt": True,
                                "id_slot": slot, "temperature": 0.0}
        if reuse and self.config.cache_reuse:
            body["n_cache_reuse"] = self.config.cache_reuse
        body.update(self.config.extra_body)
        data = await self._json("POST", "/completion", json_body=body)
        return _read(_Completion, data, backend=self.name, what="/completion answer")

    def _body(self, request: GenerationRequest, slot: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "n_predict": request.max_tokens,
            "stream": True,
            "cache_prompt": True,
            "stop": list(request.stops),
            "n_keep": request.keep_tokens,
            **llama_samplers(request.sampling),
        }
        if self.config.cache_reuse and self._shifts is not False:
            body["n_cache_reuse"] = self.config.cache_reuse
        if slot is not None:
            body["id_slot"] = slot
        body.update(self.config.extra_body)
        return body

    def _stream_error(self, error: Any) -> BackendError:
        status = error.get("code") if isinstance(error, dict) else None
        status = status if isinstance(status, int) and status >= 400 else 500
        return self._error_for_status(status, json.dumps({"error": error}), "/completion")

    async def _slot_for(self, conversation: str | None, *, evict: bool = True) -> int | None:
        """The conversation's slot (None: let the server choose). Without ``evict``, only a slot
        the conversation already has or a free one: None rather than another's."""
        if conversation is None or not self.config.pin_slots:
            return None
        if self._slots is None:
            try:
                props = await self._props()
            except BackendError as exc:
                log.info("%s: /props unavailable (%s); not pinning slots this time", self.name, exc)
                return None
            total = props.total_slots
            self._slots = SlotMap(total if total is not None and total > 0 else 1)
            log.info("%s: pinning conversations to %d slot(s)", self.name, self._slots.slots)
        return self._slots.slot_for(conversation) if evict else self._slots.own_slot(conversation)

    # ------------------------------------------------------------------ the rest of the protocol

    async def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Exact counts from the server's ``/tokenize`` (no BOS)."""
        limit = asyncio.Semaphore(_TOKENIZE_CONCURRENCY)

        async def count(text: str) -> int:
            if not text:
                return 0
            async with limit:
                data = await self._json(
                    "POST", "/tokenize", json_body={"content": text, "add_special": False}
                )
            return len(_read(_Tokens, data, backend=self.name, what="/tokenize answer").tokens)

        return list(await asyncio.gather(*(count(text) for text in texts)))

    async def _props(self) -> _Props:
        return _read(_Props, await self._json("GET", "/props"), backend=self.name, what="/props answer")

    async def _server_context_size(self) -> int | None:
        return (await self._props()).context

    async def chat_template(self) -> ChatTemplate | None:
        """The model's chat template, from ``/props``."""
        return chat_template_from_props(await self._json("GET", "/props"))

    async def _probe(self) -> Health:
        await self._request("GET", "/health")
        info = await self.model_info()
        return Health(ok=True, detail="ready", model=info.name, n_ctx=info.n_ctx)

    async def model_info(self) -> ModelInfo:
        """The served model, from ``/props``."""
        props = await self._props()
        path = props.model_path
        alias = props.model_alias if props.model_alias != path else None  # recent builds: the path
        name = alias or (posixpath.basename(path.replace("\\", "/")) if path else None)
        n_ctx = self.config.n_ctx or props.context
        details: dict[str, object] = {
            key: value for key, value in
            (("total_slots", props.total_slots), ("build_info", props.build_info), ("model_path", path))
            if value is not None
        }
        return ModelInfo(name=str(name or self.config.model or "unknown"), n_ctx=n_ctx, details=details)

    async def advice(self) -> list[str]:
        """Setup hints for the owner (shown by ``python -m bot check``)."""
        try:
            props = await self._props()
        except BackendError:
            return []
        notes = []
        if self.config.pin_slots and props.total_slots == 1:
            notes.append(
                "the server has 1 slot, so every channel shares one KV cache; start it with "
                "--parallel N (and -c N times the context) to keep N channels cached"
            )
        if self.config.cache_reuse == 0:
            notes.append("backend.cache_reuse is 0, so the server never shifts its cache; set it to e.g. 256")
        else:
            await self._know_shift()
            if self._shifts is False:
                notes.append(
                    "the server re-reads the whole window when it slides (Troupe reads the next window "
                    "ahead while a channel is quiet, which costs the same work off the reply's path): "
                    f"start llama-server with --cache-reuse {self.config.cache_reuse} and, for "
                    "sliding-window models such as Gemma 3, --swa-full"
                )
        return notes

    async def _can_shift(self, props: _Props) -> bool | None:
        """Probe: read a prompt, then the same prompt with a few words after its head removed; a
        server that shifts its cache reuses the rest (a chunk over ``cache_reuse`` tokens) and
        reads almost nothing of the second one. It uses the last slot (the one conversations
        are given last) and about ``2 * cache_reuse`` tokens of reading. None: the slot's
        context is too small to tell."""
        slot = max(0, (props.total_slots or 1) - 1)
        keep = self.config.cache_reuse + 32
        if keep + 128 > (props.context or 2048):
            return None
        # a new tag each time: llama-server keeps recent prompts in RAM (--cache-ram) and would
        # restore an earlier probe's instead of showing whether it shifts
        head = f"Troupe checks whether this server can shift its KV cache ({secrets.token_hex(4)}):"
        first, second, kept = await self._shift_probe(head, keep)
        await self._one_token(first, slot, reuse=True)
        result = await self._one_token(second, slot, reuse=True)
        read = result.timings.prompt_n if result.timings else None
        return read is None or read < kept // 2

    async def _shift_probe(self, head: str, keep: int) -> tuple[str, str, int]:
        """The probe's two prompts and the tokens the second keeps of the first: ``head``, eight
        words to drop, then numbered words (each with its own leading space, so every cut falls
        on a token boundary) to at least ``keep`` tokens; the second is the same without the
        eight words."""
        dropped = "".join(f" gone{i}" for i in range(8))
        count = keep // 2
        while True:
            kept = "".join(f" probe{i}" for i in range(count))
            [tokens] = await self.count_tokens([kept])
            if tokens >= keep:
                return head + dropped + kept, head + kept, tokens
            count += max(1, (keep - tokens) // 2)


def chat_template_from_props(props: Any) -> ChatTemplate | None:
    """The chat template in a llama.cpp server's ``/props`` (with its BOS/EOS token texts), if any."""
    if not isinstance(props, dict) or not isinstance(props.get("chat_template"), str) or not props["chat_template"]:
        return None
    bos, eos = props.get("bos_token"), props.get("eos_token")
    return ChatTemplate(
        props["chat_template"], bos_token=bos if isinstance(bos, str) else "", eos_token=eos if isinstance(eos, str) else ""
    )


def _timings(final: _Completion, clock: GenerationClock) -> Any:
    server = final.timings or _Timings()
    finish = _FINISH.get(str(final.stop_type))
    if finish is None:  # builds before stop_type
        if final.stopped_limit:
            finish = "length"
        elif final.stopped_eos or final.stopped_word:
            finish = "stop"
    known: dict[str, Any] = {
        "prompt_tokens": final.tokens_evaluated,
        "prompt_evaluated": server.prompt_n,
        "generated_tokens": server.predicted_n,
        "finish_reason": finish,
    }
    if server.prompt_ms is not None:
        known["prompt_seconds"] = server.prompt_ms / 1000
    if server.predicted_ms is not None:
        known["generation_seconds"] = server.predicted_ms / 1000
    return clock.timings(**known)
