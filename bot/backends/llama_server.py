"""llama.cpp's own server (``llama-server``) through its native API.

``POST /completion`` streams server-sent events; ``cache_prompt`` keeps the KV
cache between requests, ``id_slot`` pins a conversation to one of the server's
slots so its cache survives other conversations, ``n_keep`` protects the stable
prompt prefix when the server shifts its context, and ``n_cache_reuse`` lets it
reuse shifted chunks. ``/tokenize`` counts tokens exactly, ``/props`` gives the
context size and the number of slots, ``/health`` answers 503 while loading (a
generation that meets a loading server waits for it, logging progress).
"""

from __future__ import annotations

import asyncio
import json
import logging
import posixpath
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from bot.backends.base import Capabilities, ChatTemplate, Chunk, GenerationRequest, Health, ModelInfo
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

    # ------------------------------------------------------------------ generation

    async def _generate(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[Chunk]:
        self._replying += 1
        try:
            async for chunk in self._generate_once(request, generation):
                yield chunk
        finally:
            self._replying -= 1

    async def _generate_once(self, request: GenerationRequest, generation: Generation) -> AsyncIterator[Chunk]:
        body = self._body(request, await self._slot_for(request.conversation))
        opened = False
        try:
            async with self._open_stream("/completion", body, generation) as response:
                opened = True
                async for chunk in self._read(response):
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
            async for chunk in self._read(response):
                yield chunk

    async def _read(self, response: httpx.Response) -> AsyncIterator[Chunk]:
        clock = GenerationClock()
        async for event in iter_sse(response, backend=self.name):
            data = parse_json(event.data, backend=self.name, what="the /completion stream")
            if not isinstance(data, dict):
                raise BackendProtocolError(f"unexpected stream event {event.data[:80]!r}", backend=self.name)
            if "error" in data:
                raise self._stream_error(data["error"])
            text = data.get("content", "")
            if not isinstance(text, str):
                raise BackendProtocolError(f"'content' is not text: {text!r}", backend=self.name)
            if text:
                clock.text()
                yield Chunk(text=text)
            if data.get("stop") is True:
                yield Chunk(done=True, timings=_timings(data, clock))
                return

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
        slot = await self._slot_for(conversation, evict=False)
        if slot is None:
            return 0
        data = await self._json("POST", "/completion", json_body=self._one_token_body(text, slot))
        timings = data.get("timings") if isinstance(data, dict) else None
        read = timings.get("prompt_n") if isinstance(timings, dict) else None
        return read if isinstance(read, int) and read > 0 else 0

    def _one_token_body(self, prompt: str, slot: int) -> dict[str, Any]:
        """A request that reads ``prompt`` into ``slot`` (kept cached) and generates one token."""
        body: dict[str, Any] = {"prompt": prompt, "n_predict": 1, "stream": False, "cache_prompt": True,
                                "id_slot": slot, "temperature": 0.0}
        if self.config.cache_reuse:
            body["n_cache_reuse"] = self.config.cache_reuse
        body.update(self.config.extra_body)
        return body

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
        if self.config.cache_reuse:
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
                props = await self._json("GET", "/props")
            except BackendError as exc:
                log.info("%s: /props unavailable (%s); not pinning slots this time", self.name, exc)
                return None
            total = props.get("total_slots") if isinstance(props, dict) else None
            self._slots = SlotMap(total if isinstance(total, int) and total > 0 else 1)
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
            tokens = data.get("tokens") if isinstance(data, dict) else None
            if not isinstance(tokens, list):
                raise BackendProtocolError(
                    f"/tokenize answered without 'tokens': {data!r:.80}", backend=self.name
                )
            return len(tokens)

        return list(await asyncio.gather(*(count(text) for text in texts)))

    async def _server_context_size(self) -> int | None:
        return _context_from_props(await self._json("GET", "/props"))

    async def chat_template(self) -> ChatTemplate | None:
        """The model's chat template, from ``/props``."""
        return chat_template_from_props(await self._json("GET", "/props"))

    async def _probe(self) -> Health:
        await self._request("GET", "/health")
        info = await self.model_info()
        return Health(ok=True, detail="ready", model=info.name, n_ctx=info.n_ctx)

    async def model_info(self) -> ModelInfo:
        """The served model, from ``/props``."""
        props = await self._json("GET", "/props")
        if not isinstance(props, dict):
            raise BackendProtocolError("/props did not answer with an object", backend=self.name)
        path = props.get("model_path")
        name = props.get("model_alias") or (
            posixpath.basename(str(path).replace("\\", "/")) if path else None
        )
        n_ctx = self.config.n_ctx or _context_from_props(props)
        details = {key: props[key] for key in ("total_slots", "build_info", "model_path") if key in props}
        return ModelInfo(name=str(name or self.config.model or "unknown"), n_ctx=n_ctx, details=details)

    async def advice(self) -> list[str]:
        """Setup hints for the owner (shown by ``python -m bot check``)."""
        try:
            props = await self._json("GET", "/props")
        except BackendError:
            return []
        notes = []
        if self.config.pin_slots and isinstance(props, dict) and props.get("total_slots") == 1:
            notes.append(
                "the server has 1 slot, so every channel shares one KV cache; start it with "
                "--parallel N (and -c N times the context) to keep N channels cached"
            )
        if self.config.cache_reuse == 0:
            notes.append("backend.cache_reuse is 0, so the server never shifts its cache; set it to e.g. 256")
        elif not await self._can_shift(props):
            notes.append(
                "the server re-reads the whole window when it slides: start llama-server with "
                f"--cache-reuse {self.config.cache_reuse} and, for sliding-window models such as Gemma 3, "
                "--swa-full"
            )
        return notes

    async def _can_shift(self, props: Any) -> bool:
        """Probe: read a prompt, then the same prompt with its first third removed; a server that
        shifts its cache reads only a little of the second one. The probe is sized to fit one
        slot's context, with two thirds comfortably over ``cache_reuse``."""
        slots = props.get("total_slots") if isinstance(props, dict) else None
        slot = max(0, int(slots) - 1) if isinstance(slots, int) else 0
        budget = min(3 * (self.config.cache_reuse + 32), (_context_from_props(props) or 2048) - 64)
        if budget * 2 // 3 < self.config.cache_reuse + 16:
            return True  # the context is too small to tell; say nothing rather than something wrong
        # a new tag each time: llama-server keeps recent prompts in RAM (--cache-ram) and would
        # restore an earlier probe's instead of showing whether it shifts
        head = f"Troupe checks whether this server can shift its KV cache ({secrets.token_hex(4)}):"
        try:
            first, second = await self._shift_probe(head, budget)
            await self._json("POST", "/completion", json_body=self._one_token_body(first, slot))
            result = await self._json("POST", "/completion", json_body=self._one_token_body(second, slot))
            total = (await self.count_tokens([second]))[0]
        except BackendError:
            return True  # no verdict
        timings = result.get("timings") if isinstance(result, dict) else None
        read = timings.get("prompt_n") if isinstance(timings, dict) else None
        return not isinstance(read, int) or read < total // 2

    async def _shift_probe(self, head: str, budget: int) -> tuple[str, str]:
        """The probe's two prompts: ``head`` and numbered words (each with its own leading
        space, so the cut falls on a token boundary) to about ``budget`` tokens, then the same
        without the first third of the words."""

        def prompts(count: int) -> tuple[str, str]:
            words = [f" probe{i}" for i in range(count)]
            return head + "".join(words), head + "".join(words[count // 3 :])

        count = budget
        first, second = prompts(count)
        tokens = (await self.count_tokens([first]))[0]
        if tokens > budget:  # words of several tokens each: scale down to fit
            count = max(1, count * budget // tokens)
            first, second = prompts(count)
        return first, second


def chat_template_from_props(props: Any) -> ChatTemplate | None:
    """The chat template in a llama.cpp server's ``/props`` (with its BOS/EOS token texts), if any."""
    if not isinstance(props, dict) or not isinstance(props.get("chat_template"), str) or not props["chat_template"]:
        return None
    bos, eos = props.get("bos_token"), props.get("eos_token")
    return ChatTemplate(
        props["chat_template"], bos_token=bos if isinstance(bos, str) else "", eos_token=eos if isinstance(eos, str) else ""
    )


def _context_from_props(props: Any) -> int | None:
    if not isinstance(props, dict):
        return None
    settings = props.get("default_generation_settings")
    for source in (settings, props):
        if isinstance(source, dict) and isinstance(source.get("n_ctx"), int) and source["n_ctx"] > 0:
            return int(source["n_ctx"])
    return None


def _timings(data: dict[str, Any], clock: GenerationClock) -> Any:
    server = data.get("timings") if isinstance(data.get("timings"), dict) else {}
    finish = _FINISH.get(str(data.get("stop_type")))
    if finish is None:  # builds before stop_type
        if data.get("stopped_limit"):
            finish = "length"
        elif data.get("stopped_eos") or data.get("stopped_word"):
            finish = "stop"
    known: dict[str, Any] = {
        "prompt_tokens": _int(data.get("tokens_evaluated")),
        "prompt_evaluated": _int(server.get("prompt_n")),
        "generated_tokens": _int(server.get("predicted_n")),
        "finish_reason": finish,
    }
    if isinstance(server.get("prompt_ms"), (int, float)):
        known["prompt_seconds"] = server["prompt_ms"] / 1000
    if isinstance(server.get("predicted_ms"), (int, float)):
        known["generation_seconds"] = server["predicted_ms"] / 1000
    return clock.timings(**known)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
